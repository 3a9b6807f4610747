"""The judge: verdicts from plain records, criteria from the reference only, scored the nbgrader way."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from nbformat.v4 import new_code_cell, new_notebook
from nbgrader.utils import determine_grade

from coursekit.helpers import trusted_module
from coursekit.verdicts import apply_verdicts, judge_cell, records_in
from coursekit.testing.notebooks import SOURCE_DIR

checks = trusted_module(SOURCE_DIR / "hw6utils", "checks")  # the instructor's copy, as the grader loads it
RECORD_MIME = trusted_module(SOURCE_DIR / "hw6utils", "records").RECORD_MIME


def record(name, value, **criteria):
    return {"name": name, "value": checks.to_plain(value), "tol": 1e-4, "visible": True, **criteria}


def test_matching_values_pass_and_wrong_values_fail():
    reference = [record("a", [1.0, 2.0]), record("b", "x", visible=False)]
    assert judge_cell(reference, [record("a", [1.0, 2.00001]), record("b", "x")], checks) == ([], 1.0)
    reasons, fraction = judge_cell(reference, [record("a", [1.0, 2.5]), record("b", "x")], checks)
    assert fraction == 0.0 and reasons[0].startswith("a: ")


def test_hidden_failures_do_not_reveal_the_check():
    reasons, _ = judge_cell([record("secret_name", 16, visible=False)], [record("secret_name", 9)], checks)
    assert reasons == ["hidden check 'secret_name' failed"]  # its name, never its expected value
    assert "16" not in reasons[0]


def test_missing_check_fails_and_extra_records_are_ignored():
    reasons, _ = judge_cell([record("a", 1)], [record("zzz", 1)], checks)
    assert reasons == ["a did not run"]


def test_criteria_come_from_the_reference_not_the_student():
    reference = [record("loss", 0.5, at_most=0.01)]
    forged = record("loss", 0.5, at_most=1e9)  # the student's record claims a lax bound
    reasons, _ = judge_cell(reference, [forged], checks)
    assert reasons and "above the limit 0.01" in reasons[0]


def test_every_record_of_a_name_must_pass():
    reference = [record("a", 3)]
    reasons, _ = judge_cell(reference, [record("a", 3), record("a", 4)], checks)
    assert reasons


def test_partial_credit_is_linear_between_the_bounds():
    reference = [record("accuracy", 0.0, partial=[70.0, 80.0])]
    for accuracy, expected in [(65.0, 0.0), (70.0, 0.0), (75.0, 0.5), (80.0, 1.0), (93.0, 1.0)]:
        reasons, fraction = judge_cell(reference, [record("accuracy", accuracy)], checks)
        assert reasons == [] and fraction == pytest.approx(expected)
    _, fraction = judge_cell(reference, [record("accuracy", float("nan"))], checks)
    assert fraction == 0.0


@pytest.mark.parametrize("accuracy, points", [(75.0, 2.5), (85.0, 5.0), (60.0, 0.0)])
def test_apply_verdicts_is_scored_by_nbgrader(accuracy, points):
    cell = new_code_cell("check('accuracy', acc, partial=(70, 80))")
    cell.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "points": 5,
                                 "grade_id": "test_accuracy", "schema_version": 3}
    cell.outputs = [{"output_type": "display_data", "metadata": {},
                     "data": {RECORD_MIME: record("accuracy", accuracy)}}]
    nb = new_notebook(cells=[cell])
    apply_verdicts(nb, {"test_accuracy": [record("accuracy", 82.0, partial=[70.0, 80.0])]}, checks, RECORD_MIME)
    assert determine_grade(nb.cells[0])[0] == pytest.approx(points)
    assert records_in(nb.cells[0].outputs, RECORD_MIME) == []  # the verdict replaces the outputs...
    assert nb.cells[0].metadata["coursekit"]["records"][0]["value"] == accuracy  # ...records kept for staff tools


def test_objects_that_equal_everything_cannot_be_recorded():
    class Anything:
        def __eq__(self, other):
            return True

    with pytest.raises(TypeError):
        checks.to_plain(Anything())
    assert checks.to_plain(type("F", (float,), {"__eq__": lambda s, o: True})(2.0)) == 2.0  # plain float


# --- judges: the number that is compared is computed here, from the published data -------------------

def test_a_judged_check_compares_what_the_instructors_judge_computes():
    # the student's kernel claims a value; the judge recomputes from the published data and decides
    reference = [record("type", 0.5, judge="checks.is_python_float")]
    assert judge_cell(reference, [record("type", 2.5)], checks) == ([], 1.0)
    reasons, _ = judge_cell(reference, [record("type", checks.to_plain(__import__("numpy").zeros(1)))], checks)
    assert reasons and "False" in reasons[0]


def test_a_patched_check_cannot_claim_a_bound_it_does_not_meet():
    """Bounds and partial ranges apply to the judge's result, so publishing a number in the bound (what a
    patched `check` would do) earns nothing: only the published data counts."""
    reference = [record("outputs differ", [[1.0], [2.0]], judge="checks.all_differ")]
    forged = record("outputs differ", True)  # a patched check publishing the boolean it wants
    reasons, fraction = judge_cell(reference, [forged], checks)
    assert reasons and fraction == 0.0
    assert judge_cell(reference, [record("outputs differ", [[1.0], [1.5]])], checks) == ([], 1.0)


def test_judges_of_the_reference_decide_not_the_students_record():
    reference = [record("x", 1.0, judge="checks.is_python_float")]
    # the student's record names a lenient judge of its own: ignored
    reasons, _ = judge_cell(reference, [record("x", "1.0", judge="checks.all_differ")], checks)
    assert reasons


def _kernel_env(**extra: str) -> dict[str, str]:
    """A notebook kernel's environment in source/hw6: hw6utils importable, no recording, no grading mode."""
    env = {k: v for k, v in os.environ.items() if k not in ("COURSEKIT_RECORD_CHECKS", "NBGRADER_EXECUTION")}
    return {**env, "PYTHONPATH": str(SOURCE_DIR), **extra}


