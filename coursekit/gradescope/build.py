"""Build the Gradescope autograder zip for one assignment.

Zip layout (unpacked by Gradescope into ``/autograder/source``)::

    setup.sh, run_autograder      Gradescope's entry points (templates/), at the root
    requirements.lock             every package of the image, pinned with its sha256 (lock.py; pip included)
    gradescope.json               the manifest: mode, assignment, cells and their points, limits
    kit/coursekit/                this package (run_autograder puts kit/ on PYTHONPATH)
    course/                       a course folder: nbgrader_config.py, pyproject.toml, source/<assignment>,
                                  data/ (the surname data); in notebooks mode also release/<assignment>,
                                  gradebook.db with the assignment released, and .coursekit/reference/
                                  (the reference solution's check records, computed here once)
"""
from __future__ import annotations

import json
import re
import shutil
import tempfile
import tomllib
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import nbformat

import coursekit
from coursekit.course import Course, CourseError
from coursekit.gradescope import lock
from coursekit.notebook import is_test_cell, points
from coursekit.optional import HEADING, apply_optional_parts, optional_mode, optional_points

MODES = ("log", "notebooks")
TEMPLATES = Path(__file__).with_name("templates")
KIT_DIR = Path(coursekit.__file__).resolve().parent
KIT_PYPROJECT = KIT_DIR.parent / "pyproject.toml"
TORCH_INDEX = "https://download.pytorch.org/whl/cpu"
LOG_NAME = "submission_log.json"
LOG_NOTEBOOK = "surname_classification.ipynb"
REFERENCE_STUDENT = "reference"  # the sample student graded once at build time
# Gradescope's container size and timeout per mode (README, "Gradescope"): log mode fits the default;
# notebooks mode runs every notebook of the homework and needs more. run_autograder ends inside it.
CONTAINER = {"log": {"cpus": 0.5, "memory_mb": 768, "timeout_seconds": 600},
             "notebooks": {"cpus": 1.0, "memory_mb": 1536, "timeout_seconds": 1200}}
PART = re.compile(r"^(\d+)(?:\.(\d+)|([a-z])?)(?:[–-]\d*[a-z])?\.?\s+(.*)$")  # 3a. / 4.4 / 2a–2c. Title
MAX_UPLOAD_BYTES = 50 * 1024 * 1024  # per uploaded notebook
EXECUTABLE = 0o100755 << 16
REGULAR = 0o100644 << 16
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", LOG_NAME)

CONFIG_BLOCK = '''

# --- appended by `coursekit gradescope` (only in the autograder zip) -----------------------------
# In Gradescope's container this course folder is root-only (chmod 700), so what sandboxed code may read
# (the read_only folders and environment paths below: the data set) is published under
# $COURSEKIT_PUBLIC_DIR and read from there.
import os as _gs_os

if _gs_os.environ.get("COURSEKIT_PUBLIC_DIR"):
    _gs_root = _gs_os.path.dirname(_gs_os.path.abspath(__file__))

    def _gs_published(path):
        if not isinstance(path, str) or not _gs_os.path.isabs(path):
            return path
        rel = _gs_os.path.relpath(path, _gs_root)
        return path if rel.startswith("..") else _gs_os.path.join(_gs_os.environ["COURSEKIT_PUBLIC_DIR"], rel)

    for _gs_section in ("SandboxedExecute", "JudgeChecks"):
        if _gs_section not in c:
            continue
        if "read_only" in c[_gs_section]:
            c[_gs_section].read_only = [_gs_published(p) for p in c[_gs_section].read_only]
        if "environment" in c[_gs_section]:
            c[_gs_section].environment = {k: _gs_published(v) for k, v in c[_gs_section].environment.items()}

# The submission's time budget is what is left of Gradescope's timeout (run_autograder sets it), so a
# notebook that runs long stops with a reason before Gradescope would stop the whole run.
if _gs_os.environ.get("COURSEKIT_GRADESCOPE_BUDGET"):
    c.Budget.minimum = int(_gs_os.environ["COURSEKIT_GRADESCOPE_BUDGET"])
    c.Budget.factor = 0.0
'''


