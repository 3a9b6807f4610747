"""Gradescope's ``results.json``: build it, validate it against ``results.schema.json``, write it.

Students see the top-level ``output`` and every test whose ``visibility`` allows it; ``stdout`` (where
``run`` prints instructor-only lines) stays hidden (``stdout_visibility: hidden``), and ``extra_data``
is shown to staff only.

Rules every results.json follows (``check_rules`` states them; the tests run it on every file they get):
a row is "passed" only if it ran and earned its maximum, and a row below its maximum is "failed"; the
total is the sum of the rows, which are autograded only (written answers are graded in Gradescope's own
questions); when any row waits for publication, so do the total and the top-level output (Gradescope
shows the total score, and the output is written from it, so either would tell a hidden result early).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA_PATH = Path(__file__).with_name("results.schema.json")
VISIBLE, AFTER_PUBLISHED, HIDDEN = "visible", "after_published", "hidden"


@dataclass
class Test:
    """One row of the Gradescope results page."""

    name: str
    score: float
    max_score: float
    output: str
    visibility: str = VISIBLE
    passed: bool | None = None  # None: decided by score == max_score; a check that did not run: False
    number: str = ""  # Gradescope orders and labels rows by it ("3.2")

    def as_json(self) -> dict[str, Any]:
        out = {"name": self.name, "score": round(float(self.score), 4), "max_score": round(float(self.max_score), 4),
               "output": self.output, "visibility": self.visibility}
        if self.number:
            out["number"] = self.number
        full = self.score >= self.max_score
        passed = full if self.passed is None else (self.passed and full)  # never "passed" below the maximum
        out["status"] = "passed" if passed else "failed"
        return out


@dataclass
class Results:
    """Everything one run reports: what students see (``output``, ``tests``) and what staff see."""

    tests: list[Test] = field(default_factory=list)
    student_lines: list[str] = field(default_factory=list)
    instructor_lines: list[str] = field(default_factory=list)
    execution_time: float = 0.0

    @property
    def score(self) -> float:
        return sum(t.score for t in self.tests)

    @property
    def max_score(self) -> float:
        return sum(t.max_score for t in self.tests)

    @property
    def waits_for_publication(self) -> bool:
        return any(t.visibility != VISIBLE for t in self.tests)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "score": round(self.score, 4),
            "execution_time": round(max(self.execution_time, 0.0), 3),
            "output": "\n".join(self.student_lines),
            "stdout_visibility": HIDDEN,
            "extra_data": {"instructor_notes": list(self.instructor_lines)},
            "tests": [t.as_json() for t in self.tests],
        }
        if self.waits_for_publication:
            out["visibility"] = AFTER_PUBLISHED
        check_rules(out)
        return out


def failure(student_line: str, instructor_line: str = "", tests: list[Test] | None = None) -> Results:
    """Score 0 with one reason the student understands (and, for staff, what went wrong)."""
    return Results(tests=tests or [], student_lines=[student_line],
                   instructor_lines=[instructor_line] if instructor_line else [])


def check_rules(data: dict[str, Any]) -> None:
    """Raise ``ValueError`` unless ``data`` reads right (the rules in this module's docstring)."""
    problems = []
    tests = data.get("tests", [])
    for t in tests:
        full = t["score"] >= t["max_score"]
        if t.get("status") not in ("passed", "failed"):
            problems.append(f"{t['name']!r}: no passed/failed status")
        elif (t["status"] == "passed") != full and not (t["status"] == "failed" and t["max_score"] == 0):
            problems.append(f"{t['name']!r}: status {t['status']} at {t['score']:g}/{t['max_score']:g}")
    if tests and abs(data["score"] - sum(t["score"] for t in tests)) > 1e-6:
        problems.append(f"score {data['score']:g} is not the sum of the rows")
    if any(t.get("visibility", VISIBLE) != VISIBLE for t in tests) and data.get("visibility") not in (AFTER_PUBLISHED, HIDDEN):
        problems.append("rows wait for publication but the total and output are visible now")
    names = [t["name"] for t in tests]
    if len(set(names)) != len(names):
        problems.append("two rows share a name")
    if problems:
        raise ValueError("results.json does not read right: " + "; ".join(problems))


def validate(data: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``data`` follows Gradescope's results contract."""
    import jsonschema

    jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))).validate(data)
    check_rules(data)


def write(results: Results | dict[str, Any], path: Path) -> dict[str, Any]:
    """Validate and write ``results.json`` atomically (readable by root only); returns what was written."""
    data = results.as_json() if isinstance(results, Results) else results
    validate(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return data
