"""Test helpers shared by every HW6 notebook: readable assertions, and `check` for test cells."""
from __future__ import annotations

import importlib
import json
import os
from typing import Any

import numpy as np


def as_array(value: Any) -> np.ndarray:
    """Turn a tensor, list or number into a float64 numpy array (detached, on the CPU)."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=np.float64)


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


# --- checks whose verdict is decided outside the student's kernel -----------------------------
#
# Test cells call ``check(name, value, ...)``. On a student's machine a visible check (one with
# ``expected`` or a bound) asserts right away, with a readable message. When the course's grader
# runs a notebook it sets COURSEKIT_RECORD_CHECKS=1: ``check`` then only publishes ``value`` as
# plain JSON data in the cell's output, and the grader, in its own process, compares it with the
# value the instructor's reference solution published for the same check. Expected values of
# hidden checks never exist in the student's kernel, and nothing in that kernel decides a verdict.
#
# ``judge="module.function"`` names a function of this helper package that turns the published
# (plain) value into the number or data that is actually compared: trained weights into a final
# loss, two outputs into "do they differ". The grader runs the instructor's copy of that function,
# so a verdict never rests on a number the student's kernel computed.
#
# Under nbgrader's autograde without the course's recording (NBGRADER_EXECUTION=autograde and no
# COURSEKIT_RECORD_CHECKS), no check can be judged: every check fails instead of passing.

RECORD_ENV = "COURSEKIT_RECORD_CHECKS"
RECORD_MIME = "application/vnd.coursekit.check+json"
NBGRADER_ENV = "NBGRADER_EXECUTION"
MAX_RECORDED_NUMBERS = 1_000_000
_NOTHING = object()

# When not None, records are appended here instead of displayed (used by tests outside Jupyter).
recorder: list[dict[str, Any]] | None = None


def to_plain(value: Any) -> Any:
    """JSON-safe copy of ``value``: numbers, strings, lists, dicts and arrays ({"__array__": shape, "data": [...]}).

    Anything else (custom objects, functions, ...) is refused: a verdict must rest on plain data.
    """
    if isinstance(value, np.generic):
        value = value.item()
    if value is None:
        return None
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if np.isfinite(value) else {"__float__": repr(float(value))}
    if isinstance(value, np.ndarray) or hasattr(value, "detach") and hasattr(value, "shape"):
        array = as_array(value)
        if array.size > MAX_RECORDED_NUMBERS:
            raise ValueError(f"array of {array.size} numbers is too large to record")
        return {"__array__": list(array.shape),
                "data": [x if np.isfinite(x) else repr(x) for x in array.ravel().tolist()]}
    if isinstance(value, (list, tuple)) or type(value).__name__ == "Size":
        return [to_plain(item) for item in value]
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            raise TypeError("only dicts with string keys can be recorded")
        return {key: to_plain(item) for key, item in value.items()}
    raise TypeError(f"cannot record a value of type {type(value).__name__}")


def _numbers(plain: Any) -> np.ndarray | None:
    """The numbers of a plain number or array, as float64; None if it is neither."""
    if isinstance(plain, bool):
        return None
    if isinstance(plain, (int, float)):
        return np.asarray(float(plain))
    if isinstance(plain, dict) and "__float__" in plain:
        return np.asarray(float(plain["__float__"]))
    if isinstance(plain, list) and plain and all(isinstance(x, (int, float, list)) and not isinstance(x, bool)
                                                  for x in plain):
        try:
            return np.asarray(plain, dtype=np.float64)
        except (TypeError, ValueError):  # ragged or not numeric: compared item by item
            return None
    if isinstance(plain, dict) and "__array__" in plain:
        try:
            data = np.asarray([float(x) for x in plain["data"]], dtype=np.float64)
            return data.reshape([int(n) for n in plain["__array__"]])
        except (TypeError, ValueError):
            return None
    return None


def array_from_plain(plain: Any) -> np.ndarray:
    """A published array (``{"__array__": shape, "data": [...]}``) back as a finite float64 array."""
    numbers = _numbers(plain) if isinstance(plain, dict) and "__array__" in plain else None
    if numbers is None or not np.all(np.isfinite(numbers)):
        raise ValueError("not a published array of finite numbers")
    return numbers


def compare(reference: dict[str, Any], actual: Any, path: str = "") -> str | None:
    """Why plain ``actual`` fails the criteria of a ``reference`` record, or None if it passes.

    ``reference`` holds the instructor's ``value`` and the criteria ``tol``, ``at_most``, ``at_least``.
    """
    where = path or "value"
    if reference.get("at_most") is not None or reference.get("at_least") is not None:
        numbers = _numbers(actual)
        if numbers is None or not np.all(np.isfinite(numbers)):
            return f"{where} is not a finite number"
        if reference.get("at_most") is not None and not np.all(numbers <= reference["at_most"]):
            return f"{where} = {np.max(numbers):.4g} is above the limit {reference['at_most']:g}"
        if reference.get("at_least") is not None and not np.all(numbers >= reference["at_least"]):
            return f"{where} = {np.min(numbers):.4g} is below the limit {reference['at_least']:g}"
        return None
    expected, tol = reference.get("value"), float(reference.get("tol", 1e-4))
    want, got = _numbers(expected), _numbers(actual)
    if want is not None:
        if got is None:
            return f"{where} should be a number or array, got {type(actual).__name__}"
        if want.shape != got.shape:
            return f"{where} has shape {tuple(got.shape)}, expected {tuple(want.shape)}"
        if np.isnan(want).any() or np.isnan(got).any():
            return None if np.array_equal(np.isnan(want), np.isnan(got)) and np.allclose(
                np.nan_to_num(want), np.nan_to_num(got), atol=tol, rtol=0) else f"{where} differs (NaN)"
        error = float(np.max(np.abs(got - want))) if want.size else 0.0
        return None if error < tol else f"{where}: max error {error:.3g} is not below {tol:g}"
    if isinstance(expected, bool) or expected is None or isinstance(expected, str):
        return None if type(actual) is type(expected) and actual == expected else f"{where} is {actual!r}, expected {expected!r}"
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return f"{where} should be a list of {len(expected)} items"
        for index, (want_item, got_item) in enumerate(zip(expected, actual)):
            reason = compare({"value": want_item, "tol": tol}, got_item, f"{where}[{index}]")
            if reason:
                return reason
        return None
    if isinstance(expected, dict):
        if not isinstance(actual, dict) or set(actual) != set(expected):
            return f"{where} should have the keys {sorted(expected)}"
        for key in expected:
            reason = compare({"value": expected[key], "tol": tol}, actual[key], f"{where}[{key!r}]")
            if reason:
                return reason
        return None
    return f"{where}: cannot compare"


def partial_credit(reference: dict[str, Any], actual: Any) -> float:
    """The fraction of a check's points earned by plain ``actual`` under a ``partial=(low, high)`` record:
    0 at or below ``low``, 1 at or above ``high``, linear in between (0 for anything not a finite number)."""
    low, high = reference["partial"]
    numbers = _numbers(actual)
    if numbers is None or numbers.size != 1 or not np.isfinite(numbers).all():
        return 0.0
    return float(np.clip((float(numbers) - low) / (high - low), 0.0, 1.0))


def recording() -> bool:
    """True while the course's grader runs this notebook (checks publish data instead of asserting)."""
    return recorder is not None or os.environ.get(RECORD_ENV) == "1"


