"""The source notebooks executed top to bottom in a real kernel, once per test session.

tests/hw6/test_source_runs.py checks that each runs without errors. What the runs train is reused
instead of being trained again in-process: rnn_gradients' run saves the eight models of Problem 3k and
surname_classification's run saves Problem 4's model (weights and histories) after their last cell, and
the submission_log.json that run writes is the session's reference log.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell

from coursekit.testing.notebooks import SOURCE_DIR

TRAINED_3K, TRAINED_P4 = "trained-3k.pt", "trained-p4.pt"
SAVES = {  # notebook -> a last cell that keeps what other tests reuse
    "rnn_gradients": f"""torch.save({{name: {{"state": run["model"].state_dict(), "history": run["history"]}}
            for name, run in {{**rnn_runs, **lstm_runs}}.items()}}, {TRAINED_3K!r})""",
    "surname_classification": f"""torch.save({{"state": model.state_dict(), "history": history}}, {TRAINED_P4!r})""",
}


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


def trained_p4(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """{"state": state dict, "history": train_classifier's history} of Problem 4's model in the session's run."""
    import torch

    return torch.load(executed(tmp_path_factory, "surname_classification") / TRAINED_P4)


def reference_log(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The submission_log.json the reference solution wrote in the session's run (plain JSON data)."""
    return json.loads((executed(tmp_path_factory, "surname_classification") / "submission_log.json").read_text())
