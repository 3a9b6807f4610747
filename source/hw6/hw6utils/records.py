"""The check record protocol: how a test cell's results travel from the kernel to the grader.

Test cells call ``hw6utils.checks.check(name, value, ...)``. On a student's machine a visible check
(one with ``expected`` or a bound) asserts right away. When the course's grader runs a notebook it sets
``COURSEKIT_RECORD_CHECKS=1`` (:data:`RECORD_ENV`): ``check`` then only publishes a record, ``{"name",
"value", "tol", ...}`` with the value as plain JSON data (:func:`to_plain`), in the cell's output under
:data:`RECORD_MIME`, and the grader, in its own process, compares it with the record the instructor's
reference solution published for the same check. Expected values of hidden checks never exist in the
student's kernel, and nothing in that kernel decides a verdict.

``judge="module.function"`` names a function that turns the published (plain) value into the number or
data that is actually compared: trained weights into a final loss, a list into "are these floats". Judges
that need an answer (the specified model, the reference data) live in the instructor-only package
``hw6grading``, which is never released; the small generic ones live in :mod:`hw6utils.checks`
(``judge="checks.is_python_float"``). The grader runs the instructor's copies, so a verdict never rests
on a number the student's kernel computed.

Under nbgrader's autograde without the course's recording (``NBGRADER_EXECUTION=autograde`` and no
``COURSEKIT_RECORD_CHECKS``), no check can be judged: every check fails instead of passing
(:class:`CannotJudgeHere`).

This module is the one owner of the record format: ``checks`` writes records with it, and the grader
(``coursekit``) reads the environment variable, the MIME type and the plain-data encoding from it.
"""
from __future__ import annotations

import importlib
import json
import os
from typing import Any

import numpy as np

RECORD_ENV = "COURSEKIT_RECORD_CHECKS"
RECORD_MIME = "application/vnd.coursekit.check+json"
NBGRADER_ENV = "NBGRADER_EXECUTION"
MAX_RECORDED_NUMBERS = 1_000_000

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


def _floats(plain: Any) -> Any:
    """Nested lists with recorded non-finite floats ({"__float__": "nan"}) turned back into floats."""
    if isinstance(plain, list):
        return [_floats(item) for item in plain]
    if isinstance(plain, dict) and "__float__" in plain:
        return float(plain["__float__"])
    return plain


def numbers_from_plain(plain: Any) -> np.ndarray | None:
    """The numbers of a plain number or array, as float64; None if it is neither."""
    if isinstance(plain, bool):
        return None
    if isinstance(plain, (int, float)):
        return np.asarray(float(plain))
    if isinstance(plain, dict) and "__float__" in plain:
        return np.asarray(float(plain["__float__"]))
    if isinstance(plain, list) and plain and all(isinstance(x, (int, float, list)) and not isinstance(x, bool)
                                                  or isinstance(x, dict) and "__float__" in x for x in plain):
        try:
            return np.asarray(_floats(plain), dtype=np.float64)
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
    numbers = numbers_from_plain(plain) if isinstance(plain, dict) and "__array__" in plain else None
    if numbers is None or not np.all(np.isfinite(numbers)):
        raise ValueError("not a published array of finite numbers")
    return numbers


def as_array(value: Any) -> np.ndarray:
    """Turn a tensor, list or number into a float64 numpy array (detached, on the CPU)."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=np.float64)


def recording() -> bool:
    """True while the course's grader runs this notebook (checks publish data instead of asserting)."""
    return recorder is not None or os.environ.get(RECORD_ENV) == "1"


class CannotJudgeHere(AssertionError):
    """A check ran under nbgrader's autograde without the course's grader: it fails rather than pass."""


GRADING_PACKAGE = "hw6grading"
"""The instructor-only package that holds the judges of answers (not part of the release)."""


class JudgeUnavailable(LookupError):
    """The judge of a check is instructor-only code, which a student's copy of the notebook does not have."""


def resolve_judge(judge: str) -> Any:
    """The judge ``module.function``: from this helper package when its module has that function (the
    generic judges, ``checks.*``), else from the instructor-only package (raises
    :class:`JudgeUnavailable` where that package is absent)."""
    module_name, _, function = judge.rpartition(".")
    package = __package__ or ""
    try:  # a generic judge of this package (checks.*, or a module another part of the kit adds here)
        own = importlib.import_module(f"{package}.{module_name}" if package else module_name)
        if hasattr(own, function):
            return getattr(own, function)
    except ModuleNotFoundError:
        pass
    try:
        module = importlib.import_module(f"{GRADING_PACKAGE}.{module_name}")
    except ModuleNotFoundError:
        raise JudgeUnavailable(f"{judge} is computed by the course's grader only") from None
    return getattr(module, function)


def plain_roundtrip(value: Any) -> Any:
    """``value`` as the grader receives it: plain data after a JSON round trip."""
    return json.loads(json.dumps(to_plain(value)))


def publish(record: dict[str, Any]) -> None:
    """Hand one check record to the grader: append it to :data:`recorder`, or display it under RECORD_MIME."""
    if recorder is not None:
        recorder.append(record)
    else:
        from IPython.display import display
        display({RECORD_MIME: record}, raw=True)
