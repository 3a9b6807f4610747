"""Verdicts decided outside the student's kernel.

Test cells call ``check(name, value, ...)`` (from the assignment's ``<helper>/checks.py``; the record
format is owned by ``<helper>/records.py``). While the grader runs a notebook, each check publishes its
value as plain JSON in the cell's output; nothing in the student's kernel compares or decides. Here, in
the grader's own process, every test cell's records are compared with the records the instructor's
reference solution published for the same cell, using the criteria (tolerance, bounds, judge) of the
*reference* records and the functions of the instructor's copy of the helper package and of the instructor-only grading
package (judges that hold answers). The cell's outputs
are then replaced by the verdict, which is what nbgrader's ``SaveAutoGrades`` scores; the student's
records are kept in the cell's metadata (``coursekit.records``) for staff tools such as the similarity
report, and the failed checks by name (``coursekit.failed_checks``) for feedback.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

from nbformat import NotebookNode
from nbformat.v4 import new_output

from coursekit.notebook import grade_id, is_test_cell

RecordsByCell = dict[str, list[dict[str, Any]]]
NO_REFERENCE = "the reference solution published no checks for this cell"


def records_in(outputs: list[dict[str, Any]], mime: str) -> list[dict[str, Any]]:
    """The check records published in a cell's outputs under ``mime`` (anything malformed is skipped)."""
    records = []
    for out in outputs:
        data = out.get("data") if isinstance(out, dict) else None
        record = data.get(mime) if isinstance(data, dict) else None
        if isinstance(record, dict) and isinstance(record.get("name"), str):
            records.append(record)
    return records


def records_by_cell(nb: NotebookNode, mime: str) -> RecordsByCell:
    """grade_id -> records, for every test cell of a notebook executed in record mode."""
    return {grade_id(cell): records_in(cell.get("outputs", []), mime) for cell in nb.cells if is_test_cell(cell)}


def _label(ref: dict[str, Any]) -> str:
    """How a failed check is named to the student: visible checks by name, hidden ones by name only
    (never with the expected value)."""
    return ref["name"] if ref.get("visible") else f"hidden check {ref['name']!r}"


Resolver = Callable[[str], Callable[..., Any]]


def _judged(resolve: Resolver, judge: str | None, value: Any, reference: Any) -> Any:
    """What is compared: the value itself, or what the instructor's judge computes from it."""
    return resolve(judge)(value, reference=reference) if judge else value


def judge_record(ref: dict[str, Any], record: dict[str, Any], checks: ModuleType,
                 resolve: Resolver | None = None) -> tuple[str | None, float]:
    """One student record against its reference record: (why it fails or None, fraction earned).

    ``resolve`` turns a judge name into the instructor's function (``coursekit.helpers.judge_resolver``);
    by default the helper package's own ``checks.resolve_judge``."""
    judge = ref.get("judge")
    resolve = resolve or checks.resolve_judge
    try:
        actual = checks.to_plain(_judged(resolve, judge, record.get("value"), ref.get("value")))
        if ref.get("partial"):
            return None, checks.partial_credit(ref, actual)
        criteria = ref
        if judge and ref.get("at_most") is None and ref.get("at_least") is None:
            criteria = dict(ref, value=checks.to_plain(_judged(resolve, judge, ref.get("value"), ref.get("value"))))
        return checks.compare(criteria, actual), 1.0
    except ValueError as err:  # a judge's own words about the data (e.g. "expected a trained RNN ...")
        return f"could not be judged: {' '.join(str(err).split())[:200]}", 0.0
    except Exception as err:  # malformed data from the student's kernel is a failure, not a crash
        return f"could not be judged ({err.__class__.__name__})", 0.0


def judge_cell(reference: list[dict[str, Any]], student: list[dict[str, Any]], checks: ModuleType,
               resolve: Resolver | None = None) -> tuple[list[str], float]:
    """Judge one test cell: (reasons it fails, fraction of its points earned).

    Criteria come only from the reference records; the student's records contribute values only.
    Every reference check must appear and every student record of that name must pass; a check with
    ``partial`` bounds scales the cell's points instead (the lowest fraction counts).
    """
    reasons, _, fraction = judge_cell_named(reference, student, checks, resolve)
    return reasons, fraction


def judge_cell_named(reference: list[dict[str, Any]], student: list[dict[str, Any]], checks: ModuleType,
                     resolve: Resolver | None = None) -> tuple[list[str], list[str], float]:
    """:func:`judge_cell`, with every failed check also named alone, in the reference's words ("<name>
    failed", "hidden check '<name>' failed", "<name> did not run"): what feedback may repeat, since a
    reason's words about values can carry the student's text and a name can hold any character."""
    if not reference:
        return [NO_REFERENCE], [NO_REFERENCE], 0.0
    reasons, named, fraction = [], [], 1.0
    by_name: dict[str, list[dict[str, Any]]] = {}
    for record in student:
        by_name.setdefault(record["name"], []).append(record)
    for ref in reference:
        got = by_name.get(ref["name"])
        if not got:
            reasons.append(f"{_label(ref)} did not run")
            named.append(reasons[-1])
            continue
        for record in got:
            why, earned = judge_record(ref, record, checks, resolve)
            fraction = min(fraction, earned)
            if why:
                reasons.append(f"{ref['name']}: {why}" if ref.get("visible") else f"{_label(ref)} failed")
                named.append(f"{_label(ref)} failed")
                break
    return reasons, named, 0.0 if reasons else fraction


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


def apply_verdicts(nb: NotebookNode, reference: RecordsByCell, checks: ModuleType, mime: str,
                   resolve: Resolver | None = None) -> dict[str, list[str]]:
    """Judge every test cell of an executed notebook in place; return grade_id -> failure reasons.

    ``mime`` is the records' MIME type (``<helper>/records.py``'s RECORD_MIME).

    A test cell the reference knows nothing about fails closed.
    """
    verdicts = {}
    for cell in nb.cells:
        if not is_test_cell(cell):
            continue
        gid = grade_id(cell)
        student = records_in(cell.get("outputs", []), mime)
        reasons, named, fraction = judge_cell_named(reference.get(gid, []), student, checks, resolve)
        cell.outputs = verdict_outputs(reasons, len(reference.get(gid, [])), fraction,
                                       float(cell.metadata["nbgrader"].get("points", 0)))
        meta = cell.metadata.setdefault("coursekit", {})
        meta["records"] = student
        meta["failed_checks"] = named  # always written here: never what a submission brought along
        verdicts[gid] = reasons
    return verdicts


def fingerprint(paths: list[Path]) -> str:
    """A hash of files' contents, to know when cached reference records are stale."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(str(path.name).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
