"""Intake: look at a submission before nbgrader grades it, and make it gradable without losing anything.

Runs as nbgrader's ``Autograde.pre_convert_hook`` / ``post_convert_hook`` (see nbgrader_config.py), so
``nbgrader autograde``, the formgrader and ``coursekit autograde`` all see submissions the same way:

* every problem becomes one plain-language reason line (unreadable or missing notebooks, renamed or
  extra notebooks, deleted, edited or duplicated test cells — nbgrader's own sanitising steps restore
  those — symbolic links and special files);
* a renamed notebook (``rnn_gradients (1).ipynb``) is copied next to it under its real name and graded;
* links and special files are moved out of the submission into ``.coursekit/quarantine`` (nbgrader would
  otherwise copy what a link points at, as the instructor);
* unreadable notebooks, and notebooks whose metadata holds the wrong JSON types
  (``coursekit.notebook.metadata_problem``), are taken out of the list nbgrader grades, and every notebook
  that could not be graded gets 0 for its autograder tests after the run (written answers stay for
  manual grading).

Fail closed: nbgrader ignores a pre-convert hook that fails and then copies the submission's files,
following links, as the instructor. So intake either finishes for a submission (``prepare``) or the
student is not graded at all: importing this module (nbgrader does, to load the hook) puts a guard in
front of nbgrader's ``Autograde.init_assignment``, the step that copies files, which lets a submission
through only right after intake finished for it and a fresh look finds no link or special file. Every
door (``coursekit autograde``, ``nbgrader autograde``, the formgrader) goes through that step.
"""
from __future__ import annotations

import functools
import importlib.util
import json
import os
import shutil
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import nbformat
from nbgrader.utils import compute_checksum

from coursekit.course import assignment_source
from coursekit.entry_kinds import odd_kind
from coursekit.gradebook_engines import reuse_engines
from coursekit.notebook import grade_id, is_test_cell, metadata_problem, nbgrader_meta

QUARANTINE = Path(".coursekit") / "quarantine"


@dataclass(frozen=True)
class ExpectedNotebook:
    """What the gradebook and the release know about one notebook of the assignment."""

    name: str
    grade_ids: frozenset[str]
    test_checksums: dict[str, str]  # grade_id -> checksum of each released autograder test cell


@dataclass
class Intake:
    """The outcome of looking at one submission folder (submitted/<student>/<assignment>)."""

    folder: Path
    notebooks: dict[str, Path] = field(default_factory=dict)  # expected name -> file nbgrader grades
    ungradable: list[str] = field(default_factory=list)  # expected notebooks that cannot be graded
    reasons: list[str] = field(default_factory=list)
    renamed: dict[Path, str] = field(default_factory=dict)  # student's file -> expected name
    quarantine: list[Path] = field(default_factory=list)  # links and special files to move out
    failed: str = ""  # why intake could not finish (then nothing of the submission is graded)


def expected_notebooks(config: Any, assignment: str) -> list[ExpectedNotebook]:
    """The assignment's notebooks as the gradebook knows them, with the released test cells."""
    from nbgrader.api import Gradebook, MissingEntry
    from nbgrader.coursedir import CourseDirectory

    coursedir = CourseDirectory(config=config)
    with Gradebook(coursedir.db_url, coursedir.course_id) as gb:
        try:
            notebooks = gb.find_assignment(assignment).notebooks
        except MissingEntry:
            raise LookupError(f"assignment {assignment!r} is not in the gradebook; "
                              f"run `coursekit release {assignment}` first") from None
        ids = {nb.name: {c.name for c in [*nb.grade_cells, *nb.solution_cells, *nb.source_cells]}
               for nb in notebooks}
    expected = []
    for name, grade_ids in sorted(ids.items()):
        released = Path(coursedir.format_path(coursedir.release_directory, ".", assignment)) / f"{name}.ipynb"
        tests = {grade_id(c): c for c in nbformat.read(str(released), as_version=4).cells
                 if is_test_cell(c)} if released.is_file() else {}
        expected.append(ExpectedNotebook(name, frozenset(grade_ids),
                                         {gid: compute_checksum(c) for gid, c in tests.items()}))
    return expected