def pinned_requirements() -> tuple[str, list[str]]:
    """(the torch pin, every pin) from the kit's pyproject.toml; refuses anything not pinned exactly."""
    deps = tomllib.loads(KIT_PYPROJECT.read_text())["project"]["dependencies"]
    loose = [d for d in deps if "==" not in d]
    if loose:
        raise CourseError(f"{KIT_PYPROJECT}: the autograder needs exact pins, not {', '.join(loose)}")
    torch = [d for d in deps if d.split("==")[0].strip().lower() == "torch"]
    if not torch:
        raise CourseError(f"{KIT_PYPROJECT} does not pin torch")
    return torch[0], deps


def lock_disagreements() -> list[str]:
    """Pins of pyproject.toml that the image's lock file holds at another version (or not at all)."""
    locked, out = lock.locked(), []
    for name, requirement in lock.kit_pins().items():
        if name in lock.EXCLUDED:
            continue
        version = requirement.split("==", 1)[1].strip()
        if locked.get(name, "").split("+")[0] != version:
            out.append(f"{name}=={version} (lock: {locked.get(name, 'missing')})")
    return out


def _label(heading: str) -> tuple[str, str, str] | None:
    """("3", "3a", "A recurrent layer") for a heading "3a. A recurrent layer", else None."""
    match = PART.match(heading)
    if not match:
        return None
    problem, sub, letter, title = match.groups()
    label = heading[:heading.index(title)].strip().rstrip(".")
    return problem, label, title.strip()


def graded_cells(source: Path, mode: str) -> tuple[list[str], list[dict[str, Any]]]:
    """Notebook names and their graded cells: autograded test cells (with or without hidden tests) and
    manually graded answers, with the points the release gets (the optional-parts ``mode`` applied as
    generating the release applies it, whether or not a release was generated yet), whether they belong
    to an optional part, and the homework's name and number for each (the part heading above it: "3a A
    recurrent layer", numbered 3.1, 3.2, ... within a problem)."""
    names, cells, counters = [], [], {}
    for index, path in enumerate(sorted(source.glob("*.ipynb")), start=1):
        names.append(path.stem)
        nb = nbformat.read(str(path), as_version=4)
        optional = optional_points(nb)
        apply_optional_parts(nb, mode)
        problem, label, title = str(index), "", path.stem.replace("_", " ")
        for cell in nb.cells:
            heading = HEADING.match(cell.source.lstrip().splitlines()[0]) if cell.cell_type == "markdown" and \
                cell.source.strip() else None
            part = _label(heading.group(2).strip()) if heading else None
            if part:
                problem, label, title = part
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if not meta.get("grade"):
                continue
            gid = meta["grade_id"]
            counters[problem] = counters.get(problem, 0) + 1
            detail = re.sub(r"^(test|written|answer)_", "", gid).replace("_", " ")
            title = re.sub(r"\\partial\s*", "∂", title).replace("$", "").replace("`", "")
            worth = points(cell)
            counted = "" if gid not in optional or worth else " (optional, not counted)"
            cells.append({"notebook": path.stem, "grade_id": gid, "points": worth,
                          "kind": "auto" if is_test_cell(cell) else "manual",
                          "hidden": "BEGIN HIDDEN TESTS" in cell.source,
                          "optional": gid in optional,
                          "number": f"{problem}.{counters[problem]}",
                          "title": f"{label + ' ' if label else ''}{title[:60]}: {detail}{counted}"})
    return names, cells


def _stage_course(course: Course, assignment: str, target: Path) -> None:
    target.mkdir(parents=True)
    config = (course.root / "nbgrader_config.py").read_text()
    (target / "nbgrader_config.py").write_text(config + CONFIG_BLOCK)
    if (course.root / "pyproject.toml").is_file():
        shutil.copy2(course.root / "pyproject.toml", target / "pyproject.toml")
    shutil.copytree(course.folder("source", assignment), target / "source" / assignment, ignore=IGNORE)
    names = course.root / "data" / "names"
    if names.is_dir():
        shutil.copytree(names, target / "data" / "names", ignore=IGNORE)


