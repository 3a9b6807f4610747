"""Problem 6 notebook: the reference passes; wrong filter recovery / transposed convolutions are rejected."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tests.hw6.rejection import (AlwaysEqual, assert_accepted, assert_check_style, assert_rejected,
                                 assert_sabotage_rejected, reference_calls, visible_failure)

NB = "convolutions.ipynb"
CELLS = ["test_recover_filter", "test_transpose_conv_answer", "test_conv_transpose1d", "test_conv_transpose2d"]


def test_reference_passes_every_test_cell(reference):
    assert_accepted(NB, CELLS, reference)


def test_test_cells_publish_checks_only():
    assert_check_style(NB)


def test_reference_recovers_the_unique_filter_on_every_input_the_cell_uses(reference):
    """The hidden checks compare with the reference's filters; here each one is verified: it maps the
    signal to the output and the system has full column rank (so no other filter does)."""
    calls = reference_calls(NB, "test_recover_filter", reference, "recover_filter")
    solved, refused, lengths = 0, 0, set()
    for call in calls:
        x = torch.as_tensor(call.args[0], dtype=torch.float64)
        y = torch.as_tensor(call.args[1], dtype=torch.float64)
        K, m = x.numel() - y.numel() + 1, y.numel()
        if call.error is not None:
            assert isinstance(call.error, ValueError) and (K < 1 or m < K)
            refused += 1
            continue
        w = call.result
        assert w.dtype == torch.float64 and w.shape == (K,)
        assert torch.allclose(F.conv1d(x.view(1, 1, -1), w.view(1, 1, -1))[0, 0], y, atol=1e-9, rtol=0)
        A = torch.stack([x[i:i + K] for i in range(m)])
        assert torch.linalg.matrix_rank(A) == K
        solved += 1
        lengths.add((K, m > K))
    assert solved >= 20 and refused == 2
    assert {K for K, _ in lengths} == {1, 2, 3, 4, 5} and {over for _, over in lengths} == {True, False}


def test_reference_transposed_convolutions_match_torch_on_every_input_the_cells_use(reference):
    """The hidden checks compare with the reference's outputs; here each one is compared with torch."""
    for name, grade_id, torch_fn in (("conv_transpose1d", "test_conv_transpose1d", F.conv_transpose1d),
                                     ("conv_transpose2d", "test_conv_transpose2d", F.conv_transpose2d)):
        calls = reference_calls(NB, grade_id, reference, name)
        assert len(calls) >= 30
        strides, refused = set(), 0
        for call in calls:
            x, w = call.args
            stride, padding = call.kwargs.get("stride", 1), call.kwargs.get("padding", 0)
            full = [(n - 1) * stride + k for n, k in zip(x.shape, w.shape)]
            if call.error is not None:  # the promised ValueError: padding leaves no output
                assert isinstance(call.error, ValueError) and min(full) - 2 * padding < 1, call
                refused += 1
                continue
            want = torch_fn(x[None, None], w[None, None], stride=stride, padding=padding)[0, 0]
            assert call.result.dtype == x.dtype
            assert call.result.shape == want.shape
            assert torch.allclose(call.result, want, atol=1e-12 if x.dtype == torch.float64 else 1e-5, rtol=0)
            strides.add((stride, padding))
        assert len(strides) >= 8 and refused == 4


def test_reference_matches_the_spec_examples(reference):
    assert reference["recover_filter"]([1, 4, 0, -2, 3], [-2, 2, 11]).tolist() == pytest.approx([2, -1, 3])
    out = reference["conv_transpose2d"](torch.tensor([[-1.0, 2.0], [3.0, 1.0]]), torch.tensor([[1.0, -1.0], [0.0, 1.0]]))
    assert out.tolist() == [[-1, 3, -2], [3, -3, 1], [0, 3, 1]]


