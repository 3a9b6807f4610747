"""hw6utils.symbolic: written expressions are read as data (never run), capped, and judged by equivalence."""
from __future__ import annotations

import time

import pytest

from hw6utils import symbolic
from hw6utils.symbolic import claim, equals_reference, equals_target, reads

W_AND_U = ["w", "u1", "u2", "u3"]


def test_equivalent_forms_are_equivalent_and_close_ones_are_not():
    expected = claim("u3 + w*u2 + w**2*u1", W_AND_U)
    for same in ("w*(w*u1 + u2) + u3", "u3+u2*w+u1*w^2", "(2*w**2*u1 + 2*w*u2 + 2*u3)/2", "(w+u1)**2 - (w-u1)**2 "
                 "- 4*w*u1 + u3 + w*u2 + w**2*u1"):
        assert equals_reference(claim(same, W_AND_U), expected) == "equivalent", same
    for close in ("u3 + w*u2 + 1.0000001*w**2*u1", "u3 + w*u2 + w**2*u1 + 1e-12", "u3 + w*u2 + w**2*u2"):
        assert equals_reference(claim(close, W_AND_U), expected) == "not equivalent to the expected expression"


def test_the_reference_decides_symbols_and_definitions():
    """A student's claim cannot widen what it may use or redefine a name: those come from the reference."""
    expected = claim("p*dy_dq", W_AND_U, {"p": "u1", "dy_dq": "w**2"})
    assert equals_reference(claim("u1*w**2", W_AND_U), expected) == "equivalent"
    assert equals_reference(claim("p*dy_dq", W_AND_U, {"p": "u1", "dy_dq": "w**2"}), expected) == "equivalent"
    cheat = claim("x", W_AND_U + ["x"], {"x": "u1*w**2"})
    assert "uses 'x'" in equals_reference(cheat, expected)
    redefined = claim("p", W_AND_U, {"p": "u1*w**2"})
    assert equals_reference(redefined, expected) == "not equivalent to the expected expression"


def test_consistency_check_compares_two_of_the_students_answers():
    assert equals_target(claim("u3 + 2*w*u2", W_AND_U, target="w*u3 + w**2*u2", differentiate="w")) == "equivalent"
    message = equals_target(claim("u3 + w*u2", W_AND_U, target="w*u3 + w**2*u2", differentiate="w"))
    assert message.startswith("not equivalent: at w=2, u1=-3, u2=5, u3=-7 it is ")


@pytest.mark.parametrize("text, reason", [
    ("__import__('os').system('true')", "a function call"),
    ("w.__class__", "Attribute"),
    ("lambda: w", "Lambda"),
    ("[w, u1]", "List"),
    ("'w'", "is not a number"),
    ("2w", "cannot read"),
    ("u3 + s", "uses 's'"),
    ("(w + u1)**99", "exponent"),
    ("w**0.5", "exponent"),
    ("w**w", "exponent"),
    ("((((((2**12)**12)**12)**12)**12)**12)", "too large"),
    ("(w+u1+u2+u3)**12 * (w+u1+u2+u3)**12 * (w+u1+u2+u3)**12 * (w+u1+u2+u3)**12", "too large"),
    ("1e999 * w", "too large"),
    ("1/(w - w)", "divides by zero"),
    ("(w**3*u1 + w**2*u2 + w*u3)/w", "divides by an expression"),
    ("w**-1", "divides by an expression"),
    ("(w+u1+u2+u3)**12/(w-u1+u2-u3)**12", "divides by an expression"),
    ("(w+u1+u2+u3)**12*(w-u1+u2-u3)**12", "too large"),
    ("w" * 401, "characters long"),
    ("-" * 300 + "w", "too long"),
    (None, "no answer yet"),
    ("", "empty"),
])
def test_hostile_or_malformed_text_gets_a_reason_quickly(text, reason):
    started = time.monotonic()
    for judge in (reads, lambda v: equals_reference(v, claim("w", W_AND_U)), equals_target):
        verdict = judge(dict(claim(text, W_AND_U), target="w"))
        assert reason in verdict, (text, verdict)
    assert time.monotonic() - started < 10


def test_judges_never_raise_on_malformed_claims():
    for value in (None, 3, "w", [], {"expression": "w"}, {"expression": "w", "symbols": "w"},
                  {"expression": "w", "symbols": ["w"], "definitions": []}):
        for judge in (reads, equals_target):
            assert isinstance(judge(value), str)
        assert isinstance(equals_reference(value, claim("w", ["w"])), str)
        assert isinstance(equals_reference(claim("w", ["w"]), value), str)


def test_circular_definitions_and_unused_missing_ones():
    assert "circle" in reads(claim("a", ["w"], {"a": "b", "b": "a"}))
    assert reads(claim("w", ["w"], {"t": None})) == "readable"  # an unanswered name matters only when used
    assert "t cannot be used" in reads(claim("t", ["w"], {"t": None}))


def test_claims_are_plain_data_and_accept_sympy_expressions():
    import sympy
    from hw6utils.records import plain_roundtrip
    w, u1 = sympy.symbols("w u1")
    value = claim(3 * w**2 * u1, ["w", "u1"])
    assert plain_roundtrip(value) == value and value["expression"] == "3*u1*w**2"
    assert claim(object(), ["w"])["expression"] is None


def test_the_numeric_line_catches_what_expansion_would_miss(monkeypatch):
    """Equivalence needs both lines: a (hypothetically) wrong symbolic zero is overruled by the sample points."""
    import sympy
    monkeypatch.setattr(sympy, "expand", lambda expression: sympy.Integer(0))
    assert equals_reference(claim("w + 1", ["w"]), claim("w", ["w"])) != "equivalent"
    assert equals_reference(claim("w**7 - w", ["w"]), claim("0", ["w"])) != "equivalent"  # 0 at w = 0, 1, -1
    assert symbolic.SAMPLE_POINTS >= 3
