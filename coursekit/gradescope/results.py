"""Gradescope's ``results.json``: build it, validate it against ``results.schema.json``, write it.

Students see the top-level ``output`` and every test whose ``visibility`` allows it; ``stdout`` (where
``run`` prints instructor-only lines) stays hidden (``stdout_visibility: hidden``), and ``extra_data``
is shown to staff only.
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
    passed: bool | None = None  # None: decided by score == max_score
    pending: bool = False  # graded later by staff: no passed/failed status

    def as_json(self) -> dict[str, Any]:
        out = {"name": self.name, "score": round(float(self.score), 4), "max_score": round(float(self.max_score), 4),
               "output": self.output, "visibility": self.visibility}
        if not self.pending:
            passed = self.passed if self.passed is not None else self.score >= self.max_score
            out["status"] = "passed" if passed else "failed"
        return out


@dataclass
class Results:
    """Everything one run reports: what students see (``output``, ``tests``) and what staff see."""

    tests: list[Test] = field(default_factory=list)
    student_lines: list[str] = field(default_factory=list)
    instructor_lines: list[str] = field(default_factory=list)
    execution_time: float = 0.0
    leaderboard: list[dict[str, Any]] = field(default_factory=list)

    @property
    def score(self) -> float:
        return sum(t.score for t in self.tests)

    @property
    def max_score(self) -> float:
        return sum(t.max_score for t in self.tests)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "score": round(self.score, 4),
            "execution_time": round(max(self.execution_time, 0.0), 3),
            "output": "\n".join(self.student_lines),
            "stdout_visibility": HIDDEN,
            "extra_data": {"instructor_notes": list(self.instructor_lines)},
            "tests": [t.as_json() for t in self.tests],
        }
        if self.leaderboard:
            out["leaderboard"] = self.leaderboard
        return out


def failure(student_line: str, instructor_line: str = "", tests: list[Test] | None = None) -> Results:
    """Score 0 with one reason the student understands (and, for staff, what went wrong)."""
    return Results(tests=tests or [], student_lines=[student_line],
                   instructor_lines=[instructor_line] if instructor_line else [])


def validate(data: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``data`` follows Gradescope's results contract."""
    import jsonschema

    jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))).validate(data)


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
