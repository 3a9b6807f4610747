"""The source notebooks executed top to bottom in a real kernel, once per test session.

test_source_runs.py checks that each runs without errors. rnn_gradients' run also saves the eight
models Problem 3k trains (their weights and loss histories) after its last cell, and the 3k tests of
test_rnn_gradients_hidden.py load those instead of training the same eight models again in-process.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell

from coursekit.testing.notebooks import SOURCE_DIR

TRAINED_3K = "trained-3k.pt"
SAVE_TRAINED_3K = f"""\
torch.save({{name: {{"state": run["model"].state_dict(), "history": run["history"]}}
            for name, run in {{**rnn_runs, **lstm_runs}}.items()}}, {TRAINED_3K!r})
"""
SAVES = {"rnn_gradients": SAVE_TRAINED_3K}  # notebook -> a last cell that keeps what other tests reuse


def execute(notebook: str, folder: Path) -> None:
    """Run ``notebook`` of a copy of source/hw6 in ``folder`` (the executed copy is saved there) with a
    kernel, top to bottom; nbclient raises at the first cell that fails."""
    shutil.copytree(SOURCE_DIR, folder, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
    path = folder / f"{notebook}.ipynb"
    nb = nbformat.read(str(path), as_version=4)
    if notebook in SAVES:
        nb.cells.append(new_code_cell(SAVES[notebook]))
    try:
        NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(folder)}}).execute()
    finally:
        nbformat.write(nb, str(path))


def executed(tmp_path_factory: pytest.TempPathFactory, notebook: str) -> Path:
    """The folder of this session's run of ``notebook`` (run by the first test that asks, in any worker)."""
    from tests.support.session_cache import build_once

    return build_once(tmp_path_factory, f"executed-{notebook}", lambda folder: execute(notebook, folder))[0]


def trained_3k(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """run name (e.g. "rnn_1, every step") -> {"state": state dict, "history": losses} of the session's run."""
    import torch

    return torch.load(executed(tmp_path_factory, "rnn_gradients") / TRAINED_3K)