def _compute_references(course: Course, assignment: str) -> int:
    """Release the assignment into the staged gradebook, then grade the sample ``reference`` student once:
    that caches the reference records in ``.coursekit/reference/`` (shipped, never recomputed per
    student) and proves the zip's pipeline gives the reference solution full autograded points."""
    from nbgrader.api import Gradebook

    from coursekit.grading import autograde
    from coursekit.samples import build_samples

    course.generate_release(assignment)
    build_samples(course, assignment)
    [result] = autograde(course, assignment, [REFERENCE_STUDENT])
    if result.max_code_score == 0 or result.code_score < result.max_code_score:
        raise CourseError(f"the reference solution earns {result.code_score:g}/{result.max_code_score:g} autograded "
                          f"points in the autograder being built: {'; '.join(result.reasons) or 'see autograded/'}")
    with Gradebook(course.db_url, course.course_id) as gb:
        gb.remove_student(REFERENCE_STUDENT)
    for kind in ("submitted", "autograded", "feedback"):
        shutil.rmtree(course.folder(kind), ignore_errors=True)
    cached = list((course.root / ".coursekit" / "reference" / assignment).glob("*.json"))
    if not cached:
        raise CourseError(f"grading the reference left no cached records in {course.root / '.coursekit'}")
    return len(cached)


def _write_zip(staging: Path, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(staging.rglob("*")):
            if path.is_dir():
                continue
            info = zipfile.ZipInfo(path.relative_to(staging).as_posix(), date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = EXECUTABLE if path.name in ("setup.sh", "run_autograder") else REGULAR
            zf.writestr(info, path.read_bytes())
    tmp.replace(out)


def build(course: Course, assignment: str, mode: str, out: Path) -> dict[str, Any]:
    """Write the autograder zip to ``out``; returns the manifest written into it."""
    if mode not in MODES:
        raise CourseError(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
    course.source_notebooks(assignment)  # clear error for an unknown assignment
    torch_pin, pins = pinned_requirements()
    drift = lock_disagreements()
    if drift:
        raise CourseError(f"{lock.LOCK} does not match {KIT_PYPROJECT}: {', '.join(drift)}; regenerate it with "
                          "`python -m coursekit.gradescope.lock`")
    staging = Path(tempfile.mkdtemp(prefix="gradescope-build-"))
    try:
        _stage_course(course, assignment, staging / "course")
        staged = Course.open(staging / "course")
        names, cells = graded_cells(staged.folder("source", assignment), optional_mode(staged.root))
        manifest: dict[str, Any] = {
            "mode": mode, "assignment": assignment, "built": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "kit_version": getattr(coursekit, "__version__", "0"), "notebooks": names,
            "cells": cells, "max_upload_bytes": MAX_UPLOAD_BYTES, "container": CONTAINER[mode],
        }
        if mode == "log":
            from coursekit import gradelog

            if LOG_NOTEBOOK.removesuffix(".ipynb") not in names:
                raise CourseError(f"log mode grades {LOG_NAME} of {LOG_NOTEBOOK}, which {assignment} does not have")
            manifest.update(log_name=LOG_NAME, log_notebook=LOG_NOTEBOOK, max_log_bytes=gradelog.DEFAULT_MAX_BYTES,
                            log_points=gradelog.default_max_score(staging / "course"))
        else:
            manifest["reference_notebooks"] = _compute_references(staged, assignment)
        shutil.copytree(KIT_DIR, staging / "kit" / "coursekit", ignore=IGNORE)
        shutil.copyfile(lock.LOCK, staging / "requirements.lock")
        (staging / "gradescope.json").write_text(json.dumps(manifest, indent=1))
        for name in ("setup.sh", "run_autograder"):
            text = (TEMPLATES / name).read_text()
            text = text.replace("@TORCH_REQUIREMENT@", torch_pin).replace("@TORCH_INDEX@", TORCH_INDEX)
            (staging / name).write_text(text)
        _write_zip(staging, out)
        return manifest
    finally:
        shutil.rmtree(staging, ignore_errors=True)
