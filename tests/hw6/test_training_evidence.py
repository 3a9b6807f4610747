"""hw6utils.training's evidence of a trained 3k model: parameters the forward never reads are published as
0 (so the grader's specified equations compute the student's function), and nothing else changes."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from hw6utils.training import training_evidence, unread_parameters


class Net(nn.Module):
    """A one-layer regression net shaped like the notebook's (recurrent_net.layers.0.*, output_layer)."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        layer = nn.Module()
        layer.W_h, layer.W_x, layer.b = (nn.Parameter(torch.full(shape, 0.3)) for shape in ((2, 2), (2, 1), (2,)))
        self.recurrent_net = nn.Module()
        self.recurrent_net.layers = nn.ModuleList([layer])
        self.recurrent_net.input_size = 1
        self.output_layer = nn.Linear(2, 1)
        self.mode = mode

    def forward(self, x):
        layer, h, out = self.recurrent_net.layers[0], x.new_zeros(x.shape[0], 2), []
        bias = {"reads b": layer.b, "leaves out b": 0.0, "reads b detached": layer.b.detach()}[self.mode]
        if self.mode == "raises":
            raise RuntimeError("a student's bug")
        for t in range(x.shape[1]):
            h = torch.tanh(h @ layer.W_h.T + x[:, t] @ layer.W_x.T + bias)
            out.append(h)
        return self.output_layer(torch.stack(out, dim=1)), None


@pytest.mark.parametrize("mode, unread", [("reads b", []), ("leaves out b", ["recurrent_net.layers.0.b"]),
                                          ("reads b detached", []), ("raises", [])])
def test_only_parameters_that_change_nothing_are_published_as_zero(mode, unread):
    net = Net("reads b" if mode == "raises" else mode)
    net.mode = mode
    before = {name: p.detach().clone() for name, p in net.named_parameters()}
    assert unread_parameters(net) == unread
    evidence = training_evidence(net, "rnn", last_timestep_only=False)
    for name, value in before.items():
        assert torch.equal(dict(net.named_parameters())[name].detach(), value), "the student's model was changed"
        published = torch.as_tensor(evidence["state_dict"][name])
        assert torch.equal(published, torch.zeros_like(value) if name in unread else value), name
