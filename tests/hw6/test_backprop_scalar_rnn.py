"""Problem 1 notebook: the reference passes every test cell; plausible mistakes are rejected."""
from __future__ import annotations

import pytest

from tests.hw6.rejection import (LyingFloat, assert_accepted, assert_check_style, assert_rejected,
                                 assert_sabotage_rejected, reference_calls, visible_failure)

NB = "backprop_scalar_rnn.ipynb"
CELLS = ["test_forward_intermediates", "test_dy_dw", "test_backward_partials", "test_edge_contributions"]


def test_reference_passes_every_test_cell(reference):
    assert_accepted(NB, CELLS, reference)


def test_test_cells_publish_checks_only():
    assert_check_style(NB)


def _autograd_nodes(w, u1, u2, u3):
    """The graph in torch (float64), with the gradient of y kept for every node."""
    import torch
    w = torch.tensor(w, dtype=torch.float64)
    p = torch.tensor(u1, dtype=torch.float64, requires_grad=True)
    q = w * p
    r = u2 + q
    s = w * r
    t = u3 + s
    y = w * t
    for node in (q, r, s, t):
        node.retain_grad()
    y.backward()
    return {"p": p, "q": q, "r": r, "s": s, "t": t, "y": y}


def _autograd_edges(w, u1, u2, u3):
    """One copy of w per edge: each copy's gradient is that edge's contribution; plus dy/dw of the shared w."""
    import torch
    w_q, w_s, w_y, w_all = (torch.tensor(w, dtype=torch.float64, requires_grad=True) for _ in range(4))
    (w_y * (u3 + w_s * (u2 + w_q * u1))).backward()
    (w_all * (u3 + w_all * (u2 + w_all * u1))).backward()
    return {"w_in_q": w_q.grad.item(), "w_in_s": w_s.grad.item(), "w_in_y": w_y.grad.item()}, w_all.grad.item()


def test_reference_agrees_with_autograd_on_every_input_the_cells_use(reference):
    """The hidden checks compare with the reference's own answers: here those answers are verified."""
    forward = reference_calls(NB, "test_forward_intermediates", reference, "forward_intermediates")
    assert len(forward) >= 25 and any(call.args[0] < 0 for call in forward) and any(call.args[0] == 0 for call in forward)
    for call in forward:
        nodes = _autograd_nodes(*call.args)
        assert set(call.result) == set(nodes)
        for key, value in nodes.items():
            assert call.result[key] == pytest.approx(value.item(), abs=1e-10)
        w, u1, u2, u3 = call.args
        assert call.result["y"] == pytest.approx(w * u3 + w**2 * u2 + w**3 * u1, abs=1e-10)
    backward = reference_calls(NB, "test_backward_partials", reference, "backward_partials")
    assert len(backward) >= 25
    for call in backward:
        nodes = _autograd_nodes(*call.args)
        assert set(call.result) == {"dy_dt", "dy_ds", "dy_dr", "dy_dq", "dy_dp"}
        for key in "tsrqp":
            assert call.result[f"dy_d{key}"] == pytest.approx(nodes[key].grad.item(), abs=1e-10)
    totals = reference_calls(NB, "test_dy_dw", reference, "dy_dw")
    assert len(totals) >= 25
    for call in totals:
        assert call.result == pytest.approx(_autograd_edges(*call.args)[1], abs=1e-10)
    edges = reference_calls(NB, "test_edge_contributions", reference, "edge_contributions")
    assert len(edges) >= 25
    for call in edges:
        want, dy_dw = _autograd_edges(*call.args)
        assert call.result == pytest.approx(want, abs=1e-10)
        assert sum(call.result.values()) == pytest.approx(dy_dw, abs=1e-10)


def test_closed_forms_of_reference(reference):
    """The reference agrees with the spec's closed forms (independent of the notebook's own tests)."""
    w, u1, u2, u3 = -1.3, 0.7, -2.0, 1.1
    assert reference["forward_intermediates"](w, u1, u2, u3)["y"] == pytest.approx(w * u3 + w**2 * u2 + w**3 * u1)
    edges = reference["edge_contributions"](w, u1, u2, u3)
    assert edges["w_in_q"] == pytest.approx(w**2 * u1)
    assert edges["w_in_s"] == pytest.approx(w * u2 + w**2 * u1)
    assert edges["w_in_y"] == pytest.approx(u3 + w * u2 + w**2 * u1)
    assert sum(edges.values()) == pytest.approx(u3 + 2 * w * u2 + 3 * w**2 * u1)
    assert reference["dy_dw"](w, u1, u2, u3) == pytest.approx(u3 + 2 * w * u2 + 3 * w**2 * u1)


def test_rejects_dy_dw_that_counts_only_the_last_use_of_w(reference):
    """Differentiating y = w*t with t held fixed (the direct use only) gives u3 + w*u2 + w^2*u1."""
    assert_rejected(NB, ["test_dy_dw"], reference, dy_dw=lambda w, u1, u2, u3: u3 + w * u2 + w**2 * u1)


