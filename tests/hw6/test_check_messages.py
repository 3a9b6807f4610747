"""hw6utils.checks.compare: a failed check says what was got and what was expected, and where they differ."""
from __future__ import annotations


import numpy as np
import pytest

from coursekit.testing.notebooks import SOURCE_DIR

from hw6utils import checks  # noqa: E402


def why(expected, actual, **criteria):
    """compare() of plain ``actual`` against a reference record holding ``expected``."""
    reference = {"value": checks.to_plain(expected), "tol": criteria.pop("tol", 1e-4), **criteria}
    return checks.compare(reference, checks.to_plain(actual))


def test_passing_values_give_no_message():
    assert why([1.0, 2.0], [1.0, 2.00001]) is None
    assert why({"p": 1.0, "q": [1, 2]}, {"q": [1, 2], "p": 1.0}) is None
    assert why([("a", "b"), ("c",)], [("a", "b"), ("c",)]) is None
    assert why(None, [5.0, 50.0], at_least=1, at_most=100) is None
    assert why([1.0, float("nan")], [1.0, float("nan")]) is None


def test_number_names_got_expected_and_how_far_off():
    message = why(2.125, 2.0, tol=1e-9)
    assert message == "got 2, expected 2.125 (off by 0.125; tolerance 1e-09)"


def test_array_names_the_first_differing_position():
    message = why([[1.0, 2.0], [3.0, 4.0]], [[1.0, 2.0], [3.0, 4.5]])
    assert "got [[1, 2], [3, 4.5]], expected [[1, 2], [3, 4]]" in message
    assert "first difference at index [1, 1]: got 4.5, expected 4" in message


def test_long_arrays_show_a_few_values_and_the_shape():
    got = np.arange(100.0)
    got[50] = -1.0
    message = why(np.arange(100.0), got)
    assert "[0, 1, 2, ..., 97, 98, 99] (shape (100,))" in message
    assert "first difference at index [50]: got -1, expected 50" in message


def test_shape_mismatch_shows_both_shapes_and_values():
    message = why(np.zeros((2, 3)), np.zeros((3, 2)))
    assert message.startswith("got shape (3, 2), expected shape (2, 3): got [[0, 0], [0, 0], [0, 0]]")


def test_nan_where_a_number_is_expected_fails_with_its_position():
    message = why([1.0, 2.0], [1.0, float("nan")])
    assert "first difference at index [1]: got nan, expected 2" in message


def test_list_of_wrong_length_counts_items():
    expected = [("neural", "network"), ("network", "neural")]
    got = expected + [("neural", "neural"), ("network", "network")]
    message = why(expected, got)
    assert message.startswith("got 4 items, expected 2: got [['neural', 'network'], ")
    assert "expected [['neural', 'network'], ['network', 'neural']]" in message


def test_nested_difference_names_its_path_and_the_whole_values():
    message = why([("a", "b"), ("c", "d")], [("a", "b"), ("c", "x")])
    assert message == ("at [1][1]: got 'x', expected 'd'; in full: got [['a', 'b'], ['c', 'x']], "
                       "expected [['a', 'b'], ['c', 'd']]")


def test_dict_keys_and_values():
    message = why({"p": 1.0, "q": 2.0}, {"p": 1.0, "r": 2.0})
    assert message == "got the keys ['p', 'r'], expected ['p', 'q'] (missing ['q']; unexpected ['r'])"
    message = why({"p": 1.0, "q": 2.0}, {"p": 1.0, "q": 2.5})
    assert message.startswith("at ['q']: got 2.5, expected 2 (off by 0.5")


def test_wrong_kinds_are_named():
    assert why(2.5, "2.5") == "got a string '2.5', expected a number 2.5"
    assert why(True, 1) == "got 1, expected True (a number, expected a bool)"
    assert why("torch.int64", "torch.int32") == "got 'torch.int32', expected 'torch.int64'"
    assert why([0.1, 0.2], None) == "got None, expected a list of 2 items [0.1, 0.2]"
    assert why({"a": 1}, [1]) == "got a list of 1 item [1], expected a dict with keys ['a']"


def test_bounds_say_what_range_was_expected():
    assert why(None, 0.94, at_least=1, at_most=100) == \
        "got 0.94, expected a number between 1 and 100 (below the limit 1)"
    assert why(None, 0.5, at_most=0.01) == "got 0.5, expected a number of at most 0.01 (above the limit 0.01)"
    assert why(None, None, at_least=1) == "got None, expected a number of at least 1"
    assert why(None, "26", at_least=1) == "got a string '26', expected a number of at least 1"


