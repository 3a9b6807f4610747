"""Problem 3d's reference measurement (``gradient_norms``) and the spectral radius, for tests and the answer key.

``gradient_norms`` is what students write in 3d: run a ``RecurrentRegressionModel``, backpropagate the
running-average loss and read ``|h_t|`` and ``|dL/dh_t|`` from the hidden states the recurrent layer kept
(``store_h_for_grad``). ``max_abs_eigenvalue`` is the quantity 3e's answer is about.
"""
from __future__ import annotations

import torch
from torch import nn

from .training import regression_loss


def gradient_norms(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                   last_timestep_only: bool = True) -> tuple[list[float], list[float]]:
    """``|h_t|`` and ``|dL/dh_t|`` for t = 1..T (Euclidean norm over the hidden units, mean over the batch)."""
    pred, _ = model(x)
    regression_loss(pred, y, last_timestep_only).backward()
    h_list = model.recurrent_net.h_list
    states = torch.stack([h.detach() for h in h_list], dim=1)
    grads = torch.stack([h.grad if h.grad is not None else torch.zeros_like(h) for h in h_list], dim=1)
    return states.norm(dim=2).mean(dim=0).tolist(), grads.norm(dim=2).mean(dim=0).tolist()


def max_abs_eigenvalue(weight: torch.Tensor) -> float:
    """Largest |eigenvalue| (spectral radius) of a square matrix, computed in float64."""
    return float(torch.linalg.eigvals(weight.detach().double()).abs().max())