@pytest.mark.parametrize("expected", ["3", ""])
def test_checks_fail_closed_under_stock_nbgrader_autograde(expected):
    """Without the course's recording, nbgrader's autograde cannot judge a check: it fails, visible or hidden."""
    script = ("from hw6utils.checks import check\n"
              f"check('hidden', 4{', ' + expected if expected else ''})\nprint('passed')")
    graded = subprocess.run([sys.executable, "-c", script], env=_kernel_env(NBGRADER_EXECUTION="autograde"),
                            capture_output=True, text=True)
    assert graded.returncode != 0 and "CannotJudgeHere" in graded.stderr and "passed" not in graded.stdout
    # an instructor validating source/ still sees the hidden check pass (nothing to compare there)
    validated = subprocess.run([sys.executable, "-c", script], env=_kernel_env(NBGRADER_EXECUTION="validate"),
                               capture_output=True, text=True)
    assert (validated.returncode == 0) == (expected == ""), validated.stderr


def test_feedback_names_every_failed_check_even_with_punctuation_in_its_name():
    """Feedback repeats each failed check by name, all of them and in order, whatever characters the
    instructor's names hold (commas, colons, '='), and nothing the student's values said."""
    from coursekit.feedback import failed_checks

    names = ["length of every hypothesis (T=2)", "rnn_1, every step: final loss", "rnn_2, every step: final loss",
             "order of tied hypotheses", "secret"]
    reference = [record(name, 0.001, at_most=0.01) for name in names[1:3]]
    reference += [record(names[0], [2, 2]), record(names[3], ["a", "b"]), record(names[4], 1, visible=False)]
    student = [record(names[0], [1, 1]), record(names[1], 0.5), record(names[2], 0.5),
               record(names[3], ["<b>STUDENT TEXT</b>"]), record(names[4], 2)]
    cell = new_code_cell("...")
    cell.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "points": 2,
                                 "grade_id": "test_runs", "schema_version": 3}
    cell.metadata["coursekit"] = {"failed_checks": ["planted by the submission"]}
    cell.outputs = [{"output_type": "display_data", "metadata": {}, "data": {RECORD_MIME: r}} for r in student]
    nb = new_notebook(cells=[cell])
    apply_verdicts(nb, {"test_runs": reference}, checks, RECORD_MIME)
    shown = failed_checks(nb.cells[0])
    assert shown == ["rnn_1, every step: final loss failed", "rnn_2, every step: final loss failed",
                     "length of every hypothesis (T=2) failed", "order of tied hypotheses failed",
                     "hidden check 'secret' failed"]
    assert "STUDENT TEXT" not in " ".join(shown)
    # a passing cell names nothing, whatever the submission's metadata said
    cell.outputs = [{"output_type": "display_data", "metadata": {}, "data": {RECORD_MIME: record(names[0], [2, 2])}}]
    cell.metadata["coursekit"] = {"failed_checks": ["planted by the submission"]}
    apply_verdicts(nb, {"test_runs": [record(names[0], [2, 2])]}, checks, RECORD_MIME)
    assert nb.cells[0].metadata["coursekit"]["failed_checks"] == [] and failed_checks(nb.cells[0]) == []


def test_feedback_cell_shows_the_named_checks_and_drops_the_staff_metadata():
    from coursekit.feedback import HideHiddenTests

    cell = new_code_cell("check('k=1: beams', ...)\n### BEGIN HIDDEN TESTS\nsecret()\n### END HIDDEN TESTS")
    cell.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "points": 1,
                                 "grade_id": "test_beams", "schema_version": 3}
    nb = new_notebook(cells=[cell])
    apply_verdicts(nb, {"test_beams": [record("k=1: beams", 4), record("k=2: beams", 4)]},
                   checks, RECORD_MIME)  # no records published: neither check ran
    hide = HideHiddenTests()
    hide._submitted = []
    shown, _ = hide.preprocess_cell(nb.cells[0], {}, 0)
    assert "Failed: k=1: beams did not run; k=2: beams did not run" in shown.outputs[0]["text"]
    assert "secret" not in shown.source and "coursekit" not in shown.metadata