def test_long_values_are_cut():
    message = why(["x" * 10] * 40, ["y" * 10] * 40)
    assert len(message) < 400 and "..." in message


@pytest.mark.parametrize("expected, wrong", [
    (3, 4), (2.5, -2.5), ("a", "b"), (True, False), (None, 0), ([1, 2], [1, 2, 3]), ([1.0, 2.0], [1.0, 5.0]),
    ({"k": 1.0}, {"k": 2.0}), ({"k": 1.0}, {"j": 1.0}), ([("a",), ("b",)], [("b",), ("a",)]),
    (np.eye(2), np.ones((2, 2))), (np.eye(2), np.ones(3)), ([1.0], "one"),
])
def test_every_failure_names_got_and_expected(expected, wrong):
    message = why(expected, wrong)
    assert message and "got" in message and "expected" in message, message


# --- every visible check of the notebooks, fed a wrong value ----------------------------------------

from coursekit.testing.notebooks import (BEGIN_HIDDEN, is_test_cell, load, nbgrader_meta, runnable_source,  # noqa: E402
                                         solution_namespace, working_directory)

NOTEBOOKS = {"backprop_scalar_rnn.ipynb": None, "beam_search.ipynb": None, "convolutions.ipynb": None,
             "reading_and_survey.ipynb": None, "surname_classification.ipynb": "p4_hparams"}
SKIP = {"test_accuracy"}  # needs a trained model (tests/hw6/test_surname_notebook.py covers its messages)


def wrong_versions(plain):
    """Plausible wrong answers of the same shape as ``plain`` (and one of the wrong shape)."""
    if isinstance(plain, bool):
        return [not plain]
    if isinstance(plain, (int, float)):
        return [plain + 1 + abs(plain)]
    if isinstance(plain, str):
        return [plain + "x"]
    if plain is None:
        return [0]
    if isinstance(plain, dict) and "__array__" in plain:
        return [dict(plain, data=[x + 1 if isinstance(x, (int, float)) else 0 for x in plain["data"]]),
                {"__array__": [len(plain["data"]) + 1], "data": [0.0] * (len(plain["data"]) + 1)}]
    if isinstance(plain, dict):
        key = sorted(plain)[0]
        return [dict(plain, **{key: wrong_versions(plain[key])[0]}), {k: v for k, v in plain.items() if k != key}]
    if isinstance(plain, list):
        if not plain:
            return [[0]]
        return [[wrong_versions(plain[0])[0]] + plain[1:], plain[:-1]]
    raise AssertionError(f"no wrong version of {plain!r}")


def visible_calls(notebook, until):
    """Every visible check(...) the reference makes in the notebook's test cells:
    (grade_id, name, value, expected, kwargs)."""
    reference = solution_namespace(notebook, until_grade_id=until)
    calls = []
    original = checks.check

    def spy(name, value, expected=checks._NOTHING, **kwargs):
        if expected is not checks._NOTHING or kwargs.get("at_least") is not None or kwargs.get("at_most") is not None:
            calls.append((grade_id, name, checks.to_plain(value), expected, kwargs))
        return original(name, value, expected, **kwargs)

    for cell in load(SOURCE_DIR / notebook).cells:
        grade_id = nbgrader_meta(cell).get("grade_id")
        if not is_test_cell(cell) or grade_id in SKIP:
            continue
        checks.check = spy
        try:
            with working_directory(SOURCE_DIR):
                exec(compile(runnable_source(cell.source.split(BEGIN_HIDDEN)[0]), grade_id, "exec"), dict(reference))
        finally:
            checks.check = original
    return calls


@pytest.mark.parametrize("notebook", sorted(NOTEBOOKS))
def test_every_visible_check_reports_got_and_expected(notebook):
    calls = visible_calls(notebook, NOTEBOOKS[notebook])
    assert len(calls) >= 4, calls  # reading_and_survey: the four numbers of 5a
    for grade_id, name, value, expected, kwargs in calls:
        if expected is checks._NOTHING:  # a bound: one number past it
            wrongs = [kwargs["at_least"] - 1] if kwargs.get("at_least") is not None else [kwargs["at_most"] + 1]
            wrongs.append("not a number")
        else:
            wrongs = wrong_versions(checks.to_plain(expected))
        for wrong in wrongs:
            with pytest.raises(AssertionError) as failed:
                checks.check(name, wrong, expected, **kwargs) if expected is not checks._NOTHING \
                    else checks.check(name, wrong, **kwargs)
            message = str(failed.value)
            assert message.startswith(f"{name}: ") and " got " in message and "expected" in message, \
                (grade_id, message)
