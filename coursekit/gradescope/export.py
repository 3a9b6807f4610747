"""Read Gradescope's "Export Submissions" zip into submitted/<student>/<assignment>/.

The export holds one folder per submission (``submission_<id>/``, usually under one top folder such as
``assignment_<id>_export/``) and ``submission_metadata.yml``, which maps each folder to its submitters
(``:name:``, ``:email:``, ``:sid:``) and the submission time (``:created_at:``); the keys are Ruby
symbols written as YAML strings. Each submitter of a submission gets a copy (group submissions), named
by student id, else by the local part of the e-mail address, stamped with the submission time in
``timestamp.txt``. Earlier copies are kept as ``<assignment>.previous-N``; members that would escape
the target folder and links are refused.
"""
from __future__ import annotations

import re
import shutil
import zipfile
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any

from coursekit.course import Course

METADATA = "submission_metadata.yml"
MAX_METADATA_BYTES = 32 * 1024 * 1024
MAX_SUBMISSION_BYTES = 256 * 1024 * 1024  # uncompressed, per submission (zipfile never reads past the
                                           # declared size, so the declared sizes bound what is written)
SAFE_ID = re.compile(r"[^A-Za-z0-9_.-]+")


def _metadata_member(zf: zipfile.ZipFile) -> str | None:
    names = [n for n in zf.namelist() if PurePosixPath(n).name == METADATA and len(PurePosixPath(n).parts) <= 2]
    return min(names, key=len) if names else None


def is_export(path: Path) -> bool:
    """A zip with submission_metadata.yml at its root or in its one top folder."""
    if path.suffix.lower() != ".zip" or not path.is_file():
        return False
    try:
        with zipfile.ZipFile(path) as zf:
            return _metadata_member(zf) is not None
    except (zipfile.BadZipFile, OSError):
        return False


def _load_yaml(text: str) -> Any:
    import yaml

    class Loader(yaml.SafeLoader):
        """SafeLoader that reads unknown tags (e.g. Ruby objects) as plain data instead of failing."""

    def plain(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
        if isinstance(node, yaml.MappingNode):
            return loader.construct_mapping(node, deep=True)
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node, deep=True)
        return loader.construct_scalar(node)

    Loader.add_multi_constructor("!", plain)
    return yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader subclass


def _field(record: dict[str, Any], name: str) -> Any:
    """A metadata field, spelled ``:name`` (Gradescope's Ruby symbols) or ``name``."""
    return record.get(f":{name}", record.get(name)) if isinstance(record, dict) else None


def student_id(submitter: dict[str, Any]) -> str | None:
    """The student id used in submitted/: the SID, else the e-mail's local part (made path-safe)."""
    for value in (_field(submitter, "sid"), str(_field(submitter, "email") or "").split("@")[0]):
        text = SAFE_ID.sub("_", str(value or "").strip()).strip("._-")[:64]
        if text:
            return text
    return None


def timestamp(created_at: Any) -> str | None:
    """The submission time as collect writes it (UTC, ``%Y-%m-%d %H:%M:%S.%f %Z``)."""
    if isinstance(created_at, datetime):
        moment = created_at
    elif isinstance(created_at, str) and created_at.strip():
        text = re.sub(r"(\.\d{6})\d+", r"\1", created_at.strip())  # Ruby prints nanoseconds
        moment = None
        for fmt in ("%Y-%m-%d %H:%M:%S.%f %z", "%Y-%m-%d %H:%M:%S %z", "%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z"):
            try:
                moment = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
        if moment is None:
            return None
    else:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f %Z")


def _keep_previous(folder: Path) -> str:
    if not folder.exists():
        return ""
    n = 1
    while (backup := folder.with_name(f"{folder.name}.previous-{n}")).exists():
        n += 1
    folder.rename(backup)
    return f" (previous submission kept as {backup.name})"


def _members(zf: zipfile.ZipFile, prefix: PurePosixPath) -> tuple[list[tuple[zipfile.ZipInfo, PurePosixPath]], list[str]]:
    """(member, path inside the submission folder) for the folder ``prefix``; refused members as lines."""
    kept, refused = [], []
    for info in zf.infolist():
        name = PurePosixPath(info.filename)
        if name.parts[:len(prefix.parts)] != prefix.parts or info.is_dir():
            continue
        is_link = (info.external_attr >> 16) & 0o170000 == 0o120000
        rel = PurePosixPath(*name.parts[len(prefix.parts):])
        if name.is_absolute() or ".." in name.parts or is_link or not rel.parts:
            refused.append(f"refused member {info.filename!r}")
            continue
        kept.append((info, rel))
    return kept, refused


def collect_export(course: Course, assignment: str, archive: Path) -> list[str]:
    """Copy every submission of a Gradescope export into submitted/; one line per student or problem."""
    lines: list[str] = []
    with zipfile.ZipFile(archive) as zf:
        member = _metadata_member(zf)
        if member is None:
            return [f"{archive}: no {METADATA}: not a Gradescope export, skipped"]
        if zf.getinfo(member).file_size > MAX_METADATA_BYTES:
            return [f"{archive}: {METADATA} is over {MAX_METADATA_BYTES} bytes, skipped"]
        try:
            metadata = _load_yaml(zf.read(member).decode("utf-8"))
        except Exception as err:  # noqa: BLE001 - any YAML problem is one line for the instructor
            return [f"{archive}: {METADATA} cannot be read ({str(err).splitlines()[0][:200]}), skipped"]
        if not isinstance(metadata, dict):
            return [f"{archive}: {METADATA} is not a mapping of submission folders, skipped"]
        top = PurePosixPath(member).parent
        for folder, record in sorted(metadata.items(), key=lambda kv: str(kv[0])):
            submitters = _field(record, "submitters") or []
            if not isinstance(submitters, list) or not submitters:
                lines.append(f"{archive.name}: {folder}: no submitters listed, skipped")
                continue
            files, refused = _members(zf, top / str(folder))
            lines += [f"{archive.name}: {folder}: {line}" for line in refused]
            if not files:
                lines.append(f"{archive.name}: {folder}: no files in the export, skipped")
                continue
            size = sum(info.file_size for info, _ in files)
            if size > MAX_SUBMISSION_BYTES:
                lines.append(f"{archive.name}: {folder}: {size} bytes uncompressed, over the limit of "
                             f"{MAX_SUBMISSION_BYTES}, skipped")
                continue
            stamp = timestamp(_field(record, "created_at"))
            for submitter in submitters:
                student = student_id(submitter) if isinstance(submitter, dict) else None
                if student is None:
                    lines.append(f"{archive.name}: {folder}: a submitter has neither SID nor e-mail, skipped")
                    continue
                target = course.folder("submitted", student, assignment)
                kept = _keep_previous(target)
                target.mkdir(parents=True)
                for info, rel in files:
                    dest = target.joinpath(*rel.parts)
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src, dest.open("wb") as out:
                        shutil.copyfileobj(src, out)
                (target / "timestamp.txt").write_text(stamp or datetime.now(timezone.utc).strftime(
                    "%Y-%m-%d %H:%M:%S.%f %Z"))
                when = f" submitted {stamp}" if stamp else " (no submission time in the export: stamped now)"
                lines.append(f"{student}: collected {folder} into {target}{when}{kept}")
    return lines
