"""The Problem 3d visualizer's set-up: a recurrent layer at a chosen weight and bias scale, and the
student's measurement of per-timestep hidden-state and gradient norms.

:func:`gradient_magnitudes` builds a recurrent layer (the student's ``RNNLayer`` or ``LSTMLayer``),
redraws its weights and biases at a chosen scale, puts the student's ``RecurrentRegressionModel`` on top
(with a fixed, seeded read-out), draws one batch with the student's ``generate_batch`` and hands all of it
to the student's measurement function (3d), which returns ``|h_t|`` and ``|dL/dh_t|`` for every timestep.
The widget in :mod:`hw6utils.gradviz` draws the result. This module imports neither ipywidgets nor
matplotlib.

Why the weights are *redrawn* rather than multiplied: students initialise their layers in different
ways, and we want the same settings to show the same picture for every correct implementation. Every
weight matrix is drawn from N(0, 1/fan_in) with a generator seeded by ``seed`` (one generator per
parameter role, so the declaration order of the parameters does not matter) and multiplied by
``weight_scale``. Biases are drawn from N(0, 1) and multiplied by ``bias_scale``.
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

NONLINEARITIES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "none": lambda z: z,
    "tanh": torch.tanh,
    "relu": torch.relu,
}
"""Activation choices for RNN layers (LSTM gates have their own fixed activations)."""


@dataclass(frozen=True)
class GradientStats:
    """What the student's measurement returned for one setting of the controls (indexed by t-1)."""

    h_norms: np.ndarray
    """``|h_t|`` (Euclidean norm over the hidden units, mean over the batch), shape (T,)."""
    grad_norms: np.ndarray
    """``|dL/dh_t|`` (same reductions), shape (T,)."""
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


Measure = Callable[..., Any]  # gradient_norms(model, x, y, last_timestep_only) -> (|h_t| list, |dL/dh_t| list)


def gradient_magnitudes(layer_factory: Callable[..., torch.nn.Module], *, model_class: Callable[..., torch.nn.Module],
                        batch_fn: Callable[[int, int], tuple[torch.Tensor, torch.Tensor]], measure: Measure,
                        weight_scale: float = 1.0, bias_scale: float = 0.0, nonlinearity: str = "tanh",
                        last_timestep_only: bool = True, seq_len: int = 10, hidden_size: int = 16,
                        seed: int = 0, batch_size: int = 1, input_size: int = 1) -> GradientStats:
    """Per-timestep ``|h_t|`` and ``|dL/dh_t|`` of a freshly built, rescaled recurrent layer, as measured by
    ``measure`` (the student's 3d function).

    ``layer_factory`` is ``RNNLayer``/``LSTMLayer`` (any callable taking ``(input_size, hidden_size)`` and
    optionally ``nonlinearity=``), ``model_class`` the student's ``RecurrentRegressionModel`` (its read-out is
    redrawn from ``seed``, not rescaled) and ``batch_fn`` the student's ``generate_batch``, called with torch's
    generator seeded from ``seed`` (its state is restored afterwards).
    """
    if seq_len < 1 or hidden_size < 1 or batch_size < 1:
        raise ValueError("seq_len, hidden_size and batch_size must be positive")
    layer = build_layer(layer_factory, input_size, hidden_size, nonlinearity)
    rescale_parameters(layer, weight_scale, bias_scale, seed, hidden_size)
    model = model_class(layer)
    with torch.no_grad():
        for index, param in enumerate(model.output_layer.parameters()):
            fan_in = param.shape[-1] if param.dim() == 2 else hidden_size
            param.copy_(torch.randn(param.shape, generator=_generator(seed, 4, index)) / math.sqrt(fan_in))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed) * 1_000_003 + 3 * 1009)  # role 3: the task's data
        x, y = batch_fn(seq_len, batch_size)
    with torch.enable_grad():
        h_norms, grad_norms = measure(model, x, y, last_timestep_only)
    h_norms, grad_norms = _norms(h_norms, seq_len, "|h_t|"), _norms(grad_norms, seq_len, "|dL/dh_t|")
    settings = dict(layer=getattr(layer_factory, "__name__", str(layer_factory)), weight_scale=weight_scale,
                    bias_scale=bias_scale, nonlinearity=nonlinearity, last_timestep_only=last_timestep_only,
                    seq_len=seq_len, hidden_size=hidden_size, seed=seed, batch_size=batch_size)
    return GradientStats(h_norms=h_norms, grad_norms=grad_norms, settings=settings)


def _norms(values: Any, seq_len: int, what: str) -> np.ndarray:
    """The measurement's values as a float64 array of one number per timestep (ValueError otherwise)."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    try:
        array = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ValueError(f"the measurement must return {what} as a list of numbers") from None
    if array.shape != (seq_len,):
        raise ValueError(f"the measurement returned {array.size} values of {what}, expected one per timestep "
                         f"({seq_len})")
    return array
