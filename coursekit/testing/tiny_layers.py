"""Small independent RNN/LSTM layers with the Problem 3 interface, for testing and benchmarking hw6utils.gradviz.

They follow the spec's names and signatures (``RNNLayer(input_size, hidden_size, nonlinearity)``,
``LSTMLayer(input_size, hidden_size)``, ``store_h_for_grad``) so gradviz can be tested before, and
independently of, the notebook's reference solution.
"""
from __future__ import annotations

import torch
from torch import nn


class TinyRNNLayer(nn.Module):
    def __init__(self, input_size: int, hidden_size: int, nonlinearity=torch.tanh) -> None:
        super().__init__()
        self.input_size, self.hidden_size, self.nonlinearity = input_size, hidden_size, nonlinearity
        self.W_h = nn.Parameter(torch.randn(hidden_size, hidden_size) * 0.1)
        self.W_x = nn.Parameter(torch.randn(hidden_size, input_size) * 0.1)
        self.b = nn.Parameter(torch.zeros(hidden_size))

    def store_h_for_grad(self, h_list):
        for h in h_list:
            h.retain_grad()
        self.h_list = h_list

    def forward(self, x):
        h = torch.zeros(x.shape[0], self.hidden_size)
        h_list = []
        for t in range(x.shape[1]):
            h = self.nonlinearity(h @ self.W_h.T + x[:, t] @ self.W_x.T + self.b)
            h_list.append(h)
        self.store_h_for_grad(h_list)
        return torch.stack(h_list, dim=1), h


class TinyLSTMLayer(nn.Module):
    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        for gate in "fiog":
            setattr(self, f"U_{gate}", nn.Parameter(torch.randn(input_size, hidden_size) * 0.1))
            setattr(self, f"W_{gate}", nn.Parameter(torch.randn(hidden_size, hidden_size) * 0.1))
            setattr(self, f"b_{gate}", nn.Parameter(torch.zeros(hidden_size)))

    def store_h_for_grad(self, h_list):
        for h in h_list:
            h.retain_grad()
        self.h_list = h_list

    def _gate(self, name, x_t, h):
        return x_t @ getattr(self, f"U_{name}") + h @ getattr(self, f"W_{name}") + getattr(self, f"b_{name}")

    def forward(self, x):
        batch = x.shape[0]
        h = torch.zeros(batch, self.hidden_size)
        c = torch.zeros(batch, self.hidden_size)
        h_list = []
        for t in range(x.shape[1]):
            x_t = x[:, t]
            f = torch.sigmoid(self._gate("f", x_t, h))
            i = torch.sigmoid(self._gate("i", x_t, h))
            o = torch.sigmoid(self._gate("o", x_t, h))
            g = torch.tanh(self._gate("g", x_t, h))
            c = f * c + i * g
            h = torch.tanh(c) * o
            h_list.append(h)
        self.store_h_for_grad(h_list)
        return torch.stack(h_list, dim=1), (h, c)


class TinyRegressionModel(nn.Module):
    """The spec's RecurrentRegressionModel (3b): a linear read-out of every hidden state."""

    def __init__(self, recurrent_net: nn.Module, output_dim: int = 1) -> None:
        super().__init__()
        self.recurrent_net = recurrent_net
        self.output_layer = nn.Linear(recurrent_net.hidden_size, output_dim)

    def forward(self, x):
        all_h, _ = self.recurrent_net(x)
        return self.output_layer(all_h), all_h
