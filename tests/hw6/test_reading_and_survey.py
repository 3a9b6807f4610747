"""Problems 5 and 7 notebook: the numeric reading answers are checked; the survey stays ungraded."""
from __future__ import annotations

from coursekit.testing.notebooks import SOURCE_DIR, load, nbgrader_meta
from tests.hw6.rejection import (AlwaysEqual, LyingFloat, assert_accepted, assert_check_style, assert_rejected,
                                 assert_sabotage_rejected, visible_failure)

NB = "reading_and_survey.ipynb"


def test_reference_passes(reference):
    assert_accepted(NB, ["test_reading_facts"], reference)


def test_test_cells_publish_checks_only():
    assert_check_style(NB)


def test_reference_answers_are_the_spec_facts(reference):
    """The hidden checks compare with the reference's numbers: 94% in 341 s, then 94.1% in 26 s."""
    assert (reference["baseline_accuracy_percent"], reference["baseline_seconds"],
            reference["final_accuracy_percent"], reference["final_seconds"]) == (94, 341, 94.1, 26)


def test_asks_the_four_numbers_of_the_original_and_no_more():
    """5a asks for the baseline's and the final time and accuracy; the ambiguous GPU count is gone."""
    nb = load(SOURCE_DIR / NB)
    answers = next(c for c in nb.cells if nbgrader_meta(c).get("grade_id") == "reading_facts").source
    assert "gpu" not in answers.lower()
    assert all("gpu" not in c.source.lower() for c in nb.cells if c.cell_type == "code")


def test_rejects_answers_that_are_not_numbers(reference):
    assert_rejected(NB, ["test_reading_facts"], reference, baseline_seconds=True)
    assert_rejected(NB, ["test_reading_facts"], reference, final_seconds="26")


def test_sabotaged_kernel_does_not_help_a_wrong_answer(reference):
    """Numbers that claim to equal everything (and closeness tests patched to say yes) still fail."""
    liars = {name: LyingFloat(50.0) for name in ("baseline_accuracy_percent", "baseline_seconds",
                                                "final_accuracy_percent", "final_seconds")}
    assert abs(liars["baseline_accuracy_percent"] - 94.0) < 0.05  # what an in-kernel `abs(x - 94) < 0.05` believed
    assert_sabotage_rejected(NB, "test_reading_facts", reference, **liars)
    assert_sabotage_rejected(NB, "test_reading_facts", reference, final_seconds=AlwaysEqual())


def test_rejects_fractions_instead_of_percent(reference):
    assert_rejected(NB, ["test_reading_facts"], reference, baseline_accuracy_percent=0.94, final_accuracy_percent=0.941)


def test_accepts_the_94_percent_threshold_as_the_final_accuracy(reference):
    """The series ends at 94.1 %, and speaks throughout of the 94 % threshold it reaches: both are right."""
    assert_accepted(NB, ["test_reading_facts"], reference, final_accuracy_percent=94)
    assert_accepted(NB, ["test_reading_facts"], reference, final_accuracy_percent=94.1)
    assert_rejected(NB, ["test_reading_facts"], reference, final_accuracy_percent=93.5)
    assert_rejected(NB, ["test_reading_facts"], reference, final_accuracy_percent=96)


def test_links_the_blog_series():
    intro = load(SOURCE_DIR / NB).cells[0].source
    assert "https://myrtle.ai/learn/how-to-train-your-resnet/" in intro


def test_visible_failure_says_what_was_expected(reference):
    failure = visible_failure(NB, "test_reading_facts", dict(reference, baseline_accuracy_percent=0.94))
    assert failure == ("baseline_accuracy_percent (a number, in percent): got 0.94, expected a number "
                       "between 1 and 100 (below the limit 1)")


def test_rejects_wrong_final_time(reference):
    """79 s is a plausible intermediate time; only the hidden test knows the series ends at 26 s."""
    assert_rejected(NB, ["test_reading_facts"], reference, final_seconds=79)


def test_rejects_wrong_baseline(reference):
    assert_rejected(NB, ["test_reading_facts"], reference, baseline_seconds=297)
    assert_rejected(NB, ["test_reading_facts"], reference, baseline_seconds=174)  # the eight-GPU time


def test_survey_cells_are_ungraded_and_editable():
    nb = load(SOURCE_DIR / NB)
    survey = [c for c in nb.cells if "Write your answer here" in c.source]
    assert len(survey) == 3
    assert "student ID's" in survey[1].source  # 7(b) as the original asks it
    for cell in survey:
        assert cell.cell_type == "markdown" and not nbgrader_meta(cell)
    graded = [nbgrader_meta(c) for c in nb.cells if nbgrader_meta(c).get("grade")]
    assert sum(m["points"] for m in graded) == 8