class CannotJudgeHere(AssertionError):
    """A check ran under nbgrader's autograde without the course's grader: it fails rather than pass."""


def resolve_judge(judge: str) -> Any:
    """The function ``module.function`` of this helper package (the copy this kernel imported)."""
    module_name, _, function = judge.rpartition(".")
    module = importlib.import_module(f"{__package__}.{module_name}") if __package__ else importlib.import_module(module_name)
    return getattr(module, function)


def plain_roundtrip(value: Any) -> Any:
    """``value`` as the grader receives it: plain data after a JSON round trip."""
    return json.loads(json.dumps(to_plain(value)))


def check(name: str, value: Any, expected: Any = _NOTHING, *, tol: float = 1e-4,
          at_most: float | None = None, at_least: float | None = None,
          partial: tuple[float, float] | None = None, judge: str | None = None) -> None:
    """Check one result of the student's code (use in test cells instead of ``assert``).

    With ``expected`` (or a bound) the check is visible: it fails here with a readable message.
    Without, it is a hidden check: it does nothing here and is decided by the grader.
    ``partial=(low, high)`` gives partial credit for a number: none at ``low``, all at ``high``.
    ``judge="module.function"``: the criteria apply to ``function(value)``, computed by the grader
    with the instructor's copy of this package (here, with yours, to show you the result).
    """
    record = {"name": name, "value": to_plain(value), "tol": tol, "at_most": at_most, "at_least": at_least,
              "partial": list(partial) if partial else None, "judge": judge,
              "visible": expected is not _NOTHING or at_most is not None or at_least is not None or bool(partial)}
    if recording():
        if recorder is not None:
            recorder.append(record)
        else:
            from IPython.display import display
            display({RECORD_MIME: record}, raw=True)
        return
    if os.environ.get(NBGRADER_ENV) == "autograde":
        raise CannotJudgeHere(f"{name}: this notebook is being autograded without the course's grader "
                              "(coursekit), so no check can be judged; it counts as failed")
    if not record["visible"]:
        return
    actual = resolve_judge(judge)(plain_roundtrip(value)) if judge else record["value"]
    if partial:
        fraction = partial_credit(record, actual)
        print(f"{name}: {float(actual):.4g} earns {fraction:.0%} of this cell's points "
              f"(none at {partial[0]:g}, all at {partial[1]:g})")
        return
    criteria = dict(record, value=to_plain(expected)) if expected is not _NOTHING else record
    reason = compare(criteria, to_plain(actual))
    if reason:
        raise AssertionError(f"{name}: {reason}")


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
    """True when the published values (a list) are pairwise different (e.g. dropout in training mode)."""
    if not isinstance(values, list) or len(values) < 2:
        return False
    encoded = [json.dumps(v, sort_keys=True) for v in values]
    return len(set(encoded)) == len(encoded)
