"""Test helpers shared by every HW6 notebook: readable assertions, and `check` for test cells.

The assertions (``assert_close``, ``assert_shape``) fail at once with a readable message. ``check``
is what test cells call: a visible check asserts on the student's machine, and while the grader runs
the notebook every check only publishes its value (see :mod:`hw6utils.records` for the record format
and why). The grader decides verdicts with :func:`compare` and :func:`partial_credit` from here, and
runs the small generic judges at the end of this module (``judge="checks.is_python_float"``); judges that
need an answer are instructor-only code (``hw6grading``, not released).
"""
from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from . import records
from .records import (NBGRADER_ENV, CannotJudgeHere, JudgeUnavailable, as_array, numbers_from_plain,
                      plain_roundtrip, recording, resolve_judge, to_plain)

_NOTHING = object()


def assert_close(actual: Any, expected: Any, tol: float = 1e-4, name: str = "value") -> None:
    """Fail with a readable message unless ``actual`` matches ``expected`` to max error < ``tol``."""
    actual_arr, expected_arr = as_array(actual), as_array(expected)
    if actual_arr.shape != expected_arr.shape:
        raise AssertionError(f"{name}: shape {actual_arr.shape}, expected {expected_arr.shape}")
    if not np.all(np.isfinite(actual_arr)):
        raise AssertionError(f"{name}: contains NaN or inf")
    error = float(np.max(np.abs(actual_arr - expected_arr))) if actual_arr.size else 0.0
    if not error < tol:
        raise AssertionError(f"{name}: max error {error:.3g} is not below {tol:g}")


def assert_shape(value: Any, expected: tuple[int, ...], name: str = "value") -> None:
    """Fail unless ``value`` has exactly the shape ``expected``."""
    shape = tuple(value.shape)
    if shape != tuple(expected):
        raise AssertionError(f"{name}: shape {shape}, expected {tuple(expected)}")


