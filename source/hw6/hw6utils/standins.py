"""Trusted stand-ins that let the tests of a later part run without the student's earlier answers.

A mistake in ``RNNLayer`` (3a) should cost the points of 3a once, not again in 3b and 3k. So the tests
of ``RecurrentRegressionModel`` read hidden states from :class:`FixedStates`, and the tests of the
stacked ``RNN``/``LSTM`` swap their layers for :class:`StandInLayer`s (:func:`with_stand_in_layers`).
The stand-ins are deliberately *not* recurrent layers, so they give nothing of 3a or 3h away.
"""
from __future__ import annotations

import torch
from torch import nn


class FixedStates(nn.Module):
    """A "recurrent net" that returns the given hidden states ``all_h`` (B, T, H) whatever its input."""

    def __init__(self, all_h: torch.Tensor) -> None:
        super().__init__()
        self.hidden_size = all_h.shape[-1]
        self.all_h = all_h

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.all_h, self.all_h[:, -1]


class StandInLayer(nn.Module):
    """Stands in for ``RNNLayer`` (``lstm=False``) or ``LSTMLayer`` (``lstm=True``) with the same interface.

    ``h_t = tanh(P m_t + q + h0)`` where ``m_t = (x_1 + ... + x_t) / t``; as "cell state" it reports
    ``c_T = P m_T + q + c0``. It has parameters ``P`` (H, input_size) and ``q`` (H) with fixed start values.
    Like the real layers it keeps ``h_list`` (h_1..h_T, gradients retained), so the 3d measurement can be
    tested on it; no h_t depends on h_{t-1}, so gradients do not flow back in time through it.
    """

    def __init__(self, input_size: int, hidden_size: int, lstm: bool = False) -> None:
        super().__init__()
        self.input_size, self.hidden_size, self.lstm = input_size, hidden_size, lstm
        self.P = nn.Parameter(torch.linspace(-1.0, 1.5, hidden_size * input_size).view(hidden_size, input_size))
        self.q = nn.Parameter(torch.linspace(0.3, -0.2, hidden_size))

    def forward(self, x: torch.Tensor, hc0: tuple[torch.Tensor, torch.Tensor] | None = None):
        steps = torch.arange(1, x.shape[1] + 1, dtype=x.dtype).view(1, -1, 1)
        pre = (x.cumsum(dim=1) / steps) @ self.P.T + self.q
        h0 = c0 = 0.0
        if hc0 is not None:
            h0, c0 = hc0[0].unsqueeze(1), hc0[1]
        self.h_list = list(torch.tanh(pre + h0).unbind(dim=1))
        for h in self.h_list:
            if h.requires_grad:
                h.retain_grad()
        all_h = torch.stack(self.h_list, dim=1)
        if self.lstm:
            return all_h, (all_h[:, -1], pre[:, -1] + c0)
        return all_h, all_h[:, -1]


def with_stand_in_layers(net: nn.Module, lstm: bool = False) -> nn.Module:
    """Replace ``net.layers`` of a stacked ``RNN`` (or ``LSTM``, with ``lstm=True``) by stand-ins of the
    same sizes; returns ``net``. The net's own ``forward`` (the part under test) then stacks the stand-ins.
    """
    sizes = [net.input_size if index == 0 else net.hidden_size for index in range(net.num_layers)]
    net.layers = nn.ModuleList([StandInLayer(size, net.hidden_size, lstm=lstm) for size in sizes])
    return net
