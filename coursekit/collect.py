"""Bring student work into submitted/<student>/<assignment>/ without losing anything.

Accepts, per student, a folder or a .zip named after the student id. Existing submissions are
kept as ``<assignment>.previous-N`` rather than overwritten; zip members that would escape the
target folder (absolute paths, ``..``) and links are refused with a reason.
"""
from __future__ import annotations

import re
import shutil
import zipfile
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from coursekit.course import Course

STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _keep_previous(folder: Path) -> Path | None:
    if not folder.exists():
        return None
    n = 1
    while (backup := folder.with_name(f"{folder.name}.previous-{n}")).exists():
        n += 1
    folder.rename(backup)
    return backup


def _extract_zip(archive: Path, target: Path) -> list[str]:
    problems = []
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            name = PurePosixPath(info.filename)
            is_link = (info.external_attr >> 16) & 0o170000 == 0o120000
            if name.is_absolute() or ".." in name.parts or is_link:
                problems.append(f"{archive.name}: refused member {info.filename!r}")
                continue
            parts = name.parts[1:] if len(name.parts) > 1 and name.parts[0] == archive.stem else name.parts
            if info.is_dir() or not parts:
                continue
            dest = target.joinpath(*parts)
            dest.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, dest.open("wb") as out:
                shutil.copyfileobj(src, out)
    return problems


def collect(course: Course, assignment: str, paths: list[Path]) -> list[str]:
    """Copy each student folder or zip into submitted/; return one line per student or problem."""
    lines = []
    for path in paths:
        student = path.stem if path.suffix == ".zip" else path.name
        if not STUDENT_ID.match(student):
            lines.append(f"{path}: {student!r} is not a usable student id (letters, digits, _ . -), skipped")
            continue
        if not path.exists():
            lines.append(f"{path}: does not exist, skipped")
            continue
        target = course.folder("submitted", student, assignment)
        backup = _keep_previous(target)
        target.mkdir(parents=True)
        if path.suffix == ".zip":
            try:
                lines.extend(_extract_zip(path, target))
            except zipfile.BadZipFile:
                lines.append(f"{path}: not a valid zip file, skipped")
                shutil.rmtree(target)
                if backup:
                    backup.rename(target)
                continue
        elif path.is_dir():
            shutil.copytree(path, target, symlinks=True, dirs_exist_ok=True)
        else:
            lines.append(f"{path}: expected a folder or a .zip, skipped")
            shutil.rmtree(target)
            if backup:
                backup.rename(target)
            continue
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f %Z")
        (target / "timestamp.txt").write_text(stamp)
        kept = f" (previous submission kept as {backup.name})" if backup else ""
        lines.append(f"{student}: collected into {target}{kept}")
    return lines
