"""The judge: verdicts from plain records, criteria from the reference only, scored the nbgrader way."""
from __future__ import annotations

import sys

import pytest
from nbformat.v4 import new_code_cell, new_notebook
from nbgrader.utils import determine_grade

from coursekit.verdicts import apply_verdicts, judge_cell, records_in, RECORD_MIME
from notebook_cells import SOURCE_DIR

sys.path.insert(0, str(SOURCE_DIR))
from hw6utils import checks  # noqa: E402  (the trusted comparison functions)


def record(name, value, **criteria):
    return {"name": name, "value": checks.to_plain(value), "tol": 1e-4, "visible": True, **criteria}


def test_matching_values_pass_and_wrong_values_fail():
    reference = [record("a", [1.0, 2.0]), record("b", "x", visible=False)]
    assert judge_cell(reference, [record("a", [1.0, 2.00001]), record("b", "x")], checks.compare) == ([], 1.0)
    reasons, fraction = judge_cell(reference, [record("a", [1.0, 2.5]), record("b", "x")], checks.compare)
    assert fraction == 0.0 and reasons[0].startswith("a: ")


def test_hidden_failures_do_not_reveal_the_check():
    reasons, _ = judge_cell([record("secret_name", 16, visible=False)], [record("secret_name", 9)], checks.compare)
    assert reasons == ["a hidden check failed"]


def test_missing_check_fails_and_extra_records_are_ignored():
    reasons, _ = judge_cell([record("a", 1)], [record("zzz", 1)], checks.compare)
    assert reasons == ["a did not run"]


def test_criteria_come_from_the_reference_not_the_student():
    reference = [record("loss", 0.5, at_most=0.01)]
    forged = record("loss", 0.5, at_most=1e9)  # the student's record claims a lax bound
    reasons, _ = judge_cell(reference, [forged], checks.compare)
    assert reasons and "above the limit 0.01" in reasons[0]


def test_every_record_of_a_name_must_pass():
    reference = [record("a", 3)]
    reasons, _ = judge_cell(reference, [record("a", 3), record("a", 4)], checks.compare)
    assert reasons


def test_partial_credit_is_linear_between_the_bounds():
    reference = [record("accuracy", 0.0, partial=[70.0, 80.0])]
    for accuracy, expected in [(65.0, 0.0), (70.0, 0.0), (75.0, 0.5), (80.0, 1.0), (93.0, 1.0)]:
        reasons, fraction = judge_cell(reference, [record("accuracy", accuracy)], checks.compare, checks.partial_credit)
        assert reasons == [] and fraction == pytest.approx(expected)
    _, fraction = judge_cell(reference, [record("accuracy", float("nan"))], checks.compare, checks.partial_credit)
    assert fraction == 0.0


@pytest.mark.parametrize("accuracy, points", [(75.0, 2.5), (85.0, 5.0), (60.0, 0.0)])
def test_apply_verdicts_is_scored_by_nbgrader(accuracy, points):
    cell = new_code_cell("check('accuracy', acc, partial=(70, 80))")
    cell.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "points": 5,
                                 "grade_id": "test_accuracy", "schema_version": 3}
    cell.outputs = [{"output_type": "display_data", "metadata": {},
                     "data": {RECORD_MIME: record("accuracy", accuracy)}}]
    nb = new_notebook(cells=[cell])
    apply_verdicts(nb, {"test_accuracy": [record("accuracy", 82.0, partial=[70.0, 80.0])]},
                   checks.compare, credit=checks.partial_credit)
    assert determine_grade(nb.cells[0])[0] == pytest.approx(points)
    assert records_in(nb.cells[0].outputs) == []  # the student's records are gone from the graded notebook


def test_objects_that_equal_everything_cannot_be_recorded():
    class Anything:
        def __eq__(self, other):
            return True

    with pytest.raises(TypeError):
        checks.to_plain(Anything())
    assert checks.to_plain(type("F", (float,), {"__eq__": lambda s, o: True})(2.0)) == 2.0  # plain float
