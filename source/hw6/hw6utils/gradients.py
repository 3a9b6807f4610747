"""The measurement behind the Problem 3d visualizer: per-timestep hidden-state and gradient norms.

:func:`gradient_magnitudes` builds a recurrent layer (the student's ``RNNLayer`` or ``LSTMLayer``),
redraws its weights and biases at a chosen scale, runs one seeded batch of the running-average task,
backpropagates the loss and returns the norm of every hidden state ``|h_t|`` and of every
hidden-state gradient ``|dL/dh_t|``, plus the largest eigenvalue magnitude of the recurrent weight
``W_h`` for RNNs. The tests check these numbers against the written answers (3e, 3f, 3h); the widget
in :mod:`hw6utils.gradviz` draws them. This module imports neither ipywidgets nor matplotlib, so the
numbers can be computed (and graded) where no plotting stack is installed.

Why the weights are *redrawn* rather than multiplied: students initialise their layers in different
ways, and we want the same settings to show the same picture for every correct implementation. Every
weight matrix is drawn from N(0, 1/fan_in) with a generator seeded by ``seed`` (one generator per
parameter role, so the declaration order of the parameters does not matter) and multiplied by
``weight_scale``; with this scaling the largest |eigenvalue| of ``W_h`` is close to ``|weight_scale|``.
Biases are drawn from N(0, 1) and multiplied by ``bias_scale``.
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from .training import running_average_batch

NONLINEARITIES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "none": lambda z: z,
    "tanh": torch.tanh,
    "relu": torch.relu,
}
"""Activation choices for RNN layers (LSTM gates have their own fixed activations)."""


@dataclass(frozen=True)
class GradientStats:
    """What one forward/backward pass of the visualizer measured (arrays are indexed by t-1)."""

    h_norms: np.ndarray
    """``|h_t|`` (Euclidean norm over the hidden units, mean over the batch), shape (T,)."""
    grad_norms: np.ndarray
    """``|dL/dh_t|`` (same reductions), shape (T,)."""
    h_max_abs: np.ndarray
    """Largest absolute hidden-state component at each step, shape (T,)."""
    max_abs_eigenvalue: float | None
    """Largest |eigenvalue| of ``W_h`` (RNNs); None for layers without a single recurrent matrix."""
    loss: float
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def timesteps(self) -> np.ndarray:
        """1, 2, ..., T (the x-axis of the plots)."""
        return np.arange(1, len(self.h_norms) + 1)

    @property
    def finite(self) -> bool:
        """False when the hidden states or gradients overflowed (inf/NaN)."""
        return bool(np.all(np.isfinite(self.h_norms)) and np.all(np.isfinite(self.grad_norms)))


def accepts_nonlinearity(layer_factory: Callable[..., Any]) -> bool:
    """Whether ``layer_factory`` takes a ``nonlinearity=`` argument (``RNNLayer`` does, ``LSTMLayer`` not)."""
    try:
        params = inspect.signature(layer_factory).parameters
    except (TypeError, ValueError):
        return False
    return "nonlinearity" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def build_layer(layer_factory: Callable[..., torch.nn.Module], input_size: int, hidden_size: int,
                nonlinearity: str) -> torch.nn.Module:
    """Instantiate ``layer_factory(input_size, hidden_size[, nonlinearity=...])``.

    The nonlinearity is passed only to factories that take one (``RNNLayer`` does, ``LSTMLayer``
    does not).
    """
    if nonlinearity not in NONLINEARITIES:
        raise ValueError(f"nonlinearity must be one of {sorted(NONLINEARITIES)}, got {nonlinearity!r}")
    if accepts_nonlinearity(layer_factory):
        return layer_factory(input_size, hidden_size, nonlinearity=NONLINEARITIES[nonlinearity])
    return layer_factory(input_size, hidden_size)


def recurrent_matrix(layer: torch.nn.Module) -> torch.Tensor | None:
    """The matrix that multiplies ``h_{t-1}``: ``layer.W_h`` if present, else the only (H, H) parameter.

    Returns None when there is no single such matrix (an LSTM has one per gate).
    """
    weight = getattr(layer, "W_h", None)
    if isinstance(weight, torch.Tensor) and weight.dim() == 2 and weight.shape[0] == weight.shape[1]:
        return weight
    hidden = getattr(layer, "hidden_size", None)
    squares = [p for p in layer.parameters() if p.dim() == 2 and p.shape[0] == p.shape[1]
               and (hidden is None or p.shape[0] == hidden)]
    return squares[0] if len(squares) == 1 else None


def max_abs_eigenvalue(weight: torch.Tensor) -> float:
    """Largest |eigenvalue| (spectral radius) of a square matrix, computed in float64."""
    return float(torch.linalg.eigvals(weight.detach().double()).abs().max())


def _generator(seed: int, role: int, index: int) -> torch.Generator:
    gen = torch.Generator()
    gen.manual_seed(int(seed) * 1_000_003 + role * 1009 + index)
    return gen


def rescale_parameters(layer: torch.nn.Module, weight_scale: float, bias_scale: float, seed: int,
                       hidden_size: int) -> None:
    """Redraw every parameter of ``layer`` (see the module docstring for the distribution).

    Parameters are grouped by role: square (H, H) recurrent matrices, other matrices (input
    weights) and vectors (biases); each parameter gets its own generator from (seed, role, index
    within role), so the realisation does not depend on how the student ordered the declarations.
    """
    counters = {0: 0, 1: 0, 2: 0}
    with torch.no_grad():
        for param in layer.parameters():
            if param.dim() == 1:
                role, std, scale = 2, 1.0, bias_scale
            elif param.dim() == 2 and param.shape[0] == param.shape[1] == hidden_size:
                role, std, scale = 0, 1.0 / math.sqrt(hidden_size), weight_scale
            elif param.dim() == 2:
                role, std, scale = 1, 1.0 / math.sqrt(min(param.shape)), weight_scale
            else:
                raise ValueError(f"unexpected parameter of shape {tuple(param.shape)} in "
                                 f"{type(layer).__name__}: expected matrices and bias vectors")
            gen = _generator(seed, role, counters[role])
            counters[role] += 1
            values = torch.randn(param.shape, generator=gen, dtype=torch.float64) * std * scale
            param.copy_(values.to(param.dtype))


def _hidden_list(layer: torch.nn.Module, seq_len: int) -> list[torch.Tensor]:
    h_list = getattr(layer, "h_list", None)
    if h_list is None:
        raise RuntimeError(f"{type(layer).__name__}.forward did not call store_h_for_grad(h_list): "
                           "the visualizer needs self.h_list to read dL/dh_t")
    h_list = list(h_list)
    if len(h_list) == seq_len + 1:  # the implementation also stored h_0
        h_list = h_list[1:]
    if len(h_list) != seq_len:
        raise RuntimeError(f"{type(layer).__name__}.h_list has {len(h_list)} entries, expected one per "
                           f"timestep ({seq_len})")
    return h_list


def gradient_magnitudes(layer_factory: Callable[..., torch.nn.Module], *, weight_scale: float = 1.0,
                        bias_scale: float = 0.0, nonlinearity: str = "tanh",
                        last_timestep_only: bool = True, seq_len: int = 10, hidden_size: int = 16,
                        seed: int = 0, batch_size: int = 1, input_size: int = 1) -> GradientStats:
    """Per-timestep ``|h_t|`` and ``|dL/dh_t|`` of a freshly built, rescaled recurrent layer.

    ``layer_factory`` is a layer class such as ``RNNLayer``/``LSTMLayer`` (or any callable taking
    ``(input_size, hidden_size)`` and optionally ``nonlinearity=``). A linear read-out (fixed,
    seeded, not rescaled) predicts the running average; the loss is the MSE over every step or over
    the last step only. ``dL/dh_t`` is the *total* gradient, through all later steps, read from the
    tensors the layer kept with ``store_h_for_grad``.
    """
    if seq_len < 1 or hidden_size < 1 or batch_size < 1:
        raise ValueError("seq_len, hidden_size and batch_size must be positive")
    layer = build_layer(layer_factory, input_size, hidden_size, nonlinearity)
    rescale_parameters(layer, weight_scale, bias_scale, seed, hidden_size)
    readout = torch.randn(hidden_size, 1, generator=_generator(seed, 4, 0)) / math.sqrt(hidden_size)

    x, y = running_average_batch(seq_len, batch_size, _generator(seed, 3, 0))  # role 3: the task's data
    with torch.enable_grad():
        all_h, _ = layer(x)
        pred = all_h @ readout
        if last_timestep_only:
            loss = torch.mean((pred[:, -1] - y[:, -1]) ** 2)
        else:
            loss = torch.mean((pred - y) ** 2)
        h_list = _hidden_list(layer, seq_len)
        loss.backward()

    h_stack = torch.stack([h.detach().reshape(batch_size, -1) for h in h_list], dim=1)  # (B, T, H)
    grads = [h.grad if h.grad is not None else torch.zeros_like(h) for h in h_list]
    g_stack = torch.stack([g.detach().reshape(batch_size, -1) for g in grads], dim=1)
    weight = recurrent_matrix(layer)
    settings = dict(layer=getattr(layer_factory, "__name__", str(layer_factory)), weight_scale=weight_scale,
                    bias_scale=bias_scale, nonlinearity=nonlinearity, last_timestep_only=last_timestep_only,
                    seq_len=seq_len, hidden_size=hidden_size, seed=seed, batch_size=batch_size)
    return GradientStats(
        h_norms=h_stack.double().norm(dim=2).mean(dim=0).numpy(),
        grad_norms=g_stack.double().norm(dim=2).mean(dim=0).numpy(),
        h_max_abs=h_stack.double().abs().amax(dim=(0, 2)).numpy(),
        max_abs_eigenvalue=None if weight is None else max_abs_eigenvalue(weight),
        loss=float(loss.detach()),
        settings=settings,
    )
