"""Verdicts decided outside the student's kernel.

Test cells call ``check(name, value, ...)`` (from the assignment's ``<helper>/checks.py``). While the
grader runs a notebook, each check publishes its value as plain JSON in the cell's output under
``RECORD_MIME``; nothing in the student's kernel compares or decides. Here, in the grader's own
process, every test cell's records are compared with the records the instructor's reference
solution published for the same cell, using the criteria (tolerance, bounds) of the *reference*
records and the comparison function of the instructor's copy of ``checks.py``. The cell's outputs are
then replaced by the verdict, which is what nbgrader's ``SaveAutoGrades`` scores.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

from nbformat import NotebookNode
from nbformat.v4 import new_output

RECORD_MIME = "application/vnd.coursekit.check+json"
RECORD_ENV = "COURSEKIT_RECORD_CHECKS"
Compare = Callable[[dict[str, Any], Any], "str | None"]


def load_checks_module(helper_dir: Path) -> ModuleType:
    """The instructor's ``checks.py`` (trusted), loaded by path under a private module name."""
    path = helper_dir / "checks.py"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: test cells need its `check` function")
    spec = importlib.util.spec_from_file_location(f"_coursekit_trusted_checks_{abs(hash(str(path)))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if getattr(module, "RECORD_MIME", None) != RECORD_MIME:
        raise ValueError(f"{path} does not publish records as {RECORD_MIME}")
    return module


def is_test_cell(cell: NotebookNode) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return cell.get("cell_type") == "code" and bool(meta.get("grade")) and not meta.get("solution")


def records_in(outputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The check records published in a cell's outputs (anything malformed is skipped)."""
    records = []
    for out in outputs:
        record = out.get("data", {}).get(RECORD_MIME) if isinstance(out, dict) else None
        if isinstance(record, dict) and isinstance(record.get("name"), str):
            records.append(record)
    return records


def judge_cell(reference: list[dict[str, Any]], student: list[dict[str, Any]], compare: Compare,
               credit: Callable[[dict[str, Any], Any], float] | None = None) -> tuple[list[str], float]:
    """Judge one test cell: (reasons it fails, fraction of its points earned).

    Criteria come only from the reference records; the student's records contribute values only.
    Every reference check must appear and every student record of that name must pass; a check with
    ``partial`` bounds scales the cell's points instead (the lowest fraction counts).
    """
    if not reference:
        return ["the reference solution published no checks for this cell"], 0.0
    reasons, fraction = [], 1.0
    by_name: dict[str, list[dict[str, Any]]] = {}
    for record in student:
        by_name.setdefault(record["name"], []).append(record)
    for ref in reference:
        label = ref["name"] if ref.get("visible") else "a hidden check"
        got = by_name.get(ref["name"])
        if not got:
            reasons.append(f"{label} did not run")
            continue
        for record in got:
            try:
                if ref.get("partial") and credit is not None:
                    fraction = min(fraction, credit(ref, record.get("value")))
                    why = None
                else:
                    why = compare(ref, record.get("value"))
            except Exception as err:  # malformed data from the student's kernel is a failure, not a crash
                why = f"could not be compared ({err.__class__.__name__})"
            if why:
                reasons.append(f"{ref['name']}: {why}" if ref.get("visible") else "a hidden check failed")
                break
    return reasons, 0.0 if reasons else fraction


def verdict_outputs(reasons: list[str], n_checks: int, fraction: float = 1.0,
                    points: float = 0.0) -> list[NotebookNode]:
    """The outputs a judged test cell keeps, in the form nbgrader scores: a pass line, a number of
    points (partial credit), or one error naming the failed checks."""
    if reasons:
        return [new_output("error", ename="CheckFailed", evalue="; ".join(reasons),
                           traceback=[f"CheckFailed: {reason}" for reason in reasons])]
    if fraction < 1.0:
        earned = round(points * fraction, 4)
        return [new_output("stream", name="stdout", text=f"Partial credit: {fraction:.0%} of the points.\n"),
                new_output("execute_result", data={"text/plain": repr(earned)}, execution_count=None)]
    return [new_output("stream", name="stdout", text=f"All {n_checks} checks passed.\n")]


def apply_verdicts(nb: NotebookNode, reference: dict[str, list[dict[str, Any]]], compare: Compare,
                   skip: set[str] = frozenset(), credit: Callable[[dict[str, Any], Any], float] | None = None
                   ) -> dict[str, list[str]]:
    """Judge every test cell of an executed notebook in place; return grade_id -> failure reasons.

    Cells in ``skip`` (test cells that publish no checks) keep nbgrader's in-kernel verdict.
    """
    verdicts = {}
    for cell in nb.cells:
        if not is_test_cell(cell) or cell.metadata["nbgrader"]["grade_id"] in skip:
            continue
        grade_id = cell.metadata["nbgrader"]["grade_id"]
        records = reference.get(grade_id, [])
        reasons, fraction = judge_cell(records, records_in(cell.get("outputs", [])), compare, credit)
        cell.outputs = verdict_outputs(reasons, len(records), fraction, float(cell.metadata["nbgrader"].get("points", 0)))
        verdicts[grade_id] = reasons
    return verdicts


def reference_records(nb: NotebookNode) -> dict[str, list[dict[str, Any]]]:
    """grade_id -> records, from a reference notebook executed in record mode."""
    return {cell.metadata["nbgrader"]["grade_id"]: records_in(cell.get("outputs", []))
            for cell in nb.cells if is_test_cell(cell)}


def fingerprint(paths: list[Path]) -> str:
    """A hash of files' contents, to know when cached reference records are stale."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(str(path.name).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def save_records(path: Path, records: dict[str, list[dict[str, Any]]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records, indent=1, sort_keys=True))