def _schema_place(err: Exception) -> str:
    """Where in the notebook nbformat's schema found ``err`` ("cell 2 source: "), or "" when it does not say."""
    where = list(getattr(err, "absolute_path", None) or [])
    if not where:
        return ""
    if where[0] == "cells" and len(where) > 1 and isinstance(where[1], int):
        place = f"cell {where[1] + 1}" + "".join(f" {part}" for part in where[2:])
    else:
        place = ("notebook " if where[0] == "metadata" else "") + " ".join(str(part) for part in where)
    return f"{place[:80]}: "


def read_notebook(path: Path) -> tuple[nbformat.NotebookNode | None, str | None]:
    """Parse a notebook file; return (notebook, None) or (None, why it is unreadable)."""
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        return None, f"{path.name}: cannot be read ({err.__class__.__name__})"
    if not raw.strip():
        return None, f"{path.name}: the file is empty"
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as err:
        return None, f"{path.name}: not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})"
    except ValueError as err:  # e.g. an integer longer than Python reads
        return None, f"{path.name}: not valid JSON ({str(err)[:120]})"
    problem = metadata_problem(data)  # first: nbformat's errors for these do not name the field
    del data  # nbformat parses the text again (a notebook may carry megabytes of outputs)
    if problem:
        return None, f"{path.name}: malformed metadata ({problem[:160]})"
    try:
        with warnings.catch_warnings():  # old notebooks without cell ids are fine: nbformat adds them
            warnings.simplefilter("ignore")
            nb = nbformat.reads(raw, as_version=4)
            nbformat.validate(nb)
    except Exception as err:  # nbformat raises several types for malformed notebooks
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else err.__class__.__name__
        return None, f"{path.name}: valid JSON but not a valid notebook ({_schema_place(err)}{first_line[:120]})"
    problem = metadata_problem(nb)  # again on nbformat's version 4 (an older notebook is converted)
    if problem:
        return None, f"{path.name}: malformed metadata ({problem[:160]})"
    return nb, None


def _grade_ids(nb: nbformat.NotebookNode) -> set[str]:
    return {grade_id(c) for c in nb.cells if grade_id(c)}


def _test_cell_reasons(name: str, nb: nbformat.NotebookNode, exp: ExpectedNotebook) -> list[str]:
    """What nbgrader's sanitising steps will repair in this notebook, said once."""
    reasons, seen, repeated = [], set(), set()
    for cell in nb.cells:
        gid = grade_id(cell)
        if gid in seen:
            repeated.add(gid)
        elif gid:
            seen.add(gid)
    if repeated:
        reasons.append(f"{name}.ipynb: duplicated cell(s) {', '.join(sorted(repeated))}: only one copy is graded")
    present = {grade_id(c): c for c in nb.cells if is_test_cell(c)}
    deleted = sorted(set(exp.test_checksums) - set(present))
    if deleted:
        reasons.append(f"{name}.ipynb: deleted test cell(s) {', '.join(deleted)} restored and run")
    edited = sorted(gid for gid, cell in present.items()
                    if gid in exp.test_checksums and compute_checksum(cell) != exp.test_checksums[gid])
    if edited:
        reasons.append(f"{name}.ipynb: edited test cell(s) {', '.join(edited)} replaced by the originals")
    return reasons


def _raise(err: OSError) -> None:
    raise err


def _odd_entries(folder: Path) -> list[tuple[Path, str]]:
    """(path, kind) of every link, hard link and special file anywhere in the submission, never
    followed. Walks by file descriptor (any depth, any path length); any error is raised, never skipped."""
    if os.path.islink(folder) or os.path.islink(folder.parent):
        raise OSError(f"{folder} is reached through a link")
    odd = []
    for root, dirs, files, rootfd in os.fwalk(folder, onerror=_raise, follow_symlinks=False):
        for name in [*dirs, *files]:
            info = os.stat(name, dir_fd=rootfd, follow_symlinks=False)
            kind = odd_kind(info.st_mode, info.st_nlink)
            if kind:
                odd.append((Path(root, name), kind))
    return odd


def instructor_names(source: Path) -> set[str]:
    """Module names the instructor ships with an assignment (top level of source/<assignment>: the helper
    package): a submission's copy is the released one, replaced by the instructor's at grading, so it never
    counts as shadowing, whatever the grader's own ``sys.path`` can import."""
    if not source.is_dir():
        return set()
    return {p.stem if p.suffix == ".py" else p.name for p in source.iterdir()}


