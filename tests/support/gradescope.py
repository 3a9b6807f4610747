"""The one check every Gradescope ``results.json`` the test suite produces goes through.

``assert_reads_right`` states what a student and a member of staff may rely on: Gradescope's format
(the schema), rows whose status agrees with their score, a total that is the sum of autograded rows only
(written answers are not rows), nothing that tells a hidden row's result before publication, no progress
bars in stdout, and staff notes that name the sandbox uid kernels really ran as.
"""
from __future__ import annotations

import re
from typing import Any

from coursekit import sandbox
from coursekit.gradescope.results import VISIBLE, check_rules, validate

PROGRESS_BAR = re.compile(r"\d+%\|[^|\n]*\|")  # tqdm's "40%|####      |"
TOTAL = re.compile(r"\d+(\.\d+)?\s*/\s*\d+(\.\d+)?")  # "1 / 3"


def expected_max(manifest: dict[str, Any]) -> float:
    """The autograded points of an autograder zip's manifest (what the rows' maxima must add up to)."""
    if manifest["mode"] == "log":
        return float(manifest["log_points"])
    return sum(float(c["points"]) for c in manifest["cells"] if c["kind"] == "auto")


def assert_reads_right(results: dict[str, Any], manifest: dict[str, Any] | None = None, stdout: str = "") -> None:
    validate(results)  # the schema, then check_rules: status agrees with score, total = sum, ...
    check_rules(results)
    tests = results["tests"]
    assert results["stdout_visibility"] == "hidden"
    waiting = [t for t in tests if t["visibility"] != VISIBLE]
    if waiting:  # one bit per upload would leak through the total or the output: both wait too
        assert results.get("visibility") == "after_published", results.get("visibility")
        assert not TOTAL.search(results["output"]), f"a total in the visible output: {results['output']!r}"
    for t in tests:
        assert not t["name"].startswith(("answer_", "written_", "test_", "p4a_")), f"an internal id as name: {t['name']}"
        if t["status"] == "passed":
            assert t["score"] == t["max_score"] and not t["output"].startswith(("Not run", "Not checked")), t
    if manifest is not None and tests:
        assert abs(sum(t["max_score"] for t in tests) - expected_max(manifest)) < 1e-6, \
            f"maximum {sum(t['max_score'] for t in tests)} != autograded points {expected_max(manifest)}"
        manual = {c.get("title") for c in manifest["cells"] if c["kind"] == "manual"}
        assert not manual & {t["name"] for t in tests}, "a written answer is an autograder row"
    assert not PROGRESS_BAR.search(stdout), "a progress bar in Gradescope's stdout"
    for note in results.get("extra_data", {}).get("instructor_notes", []):
        uids = [int(u) for u in re.findall(r"\buid (\d+)", note)]
        assert all(u in sandbox.UID_RANGE for u in uids), f"a staff note names a uid kernels never run as: {note}"
