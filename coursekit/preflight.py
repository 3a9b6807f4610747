"""Check a student's submission before nbgrader sees it.

nbgrader stops grading a student at the first unreadable notebook, skips renamed ones and says
little about edited tests. Here every submission is inspected first and a clean staged copy is
handed to nbgrader; each problem becomes one plain-language reason line for the instructor.
The student's original files are never modified.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbgrader.utils import compute_checksum


@dataclass(frozen=True)
class ExpectedNotebook:
    """What the gradebook knows about one notebook of the assignment."""

    name: str
    grade_ids: frozenset[str]
    test_checksums: dict[str, str]  # grade_id -> checksum of each autograder test cell


@dataclass
class SubmissionCheck:
    """The outcome of inspecting one student's submission folder."""

    student: str
    staged: dict[str, Path] = field(default_factory=dict)  # notebook name -> staged file
    missing: list[str] = field(default_factory=list)  # expected notebooks that cannot be graded
    reasons: list[str] = field(default_factory=list)


def _read_notebook(path: Path) -> tuple[nbformat.NotebookNode | None, str | None]:
    """Parse a notebook file; return (notebook, None) or (None, why it is unreadable)."""
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        return None, f"{path.name}: cannot be read ({err.__class__.__name__})"
    if not raw.strip():
        return None, f"{path.name}: the file is empty"
    try:
        json.loads(raw)
    except json.JSONDecodeError as err:
        return None, f"{path.name}: not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})"
    try:
        with warnings.catch_warnings():  # old notebooks without cell ids are fine: nbformat adds them
            warnings.simplefilter("ignore")
            nb = nbformat.reads(raw, as_version=4)
            nbformat.validate(nb)
    except Exception as err:  # nbformat raises several types for malformed notebooks
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else err.__class__.__name__
        return None, f"{path.name}: valid JSON but not a valid notebook ({first_line[:120]})"
    return nb, None


def _grade_ids(nb: nbformat.NotebookNode) -> set[str]:
    return {c.metadata["nbgrader"]["grade_id"] for c in nb.cells
            if isinstance(c.get("metadata", {}).get("nbgrader"), dict)
            and c.metadata["nbgrader"].get("grade_id")}


def _drop_duplicate_ids(nb: nbformat.NotebookNode) -> list[str]:
    """Strip the nbgrader metadata from every repeat of a grade_id (first copy wins); return the ids."""
    seen, repeated = set(), []
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader")
        grade_id = meta.get("grade_id") if isinstance(meta, dict) else None
        if grade_id in seen:
            del cell.metadata["nbgrader"]
            repeated.append(grade_id)
        elif grade_id:
            seen.add(grade_id)
    return sorted(set(repeated))


def _test_cells(nb: nbformat.NotebookNode) -> dict[str, nbformat.NotebookNode]:
    cells = {}
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader")
        if isinstance(meta, dict) and meta.get("grade") and not meta.get("solution") and meta.get("grade_id"):
            cells[meta["grade_id"]] = cell
    return cells


def _shadowed_module(path: Path) -> str | None:
    """The importable module a submitted ``name.py`` or package folder would hide, if any.

    The kernel runs with the submission folder first on ``sys.path``, so a student's ``numpy.py``
    would replace numpy for the tests too.
    """
    if path.suffix == ".py" and path.is_file():
        name = path.stem
    elif path.is_dir() and (path / "__init__.py").exists():
        name = path.name
    else:
        return None
    if name.isidentifier() and (name in sys.stdlib_module_names or importlib.util.find_spec(name) is not None):
        return name
    return None


def _copy_without_links(source: Path, target: Path) -> list[str]:
    """Copy a folder, leaving out symbolic links (which could point at instructor files); return them."""
    skipped: list[str] = []

    def ignore(folder: str, names: list[str]) -> list[str]:
        links = [n for n in names if os.path.islink(os.path.join(folder, n))]
        skipped.extend(os.path.relpath(os.path.join(folder, n), source) for n in links)
        return links

    shutil.copytree(source, target, ignore=ignore, dirs_exist_ok=True)
    return skipped


def check_submission(student: str, folder: Path, expected: list[ExpectedNotebook],
                     staging: Path) -> SubmissionCheck:
    """Inspect ``folder`` (submitted/<student>/<assignment>) and stage what can be graded into ``staging``."""
    check = SubmissionCheck(student=student)
    by_name = {nb.name: nb for nb in expected}
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)

    if not folder.is_dir():
        check.missing = sorted(by_name)
        check.reasons.append("no submission folder: every notebook scores 0")
        return check

    readable: dict[str, nbformat.NotebookNode] = {}
    for path in sorted(folder.iterdir()):
        if path.is_symlink():
            check.reasons.append(f"{path.name}: symbolic link ignored")
        elif path.suffix == ".ipynb" and path.is_file():
            nb, problem = _read_notebook(path)
            if problem:
                check.reasons.append(problem)
            else:
                readable[path.stem] = nb
        elif (module := _shadowed_module(path)) is not None:
            check.reasons.append(f"{path.name}: would shadow the installed module {module!r}, ignored")
        elif path.is_file():
            shutil.copy2(path, staging / path.name)
        elif path.is_dir() and not path.name.startswith("."):
            skipped = _copy_without_links(path, staging / path.name)
            check.reasons.extend(f"{path.name}/{name}: symbolic link ignored" for name in skipped)

    # Renamed notebooks: match an unknown file to the absent expected notebook sharing most grade ids.
    chosen: dict[str, nbformat.NotebookNode] = {name: nb for name, nb in readable.items() if name in by_name}
    for name, nb in readable.items():
        if name in by_name:
            continue
        overlap = {exp.name: len(_grade_ids(nb) & exp.grade_ids) for exp in expected if exp.name not in chosen}
        best = max(overlap, key=overlap.get, default=None)
        if best is not None and overlap[best] > 0:
            chosen[best] = nb
            check.reasons.append(f"{name}.ipynb: renamed notebook, graded as {best}.ipynb")
        else:
            check.reasons.append(f"{name}.ipynb: not part of the assignment, ignored")

    for exp in expected:
        nb = chosen.get(exp.name)
        if nb is None:
            check.missing.append(exp.name)
            if not any(r.startswith(f"{exp.name}.ipynb:") for r in check.reasons):
                check.reasons.append(f"{exp.name}.ipynb: missing from the submission, scores 0")
            else:
                check.reasons.append(f"{exp.name}.ipynb: cannot be graded, scores 0")
            continue
        duplicates = _drop_duplicate_ids(nb)
        if duplicates:
            check.reasons.append(f"{exp.name}.ipynb: duplicated cell(s) {', '.join(duplicates)}: "
                                 "only the first copy is graded")
        present = _test_cells(nb)
        deleted = sorted(set(exp.test_checksums) - set(present))
        if deleted:
            check.reasons.append(f"{exp.name}.ipynb: deleted test cell(s) {', '.join(deleted)} restored and run")
        edited = sorted(gid for gid, cell in present.items()
                        if gid in exp.test_checksums and compute_checksum(cell) != exp.test_checksums[gid])
        if edited:
            check.reasons.append(f"{exp.name}.ipynb: edited test cell(s) {', '.join(edited)} replaced by the originals")
        target = staging / f"{exp.name}.ipynb"
        nbformat.write(nb, str(target))
        check.staged[exp.name] = target
    return check
