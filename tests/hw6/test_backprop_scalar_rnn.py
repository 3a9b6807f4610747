"""Problem 1 notebook: the derivations are collected as expressions and judged symbolically.

The reference's expressions are verified against autograd; every answer rejects a wrong expression that
is numerically close to the right one and accepts an equivalent one written differently; the visible
cells hold no oracle a student could return.
"""
from __future__ import annotations

import re

import pytest

from coursekit.testing.notebooks import SOURCE_DIR, load
from tests.hw6.rejection import (assert_accepted, assert_check_style, assert_rejected, assert_sabotage_rejected,
                                 visible_failure)

NB = "backprop_scalar_rnn.ipynb"
CELLS = ["test_forward_answers", "test_dy_dw", "test_backward_answer", "test_edges_answers"]
INPUTS = [(0.5, 1.0, 2.0, 3.0), (-1.5, 0.4, 2.2, -3.0), (0.0, 1.3, -0.7, 2.1), (2.0, -0.3, 0.9, 1.7)]


@pytest.fixture(autouse=True)
def close_figures():
    """The notebook's figure cells run with the reference namespace; do not let figures pile up."""
    yield
    import matplotlib.pyplot as plt
    plt.close("all")


def test_reference_passes_every_test_cell(reference):
    assert_accepted(NB, CELLS, reference)


def test_test_cells_publish_checks_only():
    assert_check_style(NB)


def _autograd(w, u1, u2, u3):
    """Every quantity Problem 1 asks for, by torch autograd on the graph of Figure 1 (float64)."""
    import torch
    w_q, w_s, w_y, w_all = (torch.tensor(w, dtype=torch.float64, requires_grad=True) for _ in range(4))
    p = torch.tensor(u1, dtype=torch.float64, requires_grad=True)
    q = w_q * p
    r = u2 + q
    s = w_s * r
    t = u3 + s
    y = w_y * t
    for node in (q, r, s, t):
        node.retain_grad()
    y.backward()
    (w_all * (u3 + w_all * (u2 + w_all * u1))).backward()
    return {"t": t.item(), "y": y.item(), "dy_dw": w_all.grad.item(), "dy_dp": p.grad.item(),
            "left": w_q.grad.item(), "middle": w_s.grad.item(), "right": w_y.grad.item(),
            "nodes": {"p": u1, "q": q.item(), "r": r.item(), "s": s.item(), "t": t.item(), "y": y.item(),
                      "dy_dt": t.grad.item(), "dy_ds": s.grad.item(), "dy_dr": r.grad.item(),
                      "dy_dq": q.grad.item(), "dy_dp": p.grad.item()}}


def _value(text, w, u1, u2, u3, nodes):
    import sympy
    names = {"w": w, "u1": u1, "u2": u2, "u3": u3, **nodes}
    expression = sympy.sympify(text.replace("^", "**"), locals={n: sympy.Symbol(n) for n in names})  # trusted text
    return float(expression.subs({sympy.Symbol(n): v for n, v in names.items()}))


@pytest.mark.parametrize("inputs", INPUTS)
def test_reference_expressions_agree_with_autograd(reference, inputs):
    """The hidden checks compare with the reference's expressions: here those are verified independently."""
    truth = _autograd(*inputs)
    nodes = truth["nodes"]
    assert _value(reference["t_answer"], *inputs, nodes) == pytest.approx(truth["t"], abs=1e-10)
    assert _value(reference["y_answer"], *inputs, nodes) == pytest.approx(truth["y"], abs=1e-10)
    assert _value(reference["dy_dw_answer"], *inputs, nodes) == pytest.approx(truth["dy_dw"], abs=1e-10)
    assert _value(reference["dy_dp_answer"], *inputs, nodes) == pytest.approx(truth["dy_dp"], abs=1e-10)
    assert _value(reference["left_edge_answer"], *inputs, nodes) == pytest.approx(truth["left"], abs=1e-10)
    assert _value(reference["middle_edge_answer"], *inputs, nodes) == pytest.approx(truth["middle"], abs=1e-10)
    assert truth["right"] == pytest.approx(truth["t"])  # the right-most edge the homework gives
    assert _value(reference["dy_dw_from_edges_answer"], *inputs, nodes) == pytest.approx(truth["dy_dw"], abs=1e-10)


# --- each answer: close but wrong fails, rearranged but equivalent passes ---------------------------
#
# (cell, answer variable, a wrong expression that differs from the right one by at most 1e-6 at every
# input the old numeric tests used, an equivalent expression written another way)

ANSWERS = [
    ("test_forward_answers", "t_answer", "u3 + w*u2 + 1.000001*w**2*u1", "w*(w*u1 + u2) + u3"),
    ("test_forward_answers", "y_answer", "w*u3 + w**2*u2 + w**3*u1 + 0.000001*w**4*u1", "w^3*u1 + w*(u3 + w*u2)"),
    ("test_dy_dw", "dy_dw_answer", "u3 + 2*w*u2 + 2.999999*w**2*u1", "w*(3*w*u1 + 2*u2) + u3"),
    ("test_backward_answer", "dy_dp_answer", "dy_dq*w + 0.000001*w**2", "w**3"),
    ("test_edges_answers", "left_edge_answer", "p*dy_dq*1.000001", "u1*w**2"),
    ("test_edges_answers", "middle_edge_answer", "r*dy_ds + 0.000001*u1", "w*u2 + w**2*p"),
    ("test_edges_answers", "dy_dw_from_edges_answer", "t + r*dy_ds + p*dy_dq + 0.000001*w", "dy_dw_rearranged"),
]