def count_parameters(module: Any) -> int:
    """Number of trainable scalars in a torch module."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def _format_numbers(numbers: np.ndarray, edge: int = 3) -> str:
    """Numbers as nested lists with 6 significant digits; more than 12 are shown as first ... last."""
    def one(x: float) -> str:
        return f"{x:.6g}"

    if numbers.ndim == 0:
        return one(float(numbers))
    if numbers.size > 4 * edge:
        flat = numbers.ravel()
        head, tail = ", ".join(one(x) for x in flat[:edge]), ", ".join(one(x) for x in flat[-edge:])
        return f"[{head}, ..., {tail}] (shape {_shape_text(numbers.shape)})"

    def nested(a: np.ndarray) -> str:
        return "[" + ", ".join(nested(row) if a.ndim > 1 else one(row) for row in a) + "]"
    return nested(numbers)


def _show(plain: Any, limit: int = 90) -> str:
    """A short, readable rendering of a plain value for a failure message (long values are cut)."""
    numbers = numbers_from_plain(plain)
    if numbers is not None:
        text = str(plain) if isinstance(plain, int) else _format_numbers(numbers)
    elif isinstance(plain, list):
        text = "[" + ", ".join(_show(item, limit) for item in plain) + "]"
    elif isinstance(plain, dict):
        text = "{" + ", ".join(f"{key!r}: {_show(item, limit)}" for key, item in plain.items()) + "}"
    else:
        text = repr(plain)
    return text if len(text) <= limit else text[:limit - 4] + " ..."


def _described(plain: Any) -> str:
    """Kind and value ("a string 'x'", "a list of 2 items [1, 2]"); just "None" for None."""
    return "None" if plain is None else f"{_kind(plain)} {_show(plain)}"


def _shape_text(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


def _kind(plain: Any) -> str:
    """What a plain value is, in words ("a list of 4 items", "a string", ...)."""
    if plain is None:
        return "None"
    if isinstance(plain, bool):
        return "a bool"
    if isinstance(plain, str):
        return "a string"
    if isinstance(plain, (int, float)) or isinstance(plain, dict) and "__float__" in plain:
        return "a number"
    if isinstance(plain, dict) and "__array__" in plain:
        return f"an array of shape {_shape_text(tuple(plain['__array__']))}"
    if isinstance(plain, list):
        return f"a list of {len(plain)} item{'' if len(plain) == 1 else 's'}"
    if isinstance(plain, dict):
        return f"a dict with keys {sorted(plain)}"
    return type(plain).__name__


def _first_difference(got: np.ndarray, want: np.ndarray, tol: float) -> tuple[int, ...] | None:
    """Index of the first element that is off by ``tol`` or more (NaN matches only NaN)."""
    same_nan = np.isnan(got) & np.isnan(want)
    bad = ~same_nan & ~(np.abs(np.nan_to_num(got - want, nan=np.inf)) < tol)
    if not bad.any():
        return None
    return tuple(int(i) for i in np.argwhere(bad)[0])


def _compare_numbers(got: np.ndarray, want: np.ndarray, actual: Any, expected: Any, tol: float, at: str) -> str | None:
    """Failure message for numbers/arrays: shapes, a few values, the first differing position."""
    if want.shape != got.shape:
        if want.ndim == 0:
            return f"{at}got {_described(actual)}, expected one number {_show(expected)}"
        return (f"{at}got shape {_shape_text(got.shape)}, expected shape {_shape_text(want.shape)}: "
                f"got {_show(actual)}, expected {_show(expected)}")
    index = _first_difference(got, want, tol)
    if index is None:
        return None
    if want.ndim == 0:
        if isinstance(actual, int) and isinstance(expected, int):  # counts, indices: no tolerance to speak of
            return f"{at}got {actual}, expected {expected}"
        return (f"{at}got {_show(actual)}, expected {_show(expected)} "
                f"(off by {abs(float(got) - float(want)):.3g}; tolerance {tol:g})")
    position = "[" + ", ".join(str(i) for i in index) + "]"
    return (f"{at}got {_show(actual)}, expected {_show(expected)}; first difference at index {position}: "
            f"got {got[index]:.6g}, expected {want[index]:.6g} (tolerance {tol:g})")


def compare(reference: dict[str, Any], actual: Any, path: str = "") -> str | None:
    """Why plain ``actual`` fails the criteria of a ``reference`` record, or None if it passes.

    ``reference`` holds the instructor's ``value`` and the criteria ``tol``, ``at_most``, ``at_least``.
    A failure message says what was got and what was expected (shape, a few values, the first
    differing position); ``path`` locates a nested item (``[2]``, ``['key']``) inside the value.
    """
    at = f"at {path}: " if path else ""
    if reference.get("at_most") is not None or reference.get("at_least") is not None:
        low, high = reference.get("at_least"), reference.get("at_most")
        wanted = ("a number between {:g} and {:g}".format(low, high) if low is not None and high is not None
                  else f"a number of at least {low:g}" if low is not None else f"a number of at most {high:g}")
        numbers = numbers_from_plain(actual)
        if numbers is None or not np.all(np.isfinite(numbers)):
            return f"{at}got {_described(actual)}, expected {wanted}"
        if high is not None and not np.all(numbers <= high):
            return f"{at}got {np.max(numbers):.4g}, expected {wanted} (above the limit {high:g})"
        if low is not None and not np.all(numbers >= low):
            return f"{at}got {np.min(numbers):.4g}, expected {wanted} (below the limit {low:g})"
        return None
    expected, tol = reference.get("value"), float(reference.get("tol", 1e-4))
    want, got = numbers_from_plain(expected), numbers_from_plain(actual)
    if want is not None:
        if got is None:
            return f"{at}got {_described(actual)}, expected {_described(expected)}"
        return _compare_numbers(got, want, actual, expected, tol, at)
    if isinstance(expected, bool) or expected is None or isinstance(expected, str):
        if type(actual) is type(expected) and actual == expected:
            return None
        kinds = f" ({_kind(actual)}, expected {_kind(expected)})" if type(actual) is not type(expected) else ""
        return f"{at}got {_show(actual)}, expected {_show(expected)}{kinds}"
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return f"{at}got {_described(actual)}, expected {_described(expected)}"
        if len(actual) != len(expected):
            return (f"{at}got {len(actual)} item{'' if len(actual) == 1 else 's'}, expected {len(expected)}: "
                    f"got {_show(actual)}, expected {_show(expected)}")
        for index, (want_item, got_item) in enumerate(zip(expected, actual)):
            reason = compare({"value": want_item, "tol": tol}, got_item, f"{path}[{index}]")
            if reason:
                return reason if path else f"{reason}; in full: got {_show(actual)}, expected {_show(expected)}"
        return None
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return f"{at}got {_described(actual)}, expected {_kind(expected)}"
        if set(actual) != set(expected):
            missing, extra = sorted(set(expected) - set(actual)), sorted(set(actual) - set(expected))
            details = "; ".join(part for part in (f"missing {missing}" if missing else "",
                                                  f"unexpected {extra}" if extra else "") if part)
            return f"{at}got the keys {sorted(actual)}, expected {sorted(expected)} ({details})"
        for key in expected:
            reason = compare({"value": expected[key], "tol": tol}, actual[key], f"{path}[{key!r}]")
            if reason:
                return reason if path else f"{reason}; in full: got {_show(actual)}, expected {_show(expected)}"
        return None
    return f"{at}got {_show(actual)}, expected {_show(expected)} (cannot compare these)"


def partial_credit(reference: dict[str, Any], actual: Any) -> float:
    """The fraction of a check's points earned by plain ``actual`` under a ``partial=(low, high)`` record:
    0 at or below ``low``, 1 at or above ``high``, linear in between (0 for anything not a finite number)."""
    low, high = reference["partial"]
    numbers = numbers_from_plain(actual)
    if numbers is None or numbers.size != 1 or not np.isfinite(numbers).all():
        return 0.0
    return float(np.clip((float(numbers) - low) / (high - low), 0.0, 1.0))


def check(name: str, value: Any, expected: Any = _NOTHING, *, tol: float = 1e-4,
          at_most: float | None = None, at_least: float | None = None,
          partial: tuple[float, float] | None = None, judge: str | None = None, local: Any = _NOTHING) -> None:
    """Check one result of the student's code (use in test cells instead of ``assert``).

    With ``expected`` (or a bound) the check is visible: it fails here with a readable message.
    Without, it is a hidden check: it does nothing here and is decided by the grader.
    ``partial=(low, high)`` gives partial credit for a number: none at ``low``, all at ``high``.
    ``judge="module.function"``: the criteria apply to ``function(value)``, computed by the grader with
    instructor code. Where that code is not available (a student's machine), ``local`` (the same quantity
    as your own code computed it) is held to the criteria instead, and the message says so; it is never
    sent to the grader.
    """
    record = {"name": name, "value": to_plain(value), "tol": tol, "at_most": at_most, "at_least": at_least,
              "partial": list(partial) if partial else None, "judge": judge,
              "visible": expected is not _NOTHING or at_most is not None or at_least is not None or bool(partial)}
    if recording():
        records.publish(record)
        return
    if os.environ.get(NBGRADER_ENV) == "autograde":
        raise CannotJudgeHere(f"{name}: this notebook is being autograded without the course's grader "
                              "(coursekit), so no check can be judged; it counts as failed")
    if not record["visible"]:
        return
    note = ""
    try:
        actual = resolve_judge(judge)(plain_roundtrip(value)) if judge else record["value"]
    except JudgeUnavailable:
        if local is _NOTHING:
            print(f"{name}: judged by the course's grader from the data this cell publishes")
            return
        actual, note = to_plain(local), " (as your own code computes it; the grader recomputes it from your weights)"
    if partial:
        fraction = partial_credit(record, actual)
        print(f"{name}: {float(actual):.4g}{note} earns {fraction:.0%} of this cell's points "
              f"(none at {partial[0]:g}, all at {partial[1]:g})")
        return
    criteria = dict(record, value=to_plain(expected)) if expected is not _NOTHING else record
    reason = compare(criteria, to_plain(actual))
    if reason:
        raise AssertionError(f"{name}: {reason}{note}")


# --- judges: functions of published values, run by the grader ---------------------------------
#
# A judge is called as ``judge(value, reference=...)``: ``reference`` is the value the reference
# solution published for the same check (None on a student's machine), for judges that must hold a
# student's data to the conditions the reference ran under.

def is_python_float(value: Any, reference: Any = None) -> bool:
    """True for a plain float, or a list of them (what ``float`` and ``np.float64`` publish; a tensor
    publishes an array)."""
    values = value if isinstance(value, list) and value else [value]
    return all(isinstance(v, float) for v in values)


def is_array(value: Any, reference: Any = None) -> bool:
    """True for a published array (a tensor or numpy array), False for lists and numbers."""
    return isinstance(value, dict) and "__array__" in value


def all_differ(values: Any, reference: Any = None) -> bool:
    """True when the published values (a list) are pairwise different. Generic: it says nothing about where
    the values came from, so no graded property rests on it alone."""
    if not isinstance(values, list) or len(values) < 2:
        return False
    encoded = [json.dumps(v, sort_keys=True) for v in values]
    return len(set(encoded)) == len(encoded)