def test_hand_answer_to_6c_is_the_reference_and_wrong_ones_fail(reference):
    """6c's question has its own answer cell: the hand-computed output, judged by a hidden check."""
    assert torch.equal(torch.tensor(reference["transpose_conv_answer"], dtype=torch.float64),
                       F.conv_transpose2d(torch.tensor([[[[-1.0, 2.0], [3.0, 1.0]]]], dtype=torch.float64),
                                          torch.tensor([[[[1.0, -1.0], [0.0, 1.0]]]], dtype=torch.float64))[0, 0])
    assert_accepted(NB, ["test_transpose_conv_answer"], reference,
                    transpose_conv_answer=torch.tensor([[-1.0, 3.0, -2.0], [3.0, -3.0, 1.0], [0.0, 3.0, 1.0]]))
    for wrong in ([[-1, 3], [3, -3]],                                     # a standard convolution's size
                  [[-1, 1, -2], [3, -3, 1], [0, 3, 1]],                   # one overlap not summed
                  [[1, -3, 2], [-3, 3, -1], [0, -3, -1]],                 # sign flipped
                  [[-1, 3, -2], [3, -3, 1]], None, "[[-1, 3, -2]]"):
        assert_rejected(NB, ["test_transpose_conv_answer"], reference, transpose_conv_answer=wrong)
    message = visible_failure(NB, "test_transpose_conv_answer", dict(reference, transpose_conv_answer=[[1, 2], [3]]))
    assert message.startswith("6c: your answer is a matrix of numbers: got a list of 2 items"), message


def test_reference_refuses_empty_outputs(reference):
    with pytest.raises(ValueError):
        reference["conv_transpose1d"](torch.ones(1), torch.ones(2), stride=1, padding=1)
    with pytest.raises(ValueError):
        reference["conv_transpose2d"](torch.ones(1, 3), torch.ones(1, 1), stride=1, padding=1)


def test_library_guard_is_restored_after_the_hidden_tests(reference):
    assert_accepted(NB, ["test_conv_transpose1d"], reference)
    assert F.conv_transpose1d(torch.ones(1, 1, 2), torch.ones(1, 1, 2)).tolist() == [[[1.0, 2.0, 1.0]]]


# --- wrong implementations ----------------------------------------------------------------------

def _stamp1d(x, w, stride, length):
    full = torch.zeros(length, dtype=x.dtype)
    for i in range(x.shape[0]):
        full[i * stride:i * stride + w.shape[0]] += x[i] * w
    return full


def _stamp2d(x, w, stride, shape):
    full = torch.zeros(shape, dtype=x.dtype)
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            full[i * stride:i * stride + w.shape[0], j * stride:j * stride + w.shape[1]] += x[i, j] * w
    return full


def ct1d_off_by_one(x, w, stride=1, padding=0):
    """Wrong: output one element too long ((L-1)*stride + K + 1 before cropping)."""
    full = _stamp1d(x, w, stride, (x.shape[0] - 1) * stride + w.shape[0] + 1)
    return full[padding:full.shape[0] - padding]


def ct2d_off_by_one(x, w, stride=1, padding=0):
    """Wrong: output one row and column short (the last stamp is cut off)."""
    shape = ((x.shape[0] - 1) * stride + w.shape[0], (x.shape[1] - 1) * stride + w.shape[1])
    full = _stamp2d(x, w, stride, shape)[:-1, :-1]
    return full[padding:full.shape[0] - padding, padding:full.shape[1] - padding]


def ct1d_ignores_padding(x, w, stride=1, padding=0):
    return _stamp1d(x, w, stride, (x.shape[0] - 1) * stride + w.shape[0])


def ct2d_ignores_padding(x, w, stride=1, padding=0):
    return _stamp2d(x, w, stride, ((x.shape[0] - 1) * stride + w.shape[0], (x.shape[1] - 1) * stride + w.shape[1]))


def ct1d_crops_one_side(x, w, stride=1, padding=0):
    """Wrong: removes 2*padding elements from the start instead of padding from each end."""
    return _stamp1d(x, w, stride, (x.shape[0] - 1) * stride + w.shape[0])[2 * padding:]


