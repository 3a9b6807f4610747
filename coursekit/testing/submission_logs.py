"""Problem 4's reference model trained as a student would, and the submission log it hands in.

Tests of ``coursekit grade-log`` and of the Gradescope autograder, and their benchmark, grade this
honest log (and tampered copies of it).
"""
from __future__ import annotations

import json
import linecache
from typing import Any

from coursekit.testing import courses
from coursekit.testing.notebooks import cell_by_grade_id, load, runnable_source, solution_namespace

NOTEBOOK = "surname_classification.ipynb"


def reference_submission_log(notebook: str = NOTEBOOK) -> dict[str, Any]:
    """Run the reference solution of Problem 4 (training takes ~12 s) and return the log the trusted
    helper builds from it, as plain JSON data (what a student uploads as submission_log.json)."""
    ns = solution_namespace(notebook, until_grade_id="p4_confusion_md")
    # IPython keeps every cell's source in linecache, which inspect.getsource needs; do the same here.
    model_cell = runnable_source(cell_by_grade_id(load(courses.source_dir() / notebook), "p4_model").source)
    filename = f"<{notebook}:p4_model>"
    linecache.cache[filename] = (len(model_cell), None, model_cell.splitlines(True), filename)
    surname_log = ns["surname_log"]
    hp = surname_log.hparams_dict(ns["HIDDEN_SIZE"], ns["NUM_LAYERS"], ns["DROPOUT"], ns["MODEL_TYPE"],
                               ns["OPTIMIZER_CLASS"], ns["LR"], ns["BATCH_SIZE"], ns["EPOCHS"], ns["SEED"])
    log = surname_log.build_submission_log(ns["model"], ns["history"], hp, ns["LAST_NAME"], ns["data"])
    return json.loads(json.dumps(log))
