"""Small assertion helpers shared by the visible tests of every HW6 notebook."""
from __future__ import annotations

from typing import Any

import numpy as np


def as_array(value: Any) -> np.ndarray:
    """Turn a tensor, list or number into a float64 numpy array (detached, on the CPU)."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=np.float64)


def assert_close(actual: Any, expected: Any, tol: float = 1e-4, name: str = "value") -> None:
    """Fail with a readable message unless ``actual`` matches ``expected`` to max error < ``tol``."""
    actual_arr, expected_arr = as_array(actual), as_array(expected)
    if actual_arr.shape != expected_arr.shape:
        raise AssertionError(f"{name}: shape {actual_arr.shape}, expected {expected_arr.shape}")
    if not np.all(np.isfinite(actual_arr)):
        raise AssertionError(f"{name}: contains NaN or inf")
    error = float(np.max(np.abs(actual_arr - expected_arr))) if actual_arr.size else 0.0
    if not error < tol:
        raise AssertionError(f"{name}: max error {error:.3g} is not below {tol:g}")


def assert_shape(value: Any, expected: tuple[int, ...], name: str = "value") -> None:
    """Fail unless ``value`` has exactly the shape ``expected``."""
    shape = tuple(value.shape)
    if shape != tuple(expected):
        raise AssertionError(f"{name}: shape {shape}, expected {tuple(expected)}")


def count_parameters(module: Any) -> int:
    """Number of trainable scalars in a torch module."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