@pytest.mark.parametrize("cell, name, close_but_wrong, _", ANSWERS, ids=[a[1] for a in ANSWERS])
def test_numerically_close_wrong_expression_fails(reference, cell, name, close_but_wrong, _):
    for inputs in INPUTS:  # it really is close: within 1e-5 of the right value on ordinary inputs
        truth = _autograd(*inputs)
        right = reference[name]
        assert abs(_value(close_but_wrong, *inputs, truth["nodes"]) - _value(right, *inputs, truth["nodes"])) < 1e-5
    assert_rejected(NB, [cell], reference, **{name: close_but_wrong})


@pytest.mark.parametrize("cell, name, _, rearranged", ANSWERS, ids=[a[1] for a in ANSWERS])
def test_equivalent_rearranged_expression_passes(reference, cell, name, _, rearranged):
    if rearranged == "dy_dw_rearranged":  # the total written out in w and the u's, in another order
        rearranged = "3*u1*w**2 + 2*u2*w + u3"
    namespace_change = {name: rearranged}
    if name == "y_answer":  # 1b checks dy/dw against y: the rearranged y must keep 1b's check passing too
        assert_accepted(NB, ["test_dy_dw"], reference, **namespace_change)
    assert_accepted(NB, [cell], reference, **namespace_change)


def test_forward_answer_in_terms_of_s_is_not_in_terms_of_w_and_u():
    """1a asks for t in terms of w and the u's: "u3 + s" names an intermediate and is refused, with a reason."""
    from coursekit.testing.notebooks import solution_namespace
    namespace = dict(solution_namespace(NB), t_answer="u3 + s")
    assert visible_failure(NB, "test_forward_answers", namespace) == (
        "1a: t is an expression in w, u1, u2, u3: got \"'u3 + s' uses 's'; write it in terms of w, u1, u2, u3 "
        "only\", expected 'readable'")


def test_rejects_dy_dw_that_counts_only_the_last_use_of_w(reference):
    """Differentiating y = w*t with t held fixed gives t = u3 + w*u2 + w^2*u1: rejected, with the visible
    check naming where it differs from the derivative of the student's own y."""
    wrong = "u3 + w*u2 + w**2*u1"
    assert_rejected(NB, ["test_dy_dw"], reference, dy_dw_answer=wrong)
    message = visible_failure(NB, "test_dy_dw", dict(reference, dy_dw_answer=wrong))
    assert message.startswith("1b: dy/dw is the derivative of your y (1a) with respect to w: got 'not equivalent: at ")
    assert "expected 'equivalent'" in message


def test_a_consistent_but_wrong_pair_passes_visibly_and_fails_hidden(reference):
    """A wrong y with its own correct derivative passes the visible consistency check; the hidden
    comparison with the reference still fails both answers."""
    wrong = dict(y_answer="w*u3 + w**2*u2", dy_dw_answer="u3 + 2*w*u2")
    from coursekit.testing.notebooks import BEGIN_HIDDEN, cell_by_grade_id, runnable_source, working_directory
    source = cell_by_grade_id(load(SOURCE_DIR / NB), "test_dy_dw").source.split(BEGIN_HIDDEN)[0]
    with working_directory(SOURCE_DIR):
        exec(compile(runnable_source(source), "visible", "exec"), dict(reference, **wrong))
    assert_rejected(NB, ["test_dy_dw", "test_forward_answers"], reference, **wrong)


def test_unanswered_questions_fail_with_a_clear_message(reference):
    message = visible_failure(NB, "test_dy_dw", dict(reference, dy_dw_answer=None))
    assert "no answer yet" in message
    assert_rejected(NB, CELLS, reference, t_answer=None, y_answer=None, dy_dw_answer=None, dy_dp_answer=None,
                    left_edge_answer=None, middle_edge_answer=None, dy_dw_from_edges_answer=None)


def test_hostile_answers_are_refused_without_running_them(reference, tmp_path):
    """Answers are text read by an ast walk: code in them never runs, in the kernel or the grader."""
    marker = tmp_path / "ran"
    payload = f"__import__('pathlib').Path({str(marker)!r}).touch() or w"
    assert_rejected(NB, ["test_dy_dw"], reference, dy_dw_answer=payload)
    assert_rejected(NB, ["test_edges_answers"], reference, left_edge_answer="(lambda: p*dy_dq)()")
    assert not marker.exists()


def test_sabotaged_kernel_does_not_help_a_wrong_answer(reference):
    """Patched comparisons in the kernel, or a `check` that publishes nothing, do not pass wrong expressions."""
    assert_sabotage_rejected(NB, "test_dy_dw", reference, dy_dw_answer="u3 + w*u2 + w**2*u1")
    assert_sabotage_rejected(NB, "test_edges_answers", reference, left_edge_answer="p*dy_dp")


def test_visible_cells_hold_no_oracle():
    """No autograd or closed form in the visible test cells that a student could return as an answer."""
    for cell in load(SOURCE_DIR / NB).cells:
        if cell.cell_type != "code":
            continue
        visible = cell.source.split("### BEGIN HIDDEN TESTS")[0].split("### BEGIN SOLUTION")[0]
        assert "autograd" not in visible and "backward()" not in visible and ".grad" not in visible, cell.source
        assert not re.search(r"def \w+\(w, u1, u2, u3\)", visible), cell.source
