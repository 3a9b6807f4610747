"""Helpers for proving that a notebook's test cells accept the reference and reject wrong code.

Test cells publish `check(name, value)` records; the grader compares them, outside the student's
kernel, with the records of the reference solution. `assert_rejected` judges a whole test cell
(visible + hidden, via coursekit.testing.notebooks.run_test_cell) and then the hidden section on its
own, each in a fresh copy of the namespace, and requires both to fail: so the hidden checks reject the
implementation by themselves. `reference_calls` records what the reference solution returned on
the inputs a test cell uses, so tests can verify those answers with an oracle (which makes
"equal to the reference" mean "right"). `sabotaged_kernel` imitates a hostile submission.
"""
from __future__ import annotations

import contextlib
import copy
import math
import os
import re
from typing import Any, Callable, Iterator, NamedTuple

os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

from coursekit.testing import notebooks  # noqa: E402
from coursekit.testing.notebooks import (BEGIN_HIDDEN, SOURCE_DIR, cell_by_grade_id, checks_module,  # noqa: E402, F401
                                         hidden_section, is_test_cell, load, reference_records, run_test_cell,
                                         runnable_source, test_cell_records, working_directory)

def hidden_records(notebook: str, grade_id: str, namespace: dict[str, Any]
                   ) -> tuple[list[dict[str, Any]], BaseException | None]:
    """Run only the hidden section of a test cell in record mode: (records, error or None)."""
    return test_cell_records(notebook, grade_id, namespace, hidden_only=True)


def reference_hidden_records(notebook: str, grade_id: str) -> tuple[dict[str, Any], ...]:
    """What the reference solution publishes in the hidden section of one test cell."""
    return notebooks.reference_records(notebook, grade_id, hidden_only=True)


def run_hidden_only(notebook: str, grade_id: str, namespace: dict[str, Any]) -> None:
    """Judge only the hidden checks of a test cell against ``namespace`` (AssertionError if rejected)."""
    run_test_cell(notebook, grade_id, namespace, hidden_only=True,
                  reference=list(reference_hidden_records(notebook, grade_id)))


def assert_rejected(notebook: str, grade_ids: list[str], reference: dict[str, Any], **wrong: Any) -> None:
    """Each cell in ``grade_ids`` (whole cell, and its hidden section alone) fails with ``wrong`` swapped in."""
    for grade_id in grade_ids:
        for runner in (run_test_cell, run_hidden_only):
            namespace = dict(reference, **wrong)
            with pytest.raises(AssertionError):
                runner(notebook, grade_id, namespace)


def assert_accepted(notebook: str, grade_ids: list[str], reference: dict[str, Any], **impl: Any) -> None:
    """Each cell in ``grade_ids`` passes with ``impl`` swapped into the reference namespace."""
    for grade_id in grade_ids:
        run_test_cell(notebook, grade_id, dict(reference, **impl))


def visible_failure(notebook: str, grade_id: str, namespace: dict[str, Any]) -> str:
    """The message of the first visible check that fails when a test cell runs on a student's machine
    (its part before the hidden tests, run directly on a copy of ``namespace``; it must fail)."""
    source = cell_by_grade_id(load(SOURCE_DIR / notebook), grade_id).source.split(BEGIN_HIDDEN)[0]
    with working_directory(SOURCE_DIR), pytest.raises(AssertionError) as failed:
        exec(compile(runnable_source(source), f"<{notebook}:{grade_id}:visible>", "exec"), dict(namespace))
    return str(failed.value)


# --- the test cells' form ------------------------------------------------------------------------

def assert_check_style(notebook: str) -> None:
    """Every test cell decides through `check` records only, in the shape the grader relies on.

    No assert or assert_close; the reference publishes checks with unique names; the visible part
    has at least one visible check (so stock nbgrader still fails an unfinished notebook), and the
    hidden part (if any) only hidden checks, which name no expected value.
    """
    nb = load(SOURCE_DIR / notebook)
    cells = [c for c in nb.cells if is_test_cell(c)]
    assert cells, f"{notebook} has no test cells"
    for cell in cells:
        grade_id = cell.metadata["nbgrader"]["grade_id"]
        code = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith("#"))
        assert not re.search(r"^\s*assert\b", code, re.M), f"{grade_id} still asserts directly"
        assert "assert_close" not in code and "assert_shape" not in code, f"{grade_id} still uses assert_close"
        records = reference_records(notebook, grade_id)
        names = [r["name"] for r in records]
        assert records, f"{grade_id} publishes no checks"
        assert len(set(names)) == len(names), f"{grade_id}: check names repeat: {names}"
        hidden_names = set()
        if BEGIN_HIDDEN in cell.source:
            hidden = reference_hidden_records(notebook, grade_id)
            assert hidden, f"{grade_id}: the hidden section publishes no checks"
            assert not any(r["visible"] for r in hidden), f"{grade_id}: a hidden check shows its criteria"
            hidden_names = {r["name"] for r in hidden}
        visible = [r for r in records if r["name"] not in hidden_names]
        assert any(r["visible"] for r in visible), f"{grade_id}: no visible check before the hidden tests"
        assert all(r["visible"] for r in visible), f"{grade_id}: a check outside the hidden section is hidden"