def test_rejects_dy_dw_without_the_power_rule_factors(reference):
    """3*w*u1 instead of 3*w^2*u1 (the power rule applied as d(w^3)/dw = 3w): right at w = 0 and w = 1 only."""
    assert_rejected(NB, ["test_dy_dw"], reference, dy_dw=lambda w, u1, u2, u3: u3 + 2 * w * u2 + 3 * w * u1)


def test_dy_dw_failure_message_shows_got_and_expected(reference):
    """The visible check says what the student's dy_dw gave and what autograd gives."""
    namespace = dict(reference, dy_dw=lambda w, u1, u2, u3: u3 + w * u2 + w**2 * u1)
    assert visible_failure(NB, "test_dy_dw", namespace) == (
        "dy_dw(0.5, 1.0, 2.0, 3.0) compared with autograd: got 4.25, expected 5.75 (off by 1.5; tolerance 1e-09)")


def test_rejects_forward_that_skips_a_weight(reference):
    """s = r (the second multiplication by w forgotten), so y = w*u3 + w*u2 + w^2*u1."""
    def forward(w, u1, u2, u3):
        p = u1
        q = w * p
        r = u2 + q
        s = r
        t = u3 + s
        return {"p": p, "q": q, "r": r, "s": s, "t": t, "y": w * t}
    assert_rejected(NB, ["test_forward_intermediates"], reference, forward_intermediates=forward)


def test_rejects_partial_missing_a_factor_of_w(reference):
    """dy/dp = w^2 instead of w^3 (one multiplication by w forgotten)."""
    good = reference["backward_partials"]

    def backward(w, u1, u2, u3):
        return dict(good(w, u1, u2, u3), dy_dp=w**2)
    assert_rejected(NB, ["test_backward_partials"], reference, backward_partials=backward)


def test_rejects_partials_that_drop_the_sign_of_w(reference):
    """Using |w| passes the visible tests (w = 0.5) but not negative w in the hidden ones."""
    good = reference["backward_partials"]

    def backward(w, u1, u2, u3):
        return good(abs(w), u1, u2, u3)
    assert_rejected(NB, ["test_backward_partials"], reference, backward_partials=backward)


def test_rejects_edge_term_missing_the_earlier_step(reference):
    """r * dy/ds computed with r = u2 only (forgets that r also carries q = w*u1)."""
    good = reference["edge_contributions"]

    def edges(w, u1, u2, u3):
        return dict(good(w, u1, u2, u3), w_in_s=u2 * w)
    assert_rejected(NB, ["test_edge_contributions"], reference, edge_contributions=edges)


def test_rejects_last_edge_as_input_only(reference):
    """dy/dw_y = u3 (treats t as the input alone, not u3 + s)."""
    good = reference["edge_contributions"]

    def edges(w, u1, u2, u3):
        return dict(good(w, u1, u2, u3), w_in_y=u3)
    assert_rejected(NB, ["test_edge_contributions"], reference, edge_contributions=edges)


def test_rejects_only_the_direct_gradient(reference):
    """Counting only the last use of w (truncated backprop) gives u3 + w*u2 + w^2*u1 for the sum."""
    def edges(w, u1, u2, u3):
        return {"w_in_q": 0.0, "w_in_s": 0.0, "w_in_y": u3 + w * u2 + w**2 * u1}
    assert_rejected(NB, ["test_edge_contributions"], reference, edge_contributions=edges)


def test_accepts_closed_forms_returning_tensors(reference):
    """Closed-form answers (not step-by-step chain rule), returned as 0-d tensors, are also correct."""
    import torch

    def backward(w, u1, u2, u3):
        w = torch.tensor(w, dtype=torch.float64)
        return {"dy_dt": w, "dy_ds": w, "dy_dr": w**2, "dy_dq": w**2, "dy_dp": w**3}

    def edges(w, u1, u2, u3):
        return {"w_in_q": w**2 * u1, "w_in_s": w * u2 + w**2 * u1, "w_in_y": u3 + w * u2 + w**2 * u1}
    assert_accepted(NB, ["test_backward_partials"], reference, backward_partials=backward)
    assert_accepted(NB, ["test_edge_contributions"], reference, edge_contributions=edges)


def test_sabotaged_kernel_does_not_help_a_wrong_answer(reference):
    """Lying floats (equal to everything) and closeness tests patched to say yes still fail every cell."""
    def forward(w, u1, u2, u3):
        return {key: LyingFloat(0.0) for key in "pqrsty"}

    def backward(w, u1, u2, u3):
        return {key: LyingFloat(0.0) for key in ("dy_dt", "dy_ds", "dy_dr", "dy_dq", "dy_dp")}

    def edges(w, u1, u2, u3):
        return {key: LyingFloat(0.0) for key in ("w_in_q", "w_in_s", "w_in_y")}
    assert_sabotage_rejected(NB, "test_dy_dw", reference, dy_dw=lambda w, u1, u2, u3: LyingFloat(0.0))
    assert_sabotage_rejected(NB, "test_forward_intermediates", reference, forward_intermediates=forward)
    assert_sabotage_rejected(NB, "test_backward_partials", reference, backward_partials=backward)
    assert_sabotage_rejected(NB, "test_edge_contributions", reference, edge_contributions=edges)