def shadowing_entries(folder: Path, trusted: set[str] = frozenset()) -> list[Path]:
    """Top-level files or packages in ``folder`` that would hide an installed module (``numpy.py``): a
    kernel runs with its folder first on ``sys.path``. ``trusted`` names are the instructor's."""
    found = []
    for path in sorted(folder.iterdir()):
        if path.is_symlink():
            continue
        is_package = path.is_dir() and (path / "__init__.py").is_file()
        name = path.stem if path.suffix == ".py" and path.is_file() else path.name if is_package else None
        if name and name not in trusted and name.isidentifier() and (
                name in sys.stdlib_module_names or importlib.util.find_spec(name) is not None):
            found.append(path)
    return found


def inspect(folder: Path, expected: list[ExpectedNotebook], trusted: set[str] = frozenset()) -> Intake:
    """Look at a submission folder without changing it: what nbgrader should grade, and the reasons
    (``trusted``: the instructor's module names, see ``instructor_names``)."""
    intake = Intake(folder=folder)
    by_name = {exp.name: exp for exp in expected}
    if not folder.is_dir():
        intake.ungradable = sorted(by_name)
        intake.reasons.append("no submission folder: every notebook scores 0")
        return intake
    for path, kind in _odd_entries(folder):
        intake.quarantine.append(path)
        shown = str(path.relative_to(folder))
        shown = shown if len(shown) <= 120 else f"{shown[:60]}...{shown[-40:]}"
        intake.reasons.append(f"{shown}: {kind} moved out of the submission, not used")

    for path in shadowing_entries(folder, trusted):
        intake.reasons.append(f"{path.name}: would shadow the installed module {path.stem!r}, not used")

    readable: dict[str, tuple[Path, nbformat.NotebookNode]] = {}
    for path in sorted(p for p in folder.iterdir() if p.suffix == ".ipynb" and p not in intake.quarantine):
        nb, problem = read_notebook(path)
        if problem:
            intake.reasons.append(problem)
        else:
            readable[path.stem] = (path, nb)

    chosen = {name: entry for name, entry in readable.items() if name in by_name}
    for name, (path, nb) in readable.items():
        if name in by_name:
            continue
        copy_of = next((n for n, (p, _) in chosen.items() if p.read_bytes() == path.read_bytes()), None)
        overlap = {exp.name: len(_grade_ids(nb) & exp.grade_ids) for exp in expected if exp.name not in chosen}
        best = max(overlap, key=overlap.get, default=None)
        if copy_of is not None:
            intake.reasons.append(f"{path.name}: renamed notebook, graded as {copy_of}.ipynb")
        elif best is not None and overlap[best] > 0:
            chosen[best] = (path, nb)
            intake.renamed[path] = best
            intake.reasons.append(f"{path.name}: renamed notebook, graded as {best}.ipynb")
        else:
            intake.reasons.append(f"{path.name}: not part of the assignment, ignored")

    for exp in expected:
        if exp.name not in chosen:
            intake.ungradable.append(exp.name)
            unreadable = any(r.startswith(f"{exp.name}.ipynb:") for r in intake.reasons)
            intake.reasons.append(f"{exp.name}.ipynb: {'cannot be graded' if unreadable else 'missing from the submission'}"
                                  ", scores 0")
            continue
        path, nb = chosen[exp.name]
        intake.notebooks[exp.name] = folder / f"{exp.name}.ipynb"
        intake.reasons.extend(_test_cell_reasons(exp.name, nb, exp))
    return intake


