"""JudgeChecks: decide every test cell outside the student's kernel (see ``coursekit.verdicts``).

Runs after ``SandboxedExecute``. The reference records come from running the instructor's source
notebook the same way, once, cached under ``.coursekit/reference`` (owner-only) and keyed by a
fingerprint of the source folder. If the reference cannot be computed (e.g. the course data is
missing) the notebook is not judged at all: ``ReferenceUnavailable`` names the cause.
"""
from __future__ import annotations

import copy
import fcntl
import json
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import nbformat
from nbformat import NotebookNode
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Dict, Unicode

from coursekit.course import assignment_source, grading_dir, helper_dir
from coursekit.helpers import judge_resolver, trusted_module
from coursekit.notebook import grade_id, is_test_cell
from coursekit.optional import (FIGURE, FIGURE_NOT_DRAWN, NOT_RUN_VERDICT, apply_optional_parts, is_not_run,
                                optional_mode, stamp_not_run)
from coursekit.verdicts import RecordsByCell, apply_verdicts, fingerprint, records_by_cell


class ReferenceUnavailable(RuntimeError):
    """The instructor's reference records for a notebook cannot be computed (an instructor problem)."""


@contextmanager
def environment(variables: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of a block."""
    saved = {key: os.environ.get(key) for key in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _first_error(nb: NotebookNode) -> str | None:
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                return f"{out.get('ename')}: {str(out.get('evalue'))[:300]}"
    return None


class JudgeChecks(NbGraderPreprocessor):
    """Replace each test cell's outputs by the verdict on its published check records."""

    reference_cache = Unicode(".coursekit/reference", help="Where the reference records are cached "
                                                           "(relative to the course root).").tag(config=True)
    environment = Dict(help="Environment variables set while judges run (e.g. where the data they read "
                            "lives).").tag(config=True)

    def preprocess(self, nb: NotebookNode, resources: dict[str, Any]) -> tuple[NotebookNode, dict[str, Any]]:
        assignment, notebook = resources["nbgrader"]["assignment"], resources["nbgrader"]["notebook"]
        reference = self.reference(assignment, notebook)
        helpers = helper_dir(self.config, assignment)
        checks, records = trusted_module(helpers, "checks"), trusted_module(helpers, "records")
        resolve = judge_resolver(grading_dir(self.config, assignment), helpers)
        with environment(self.environment):
            verdicts = apply_verdicts(nb, reference, checks, records.RECORD_MIME, resolve)
        for cell in nb.cells:  # optional parts the grader left out: 0 of 0 points, and the reason
            if is_test_cell(cell) and is_not_run(cell) and not cell.metadata["coursekit"].get("records"):
                cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=NOT_RUN_VERDICT)]
                verdicts[grade_id(cell)] = []
            elif is_not_run(cell) and cell.metadata["coursekit"].get("not_run_reason") == FIGURE:
                cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=FIGURE_NOT_DRAWN)]
        resources.setdefault("coursekit", {})["verdicts"] = verdicts
        return nb, resources

    # --- the reference records --------------------------------------------------------------------

    def cache_file(self, assignment: str, notebook: str) -> Path:
        source = assignment_source(self.config, assignment)
        files = [p for p in source.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                 and ".ipynb_checkpoints" not in p.parts and (p.suffix != ".ipynb" or p.stem == notebook)]
        root = Path(CourseDirectory(config=self.config).root)
        mode = optional_mode(root)  # in "ungraded" mode the reference leaves out the optional parts too
        return root / self.reference_cache / assignment / f"{notebook}-{mode}-{fingerprint(files)}.json"

    def _cached(self, assignment: str, notebook: str) -> dict[str, Any]:
        """{"records": grade_id -> records, "seconds": how long the reference took}: cached, or computed
        now by running the source notebook in the sandbox like a submission."""
        cache = self.cache_file(assignment, notebook)
        _private_dirs(cache.parent, stop=Path(CourseDirectory(config=self.config).root))
        with open(cache.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # parallel graders compute it once
            if cache.is_file():
                return json.loads(cache.read_text())
            started = time.monotonic()
            entry = {"records": self._compute(assignment, notebook), "seconds": time.monotonic() - started}
            cache.write_text(json.dumps(entry, sort_keys=True))
            os.chmod(cache, 0o600)
        return entry

    def reference(self, assignment: str, notebook: str) -> RecordsByCell:
        """The reference solution's records for one notebook (raises ReferenceUnavailable)."""
        return self._cached(assignment, notebook)["records"]

    def reference_seconds(self, assignment: str, notebook: str) -> float:
        """How long the reference solution of one notebook took to run (raises ReferenceUnavailable)."""
        return float(self._cached(assignment, notebook)["seconds"])

    def _compute(self, assignment: str, notebook: str) -> RecordsByCell:
        from coursekit.preprocessors.sandboxed_execute import SandboxedExecute

        source = assignment_source(self.config, assignment)
        nb = nbformat.read(str(source / f"{notebook}.ipynb"), as_version=4)
        mode = optional_mode(Path(CourseDirectory(config=self.config).root))
        # the reference runs what a submission runs: the optional parts that count for nothing are left out
        nb = stamp_not_run(apply_optional_parts(copy.deepcopy(nb), mode), nb, mode)
        resources = {"metadata": {"path": str(source)},
                     "nbgrader": {"assignment": assignment, "notebook": notebook, "student": "(reference)"}}
        executor = SandboxedExecute(config=self.config, parent=self.parent)
        nb, resources = executor.preprocess(nb, resources)
        failed = [grade_id(c) for c in nb.cells if is_test_cell(c)
                  and any(o.get("output_type") == "error" for o in c.get("outputs", []))]
        problems = resources["coursekit"]["problems"]
        if problems or failed:
            why = "; ".join(problems) or f"failing: {', '.join(failed)}; first error: {_first_error(nb)}"
            missing = [p for p in executor.read_only if not Path(p).exists()]
            if missing:
                why = (f"the course data is missing ({', '.join(missing)} does not exist; "
                       f"`coursekit fetch-data` fetches it): {why}")
            raise ReferenceUnavailable(f"the reference solution of {notebook}.ipynb does not pass its own tests "
                                       f"({why})")
        records = trusted_module(helper_dir(self.config, assignment), "records")
        return records_by_cell(nb, records.RECORD_MIME)


def _private_dirs(folder: Path, stop: Path) -> None:
    """Create ``folder`` and its parents up to ``stop`` owner-only (0700)."""
    missing = []
    while not folder.exists() and folder != stop and stop in folder.parents:
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        path.mkdir(mode=0o700)
