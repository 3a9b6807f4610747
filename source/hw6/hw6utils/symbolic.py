"""Derivations as answers: an expression a student writes as text, read safely and judged symbolically.

Some questions ask for a formula ("t in terms of w and the u_i's"), not a number. The student writes it
as a Python-style string (``"3*w - u2/2"``; ``**`` or ``^`` for powers). A test cell publishes a *claim*
about it, built by :func:`claim` as plain data::

    {"expression": "<the student's text>", "symbols": ["w", "u1", ...],
     "definitions": {"p": "u1", ...}, "target": "<text>", "differentiate": "w"}

``symbols`` are the names an answer may be written in; ``definitions`` name further quantities (in
terms of the symbols or of each other) that an answer may also use and that are substituted before
comparing. The judges below are named in checks (``judge="symbolic.equals_reference"``) and run by the
grader, in its own process, with ``reference`` = what the reference solution published for the same
check; symbols, definitions and what is asked come from that reference, the student's claim only
contributes its expression (and, for a consistency check, its own target). On a student's machine a
visible check calls them without a reference.

Each judge returns a short text: ``"readable"`` / ``"equivalent"`` when the claim holds, otherwise a
sentence saying why. They never raise and never evaluate the text as code: the text is parsed with
Python's ``ast`` and only numbers, the allowed names, ``+ - * / **`` and parentheses are turned into
a SymPy expression. The answers are polynomials, so division is read only by numbers; length, size,
exponents, degree and the number of terms an expansion can produce are capped before anything is
expanded, so that no text can make the grader work for long. Two expressions are equivalent when
they agree exactly at a few fixed integer points *and* their difference expands to 0 (two
independent lines of evidence).

This module holds no answer: only the reading and comparing.
"""
from __future__ import annotations

import ast
import math
from fractions import Fraction
from typing import Any, Iterable, Mapping

MAX_CHARS = 400          # longest expression text read
MAX_NODES = 250          # most syntax-tree nodes in one expression
MAX_EXPONENT = 12        # largest |integer exponent| written in an expression
MAX_DEGREE = 16          # largest total degree after the definitions are substituted
MAX_TERMS = 5_000        # bound on the number of monomials an expansion may produce
MAX_INTEGER = 10**9      # largest integer literal
MAX_BITS = 4096          # largest power of a number (in bits)
SAMPLE_POINTS = 6        # integer points of the numeric line of evidence

READABLE, EQUIVALENT = "readable", "equivalent"


class Unreadable(ValueError):
    """An expression text that cannot be read (the message says why, in the student's terms)."""


def claim(expression: Any, symbols: Iterable[str], definitions: Mapping[str, Any] | None = None,
          target: Any = None, differentiate: str | None = None) -> dict[str, Any]:
    """The plain data a test cell publishes about one written answer (see the module docstring).

    ``expression`` and ``target`` may be strings or SymPy expressions (kept as text); ``None`` stays
    ``None`` (an unanswered question). With ``differentiate="w"`` the expression is compared with the
    derivative of ``target`` with respect to ``w``.
    """
    record: dict[str, Any] = {"expression": _text(expression), "symbols": [str(s) for s in symbols],
                              "definitions": {str(k): _text(v) for k, v in (definitions or {}).items()}}
    if target is not None:
        record["target"] = _text(target)
    if differentiate is not None:
        record["differentiate"] = str(differentiate)
    return record