def _open_folder(folder: Path, relative: Path) -> int:
    """A descriptor of ``folder/relative``, opened one name at a time without following any link."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    for part in relative.parts:
        try:
            child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
        finally:
            os.close(fd)
        fd = child
    return fd


def make_gradable(intake: Intake, course_root: Path, student: str, assignment: str) -> None:
    """Apply an inspection: renamed notebooks copied under their real name, links and special files
    moved (renamed, by descriptor: any depth) into the quarantine folder under numbered names. The
    student's own files are never changed or deleted."""
    for path, name in intake.renamed.items():
        target = intake.folder / f"{name}.ipynb"
        if not target.exists():
            shutil.copyfile(path, target, follow_symlinks=False)
    if not intake.quarantine:
        return
    keep = course_root / QUARANTINE / student / assignment
    keep.mkdir(parents=True, exist_ok=True, mode=0o700)
    keep_fd = os.open(keep, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        taken = set(os.listdir(keep_fd))
        for path in sorted(intake.quarantine, key=lambda p: len(p.parts), reverse=True):
            parent = _open_folder(intake.folder, path.parent.relative_to(intake.folder))
            try:
                number = len(taken)
                while (dest := f"{number:05d}-{path.name[:200]}") in taken:
                    number += 1
                os.rename(path.name, dest, src_dir_fd=parent, dst_dir_fd=keep_fd)
                taken.add(dest)
            finally:
                os.close(parent)
    finally:
        os.close(keep_fd)


def _folder_key(folder: Path) -> tuple[int, int]:
    info = os.stat(folder, follow_symlinks=False)
    return info.st_dev, info.st_ino


_FINISHED: set[tuple[int, int]] = set()  # submission folders intake finished for, until nbgrader copies them
_REASONS: dict[str, tuple[str, list[str]]] = {}  # submission folder -> (why intake failed, reason lines)


def prepare(folder: Path, expected: list[ExpectedNotebook], course_root: Path, student: str,
            assignment: str, trusted: set[str] = frozenset()) -> Intake:
    """Inspect and make gradable, or fail closed: on any error ``failed`` says why in one line and no
    notebook is gradable. Never raises: one student's files never stop the others."""
    try:
        intake = inspect(folder, expected, trusted)
        make_gradable(intake, course_root, student, assignment)
        left = _odd_entries(folder) if folder.is_dir() else []
        if left:
            raise OSError(f"{len(left)} link(s) or special file(s) could not be moved out")
        if folder.is_dir():
            _FINISHED.add(_folder_key(folder))
        return intake
    except Exception as err:  # noqa: BLE001 - whatever it is, the student is not graded on what is left
        why = f"intake could not finish ({err.__class__.__name__}: {str(err)[:160]}): not graded, every notebook scores 0"
        return Intake(folder=folder, ungradable=[exp.name for exp in expected], reasons=[why], failed=why)


def _guarded_init_assignment(original: Callable[..., None]) -> Callable[..., None]:
    """nbgrader's ``Autograde.init_assignment`` (which copies the submission's files), let through only for
    a folder intake just finished, with no link or special file in it now; otherwise the student's
    notebooks score 0, one reason line is logged, and nbgrader grades nothing of that submission."""

    @functools.wraps(original)
    def init_assignment(self: Any, assignment_id: str, student_id: str) -> None:
        folder = Path(self._format_source(assignment_id, student_id))
        failed, reasons = _REASONS.pop(str(folder), ("", []))
        try:
            key = _folder_key(folder)
            ready = key in _FINISHED and not _odd_entries(folder)
            _FINISHED.discard(key)
        except OSError:
            ready = False
        if not ready:
            zero_ungradable(self.coursedir, assignment_id, student_id, None)
            reasons = [failed or "intake did not finish: not graded, every notebook scores 0"]
        for line in reasons:  # in nbgrader's log: the terminal, or the formgrader's message
            self.log.warning("intake: %s", line)
        if ready and self.notebooks:
            return original(self, assignment_id, student_id)
        self.notebooks = []  # (with nothing gradable the pre-convert hook has recorded the zeros already)
        return None

    init_assignment.coursekit_guard = True  # type: ignore[attr-defined]
    return init_assignment


def _guarded_init_destination(original: Callable[..., bool]) -> Callable[..., bool]:
    """nbgrader's ``init_destination`` runs before any hook and, without ``--force``, reads the
    submission's timestamp.txt: a link or FIFO there is never opened; the submission is skipped."""

    @functools.wraps(original)
    def init_destination(self: Any, assignment_id: str, student_id: str) -> bool:
        stamp = Path(self._format_source(assignment_id, student_id), "timestamp.txt")
        try:
            info = os.stat(stamp, follow_symlinks=False)
        except FileNotFoundError:
            info = None
        except OSError:
            return False
        if info is not None and odd_kind(info.st_mode, info.st_nlink):
            if not self.force and os.path.lexists(self._format_dest(assignment_id, student_id)):
                self.log.warning("intake: %s: timestamp.txt is a %s, not read: skipped (grade with --force)",
                                 student_id, odd_kind(info.st_mode, info.st_nlink))
                return False
        return original(self, assignment_id, student_id)

    init_destination.coursekit_guard = True  # type: ignore[attr-defined]
    return init_destination


def guard_nbgrader() -> None:
    """Put the guards in front of nbgrader's steps that read or copy submission files before or
    without intake (once; every door imports this module)."""
    from nbgrader.converters import Autograde

    if not getattr(Autograde.init_assignment, "coursekit_guard", False):
        Autograde.init_assignment = _guarded_init_assignment(Autograde.init_assignment)
    if not getattr(Autograde.init_destination, "coursekit_guard", False):
        Autograde.init_destination = _guarded_init_destination(Autograde.init_destination)


def zero_ungradable(config: Any, assignment: str, student: str, notebooks: list[str] | None) -> None:
    """Record 0 for the autograder tests of notebooks that could not be graded (manual grades stay);
    ``None``: every notebook of the submission. ``config``: the course's, or nbgrader's CourseDirectory."""
    from nbgrader.api import Gradebook
    from nbgrader.coursedir import CourseDirectory

    coursedir = config if isinstance(config, CourseDirectory) else CourseDirectory(config=config)
    if notebooks is not None and not notebooks:
        return
    with Gradebook(coursedir.db_url, coursedir.course_id) as gb:
        gb.update_or_create_student(student)
        submission = gb.update_or_create_submission(assignment, student)
        for nb in submission.notebooks:
            if notebooks is None or nb.name in notebooks:
                for grade in nb.grades:
                    if grade.cell.cell_type == "code":
                        grade.auto_score = 0.0
                        grade.needs_manual_grade = False
        gb.db.commit()


# --- nbgrader's hooks ---------------------------------------------------------------------------------

def _where(notebooks: list[str]) -> tuple[Any, Path, str, str] | None:
    """(course configuration, submission folder, student, assignment) from the paths nbgrader grades."""
    from coursekit.course import Course, find_course_dir

    if not notebooks:
        return None
    folder = Path(os.path.abspath(notebooks[0])).parent  # never resolved: the notebook may be a link
    return Course.open(find_course_dir(folder)).config, folder, folder.parent.name, folder.name


_PLANS: dict[Path, list[str]] = {}  # submission folder -> notebooks to zero after nbgrader's run


def before_autograde(notebooks: list[str], **_: Any) -> None:
    """``Autograde.pre_convert_hook``: make the submission gradable; ``notebooks`` is updated in place
    (nbgrader passes the list it is about to grade: every notebook, or those of ``--notebook``)."""
    reuse_engines()  # nbgrader's gradebook keeps its compiled SQL for the rest of this process
    where = _where(notebooks)
    if where is None:
        return
    config, folder, student, assignment = where
    _FINISHED.discard(_folder_key(folder))  # only this run's intake lets the submission through
    expected = expected_notebooks(config, assignment)
    intake = prepare(folder, expected, Path(config.CourseDirectory.root), student, assignment,
                     instructor_names(assignment_source(config, assignment)))
    _REASONS[str(folder)] = (intake.failed, intake.reasons)  # the guard logs them, in nbgrader's log
    if intake.failed:  # the guard refuses the submission
        notebooks[:] = []
        return
    asked = {Path(n).name for n in notebooks}
    everything = asked >= {p.name for p in folder.glob("*.ipynb")}
    wanted = {name for name, path in intake.notebooks.items()
              if everything or path.name in asked or any(src.name in asked and target == name
                                                        for src, target in intake.renamed.items())}
    notebooks[:] = [str(intake.notebooks[name]) for name in sorted(wanted)]
    _PLANS[folder] = [name for name in intake.ungradable if everything or f"{name}.ipynb" in asked]
    if not notebooks:
        zero_ungradable(config, assignment, student, _PLANS.pop(folder))


def after_autograde(notebooks: list[str], **_: Any) -> None:
    """``Autograde.post_convert_hook``: 0 for the autograder tests of notebooks that could not be graded."""
    where = _where(notebooks)
    if where is None:
        return
    config, folder, student, assignment = where
    zero_ungradable(config, assignment, student, _PLANS.pop(folder, []))


guard_nbgrader()