def ct1d_padding_adds_zeros(x, w, stride=1, padding=0):
    """Wrong: treats padding like a convolution's padding (adds zeros instead of cropping)."""
    return F.pad(_stamp1d(x, w, stride, (x.shape[0] - 1) * stride + w.shape[0]), (padding, padding))


def ct1d_flipped(x, w, stride=1, padding=0):
    full = _stamp1d(x, w.flip(0), stride, (x.shape[0] - 1) * stride + w.shape[0])
    return full[padding:full.shape[0] - padding]


def ct2d_flipped(x, w, stride=1, padding=0):
    full = _stamp2d(x, w.flip(0, 1), stride, ((x.shape[0] - 1) * stride + w.shape[0], (x.shape[1] - 1) * stride + w.shape[1]))
    return full[padding:full.shape[0] - padding, padding:full.shape[1] - padding]


def ct1d_calls_torch(x, w, stride=1, padding=0):
    """Not allowed: delegates to the library function the tests compare against."""
    return F.conv_transpose1d(x.view(1, 1, -1), w.view(1, 1, -1), stride=stride, padding=padding)[0, 0]


def ct2d_calls_torch(x, w, stride=1, padding=0):
    return torch.conv_transpose2d(x[None, None], w[None, None], stride=stride, padding=padding)[0, 0]


def test_rejects_transpose_conv_with_off_by_one_output_size(reference):
    assert_rejected(NB, ["test_conv_transpose1d"], reference, conv_transpose1d=ct1d_off_by_one)
    assert_rejected(NB, ["test_conv_transpose2d"], reference, conv_transpose2d=ct2d_off_by_one)


def test_rejects_transpose_conv_ignoring_padding(reference):
    assert_rejected(NB, ["test_conv_transpose1d"], reference, conv_transpose1d=ct1d_ignores_padding)
    assert_rejected(NB, ["test_conv_transpose2d"], reference, conv_transpose2d=ct2d_ignores_padding)


def test_rejects_padding_cropped_from_one_side(reference):
    assert_rejected(NB, ["test_conv_transpose1d"], reference, conv_transpose1d=ct1d_crops_one_side)


def test_rejects_padding_that_adds_zeros(reference):
    assert_rejected(NB, ["test_conv_transpose1d"], reference, conv_transpose1d=ct1d_padding_adds_zeros)


def test_rejects_flipped_filter(reference):
    assert_rejected(NB, ["test_conv_transpose1d"], reference, conv_transpose1d=ct1d_flipped)
    assert_rejected(NB, ["test_conv_transpose2d"], reference, conv_transpose2d=ct2d_flipped)


def test_rejects_calling_torch_conv_transpose(reference):
    assert_rejected(NB, ["test_conv_transpose1d"], reference, conv_transpose1d=ct1d_calls_torch)
    assert_rejected(NB, ["test_conv_transpose2d"], reference, conv_transpose2d=ct2d_calls_torch)


def test_rejects_recovered_filter_in_flipped_convention(reference):
    """True convolution (flipped filter) recovers [3, -1, 2] instead of [2, -1, 3]."""
    good = reference["recover_filter"]
    assert_rejected(NB, ["test_recover_filter"], reference,
                    recover_filter=lambda signal, output: good(signal, output).flip(0))


def test_rejects_recovery_assuming_a_length_3_filter(reference):
    """Hard-wiring the example's 3x3 system passes the visible test but not other lengths."""
    def recover(signal, output):
        x = torch.as_tensor(signal, dtype=torch.float64)
        y = torch.as_tensor(output, dtype=torch.float64)
        A = torch.stack([x[i:i + 3] for i in range(3)])
        return torch.linalg.solve(A, y[:3])
    assert_rejected(NB, ["test_recover_filter"], reference, recover_filter=recover)


def ct1d_via_conv1d(x, w, stride=1, padding=0):
    """A correct alternative: insert stride-1 zeros, full correlation with the flipped filter, crop."""
    if (x.shape[0] - 1) * stride + w.shape[0] - 2 * padding < 1:
        raise ValueError("empty output")
    return ct1d_without_value_error(x, w, stride, padding)