# --- what the reference answered on the test cells' inputs ----------------------------------------

class Call(NamedTuple):
    """One call of the reference function during a test cell: inputs (copied before the call) and outcome."""
    args: tuple
    kwargs: dict
    result: Any
    error: BaseException | None


def reference_calls(notebook: str, grade_id: str, reference: dict[str, Any], name: str) -> list[Call]:
    """Run a test cell (record mode) with the reference ``name`` spied on; every call it made."""
    calls: list[Call] = []
    original = reference[name]

    def spy(*args: Any, **kwargs: Any) -> Any:
        saved_args, saved_kwargs = copy.deepcopy(args), copy.deepcopy(kwargs)
        try:
            result = original(*args, **kwargs)
        except Exception as err:
            calls.append(Call(saved_args, saved_kwargs, None, err))
            raise
        calls.append(Call(saved_args, saved_kwargs, result, None))
        return result

    records, error = test_cell_records(notebook, grade_id, dict(reference, **{name: spy}))
    assert error is None, f"the reference fails {grade_id}: {error!r}"
    assert records and calls, f"{grade_id} never called {name}"
    return calls


# --- a hostile submission -------------------------------------------------------------------------

class AlwaysEqual:
    """What a cheater returns: equal to everything, close to everything, zero distance from anything."""

    def __eq__(self, other: object) -> bool:
        return True

    def __ne__(self, other: object) -> bool:
        return False

    def __sub__(self, other: object) -> float:
        return 0.0

    __rsub__ = __sub__
    __hash__ = object.__hash__

    def __abs__(self) -> float:
        return 0.0

    def __lt__(self, other: object) -> bool:
        return True

    __le__ = __gt__ = __ge__ = __lt__


class LyingFloat(AlwaysEqual, float):
    """A float that claims to equal (and be within any tolerance of) everything."""

    __hash__ = float.__hash__
    __abs__ = float.__abs__


@contextlib.contextmanager
def sabotaged_kernel(*, silence_check: bool = False) -> Iterator[None]:
    """Monkeypatch, as a student's solution cell could, the comparisons test code used to trust.

    numpy/torch/math closeness tests all say "close"; with ``silence_check`` the `check` function of
    hw6utils.checks is replaced by one that publishes nothing. Everything is restored afterwards.
    (The judge's own `compare` is not patched: in the real grader it runs in another process.)
    """
    import numpy
    import torch

    def yes(*args: Any, **kwargs: Any) -> bool:
        return True

    def nothing(*args: Any, **kwargs: Any) -> None:
        return None

    patches: list[tuple[Any, str, Callable[..., Any]]] = [
        (numpy, "allclose", yes), (numpy.testing, "assert_allclose", nothing),
        (torch, "allclose", yes), (torch, "equal", yes), (math, "isclose", yes),
    ]
    if silence_check:
        patches.append((checks_module(), "check", nothing))
    saved = [(owner, attr, getattr(owner, attr)) for owner, attr, _ in patches]
    try:
        for owner, attr, fake in patches:
            setattr(owner, attr, fake)
        yield
    finally:
        for owner, attr, original in saved:
            setattr(owner, attr, original)


def assert_sabotage_rejected(notebook: str, grade_id: str, reference: dict[str, Any], **wrong: Any) -> None:
    """A wrong implementation fails ``grade_id`` even in a sabotaged kernel (both kinds of sabotage).

    The reference itself still passes in the kernel with patched comparisons, so the rejection comes
    from the wrong values, not from a judge broken by the patches.
    """
    with sabotaged_kernel():
        run_test_cell(notebook, grade_id, dict(reference))
    for silence_check in (False, True):
        namespace = dict(reference, **wrong)
        with sabotaged_kernel(silence_check=silence_check):
            with pytest.raises(AssertionError):
                run_test_cell(notebook, grade_id, namespace)


def rnn_variant(reference: dict[str, Any], step, initial_state=None) -> type:
    """An RNNLayer whose forward uses ``step(layer, h, x_t) -> h_next`` and h_0 = ``initial_state(layer, x)``
    (default zeros)."""
    base = reference["RNNLayer"]

    class Variant(base):
        def forward(self, x):
            h = initial_state(self, x) if initial_state else x.new_zeros(x.shape[0], self.hidden_size)
            h_list = []
            for t in range(x.shape[1]):
                h = step(self, h, x[:, t])
                h_list.append(h)
            self.store_h_for_grad(h_list)
            return torch.stack(h_list, dim=1), h

    return Variant