def _text(value: Any) -> str | None:
    """An answer as text: strings as they are, numbers and SymPy expressions through ``str``."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)) or type(value).__module__.startswith("sympy"):
        return str(value)
    return None


# --- reading --------------------------------------------------------------------------------------

def _names(text: str) -> str:
    return ", ".join(text) if isinstance(text, (list, tuple)) else str(text)


def _constant(node: ast.AST) -> Fraction | None:
    """The exact value of a literal number, optionally signed (``2``, ``-3``, ``0.5``), else None."""
    sign = 1
    while isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        sign = -sign if isinstance(node.op, ast.USub) else sign
        node = node.operand
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return sign * Fraction(repr(node.value)) if isinstance(node.value, float) else sign * Fraction(node.value)
    return None


def read(text: Any, names: Iterable[str]):
    """The SymPy expression written in ``text``, using only ``names`` (raises :class:`Unreadable`)."""
    import sympy

    allowed = list(names)
    if text is None:
        raise Unreadable('no answer yet (None): write a string such as "3*w - u2/2"')
    if not isinstance(text, str):
        raise Unreadable(f"the answer is a {type(text).__name__}, not a string holding an expression")
    if not text.strip():
        raise Unreadable("the answer is an empty string")
    if len(text) > MAX_CHARS:
        raise Unreadable(f"the expression is {len(text)} characters long (at most {MAX_CHARS} are read)")
    try:
        tree = ast.parse(text.replace("^", "**").strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise Unreadable(f"cannot read {text!r} as an expression (write products with *, e.g. 2*w*u1, "
                         "and powers with ** or ^)") from None
    nodes = list(ast.walk(tree))
    if len(nodes) > MAX_NODES:
        raise Unreadable(f"the expression is too long ({len(nodes)} parts; at most {MAX_NODES})")
    symbols = {name: sympy.Symbol(name) for name in allowed}
    operators = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
                 ast.Div: lambda a, b: a / b}

    def build(node: ast.AST):
        if isinstance(node, ast.Expression):
            return build(node.body)
        if isinstance(node, ast.Constant):
            if type(node.value) not in (int, float):
                raise Unreadable(f"{node.value!r} is not a number or a name in {text!r}")
            if isinstance(node.value, float) and not math.isfinite(node.value) or abs(node.value) > MAX_INTEGER:
                raise Unreadable(f"the number {node.value!r} is too large")
            value = Fraction(repr(node.value)) if isinstance(node.value, float) else Fraction(node.value)
            return sympy.Rational(value.numerator, value.denominator)
        if isinstance(node, ast.Name):
            if node.id not in symbols:
                raise Unreadable(f"{text!r} uses {node.id!r}; write it in terms of {_names(allowed)} only")
            return symbols[node.id]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
            operand = build(node.operand)
            return -operand if isinstance(node.op, ast.USub) else operand
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            exponent = _constant(node.right)
            if exponent is None or exponent.denominator != 1 or abs(exponent) > MAX_EXPONENT:
                raise Unreadable(f"in {text!r} every exponent must be a whole number between {-MAX_EXPONENT} "
                                 f"and {MAX_EXPONENT}")
            base = build(node.left)
            if exponent < 0 and not base.is_Number:
                raise Unreadable(f"{text!r} divides by an expression; only division by numbers is read "
                                 "(the answers are polynomials)")
            if base.is_Rational and max(abs(base.p), base.q).bit_length() * abs(int(exponent)) > MAX_BITS:
                raise Unreadable(f"a number in {text!r} is too large")
            return base ** int(exponent)
        if isinstance(node, ast.BinOp) and type(node.op) in operators:
            left, right = build(node.left), build(node.right)
            if isinstance(node.op, ast.Div) and not right.is_Number:
                raise Unreadable(f"{text!r} divides by an expression; only division by numbers is read "
                                 "(the answers are polynomials)")
            return operators[type(node.op)](left, right)
        what = type(node).__name__ if not isinstance(node, ast.Call) else "a function call"
        raise Unreadable(f"{text!r} contains {what}; only numbers, {_names(allowed)}, + - * / ** and "
                         "parentheses are allowed")

    expression = build(tree)
    if expression.has(sympy.zoo, sympy.oo, -sympy.oo, sympy.nan):
        raise Unreadable(f"{text!r} divides by zero")
    return expression


def _degree(expression) -> int:
    """An upper bound on the total degree of ``expression`` (a polynomial or ratio of polynomials)."""
    if expression.is_Symbol:
        return 1
    if expression.is_Number:
        return 0
    if expression.is_Pow:
        return _degree(expression.base) * abs(int(expression.exp))
    if expression.is_Add:
        return max(_degree(arg) for arg in expression.args)
    return sum(_degree(arg) for arg in expression.args)


def substituted(expression, definitions: Mapping[str, Any], symbols: Iterable[str]):
    """``expression`` with every defined name replaced until only ``symbols`` remain (Unreadable if
    a definition cannot be read, refers to itself, or the result is too large to compare)."""
    import sympy

    base = list(symbols)
    everything = base + list(definitions)
    meaning: dict = {}
    for _ in range(len(definitions) + 1):
        needed = {str(symbol) for symbol in expression.free_symbols} & set(definitions)
        if not needed:
            break
        for name in needed - {str(symbol) for symbol in meaning}:  # read a definition only when it is used
            try:
                meaning[sympy.Symbol(name)] = read(definitions[name], everything)
            except Unreadable as why:
                raise Unreadable(f"{name} cannot be used: {why}") from None
        expression = expression.xreplace(meaning)
        if _degree(expression) > MAX_DEGREE:
            raise Unreadable(f"the expression has degree above {MAX_DEGREE} once the definitions are substituted")
    else:
        raise Unreadable("the definitions refer to each other in a circle")
    variables = len(expression.free_symbols)
    degree = _degree(expression)
    if degree > MAX_DEGREE or math.comb(degree + variables, variables) > MAX_TERMS:
        raise Unreadable(f"the expression is too large to compare (degree {degree} in {variables} variables)")
    return expression


def _sample_points(symbols: list, count: int) -> list[dict]:
    """Fixed integer points (no randomness: a verdict is reproducible), with distinct values away
    from 0 and 1 so that no term vanishes by accident."""
    import sympy

    values = [2, -3, 5, -7, 11, -13, 17, -19, 23, -29, 31, -37, 41, -43]
    return [{symbol: sympy.Integer(values[(i + 2 * k) % len(values)] * (k + 1)) for i, symbol in enumerate(symbols)}
            for k in range(count)]


def _agree(left, right, symbols: list) -> tuple[bool, dict | None]:
    """(True, None) if ``left - right`` expands to 0 and both agree exactly at the sample points;
    else (False, a point where they differ, or None)."""
    import sympy

    for point in _sample_points(symbols, SAMPLE_POINTS):
        at_left, at_right = left.xreplace(point), right.xreplace(point)
        if at_left != at_right:
            return False, point
    return sympy.expand(left - right) == 0, None


# --- judges ---------------------------------------------------------------------------------------

def _trusted(value: Any, reference: Any) -> dict[str, Any]:
    """The claim whose symbols, definitions and question count: the reference's when there is one."""
    spec = reference if reference is not None else value
    if not isinstance(spec, dict) or not isinstance(spec.get("symbols"), list):
        raise Unreadable("the published answer is not a claim made by symbolic.claim")
    definitions = spec.get("definitions") or {}
    if not isinstance(definitions, dict):
        raise Unreadable("the published definitions are not a dict")
    return {"symbols": [str(s) for s in spec["symbols"]], "definitions": definitions,
            "differentiate": spec.get("differentiate")}