def ct1d_without_value_error(x, w, stride=1, padding=0):
    """Right wherever the output is non-empty; an empty tensor instead of the promised ValueError."""
    K = w.shape[0]
    dilated = torch.zeros((x.shape[0] - 1) * stride + 1, dtype=x.dtype)
    dilated[::stride] = x
    full = F.conv1d(dilated.view(1, 1, -1), w.flip(0).view(1, 1, -1), padding=K - 1)[0, 0]
    return full[padding:full.shape[0] - padding]


def ct2d_via_conv2d(x, w, stride=1, padding=0):
    if min((n - 1) * stride + k for n, k in zip(x.shape, w.shape)) - 2 * padding < 1:
        raise ValueError("empty output")
    return ct2d_without_value_error(x, w, stride, padding)


def ct2d_without_value_error(x, w, stride=1, padding=0):
    KH, KW = w.shape
    dilated = torch.zeros((x.shape[0] - 1) * stride + 1, (x.shape[1] - 1) * stride + 1, dtype=x.dtype)
    dilated[::stride, ::stride] = x
    full = F.conv2d(dilated[None, None], w.flip(0, 1)[None, None], padding=(KH - 1, KW - 1))[0, 0]
    return full[padding:full.shape[0] - padding, padding:full.shape[1] - padding]


def test_accepts_transpose_conv_written_as_a_convolution(reference):
    assert_accepted(NB, ["test_conv_transpose1d"], reference, conv_transpose1d=ct1d_via_conv1d)
    assert_accepted(NB, ["test_conv_transpose2d"], reference, conv_transpose2d=ct2d_via_conv2d)


def test_skipping_the_promised_value_error_costs_points(reference):
    """Empty outputs must raise ValueError, as the instructions say: an implementation that returns an
    empty tensor instead fails the cell, visibly and in the hidden checks on their own."""
    assert_rejected(NB, ["test_conv_transpose1d"], reference, conv_transpose1d=ct1d_without_value_error)
    assert_rejected(NB, ["test_conv_transpose2d"], reference, conv_transpose2d=ct2d_without_value_error)


def test_visible_failures_show_got_and_expected(reference):
    good = reference["recover_filter"]
    message = visible_failure(NB, "test_recover_filter", dict(reference, recover_filter=lambda s, o: good(s, o).flip(0)))
    assert message.startswith("conv1d(signal, your filter) (it must reproduce the output): got [")
    assert "expected [-2, 2, 11]; first difference at index [0]" in message
    message = visible_failure(NB, "test_conv_transpose1d", dict(reference, conv_transpose1d=ct1d_off_by_one))
    assert "got shape (8,), expected shape (7,)" in message, message
    message = visible_failure(NB, "test_conv_transpose2d", dict(reference, conv_transpose2d=ct2d_flipped))
    assert "compared with F.conv_transpose2d: got [[" in message and "first difference at index [0, 0]" in message


def test_sabotaged_kernel_does_not_help_a_wrong_answer(reference):
    good = reference["recover_filter"]
    assert_sabotage_rejected(NB, "test_recover_filter", reference,
                             recover_filter=lambda signal, output: good(signal, output).flip(0))
    assert_sabotage_rejected(NB, "test_recover_filter", reference, recover_filter=lambda signal, output: AlwaysEqual())
    assert_sabotage_rejected(NB, "test_conv_transpose1d", reference, conv_transpose1d=ct1d_flipped)
    assert_sabotage_rejected(NB, "test_conv_transpose1d", reference, conv_transpose1d=lambda *a, **k: AlwaysEqual())
    assert_sabotage_rejected(NB, "test_conv_transpose2d", reference, conv_transpose2d=ct2d_ignores_padding)
    assert_sabotage_rejected(NB, "test_conv_transpose2d", reference, conv_transpose2d=lambda *a, **k: AlwaysEqual())