def _expression(value: Any, key: str, spec: dict[str, Any]):
    """The student's ``value[key]`` read in the trusted names, with the definitions substituted."""
    text = value.get(key) if isinstance(value, dict) else None
    if not isinstance(value, dict):
        raise Unreadable("the published answer is not a claim made by symbolic.claim")
    names = spec["symbols"] + list(spec["definitions"])
    return substituted(read(text, names), spec["definitions"], spec["symbols"])


def _point_text(point: dict) -> str:
    return ", ".join(f"{symbol}={value}" for symbol, value in point.items())


def reads(value: Any, reference: Any = None) -> str:
    """``"readable"`` if the claim's expression reads in the allowed names (and its definitions
    substitute), else why not."""
    try:
        _expression(value, "expression", _trusted(value, reference))
    except Unreadable as why:
        return str(why)
    except Exception as error:  # noqa: BLE001  (whatever the text, a judge answers in words)
        return f"cannot read the expression ({type(error).__name__})"
    return READABLE


def equals_reference(value: Any, reference: Any = None) -> str:
    """``"equivalent"`` if the student's expression equals the reference's (hidden checks; the
    message names no expected value)."""
    if reference is None:
        return "this answer is judged by the grader"
    try:
        spec = _trusted(value, reference)
        answer, expected = _expression(value, "expression", spec), _expression(reference, "expression", spec)
        symbols = [__import__("sympy").Symbol(s) for s in spec["symbols"]]
        same, _ = _agree(answer, expected, symbols)
    except Unreadable as why:
        return str(why)
    except Exception as error:  # noqa: BLE001
        return f"cannot compare the expression ({type(error).__name__})"
    return EQUIVALENT if same else "not equivalent to the expected expression"


def equals_target(value: Any, reference: Any = None) -> str:
    """``"equivalent"`` if the claim's expression equals its own target (or the target's derivative
    with respect to the reference's ``differentiate`` symbol): a consistency check between two of the
    student's answers, so the message may show both values at a point where they differ."""
    import sympy

    try:
        spec = _trusted(value, reference)
        answer, target = _expression(value, "expression", spec), _expression(value, "target", spec)
        wrt = spec["differentiate"]
        if wrt is not None:
            if wrt not in spec["symbols"]:
                raise Unreadable(f"cannot differentiate with respect to {wrt!r}")
            target = sympy.diff(target, sympy.Symbol(wrt))
        symbols = [sympy.Symbol(s) for s in spec["symbols"]]
        same, point = _agree(answer, target, symbols)
    except Unreadable as why:
        return str(why)
    except Exception as error:  # noqa: BLE001
        return f"cannot compare the expressions ({type(error).__name__})"
    if same:
        return EQUIVALENT
    if point is None:
        return "not equivalent"
    return f"not equivalent: at {_point_text(point)} it is {answer.xreplace(point)}, not {target.xreplace(point)}"
