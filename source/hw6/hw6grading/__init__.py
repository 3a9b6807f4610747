"""Instructor-only code of HW6: the grader's judges and the trusted reference implementations.

This package never reaches students. ``nbgrader_config.py`` lists it in ``CourseDirectory.ignore``, so
nbgrader neither copies it into the release nor into a student's ``autograded/`` folder, and the sandbox
shows a kernel only that folder. Everything here implements something students are asked to write (the
encoding of Problem 4, the specified classifier, the running-average data and loss of 3c, the 3d
measurement) or judges with it, so it must stay out of the released helper package ``hw6utils``.

The grader imports this package by path (``coursekit.helpers.trusted_grading_package``) and tells it which
trusted copy of ``hw6utils`` to use by setting :data:`HELPERS` before the package runs; imported plainly
(tests, benchmarks with ``source/hw6`` on ``sys.path``) it uses ``hw6utils`` from the same folder.

One module per problem:

* ``training``: 3c's data and loss, and the judges of the 3k training runs (final loss from weights).
* ``gradients``: the reference 3d measurement and the spectral radius, for tests and the answer key.
* ``surnames``: Problem 4's encoding, the specified ``RecurrentClassifier``, and its judges (accuracy,
  structure and dropout from published weights).
"""
from __future__ import annotations

import importlib
from types import ModuleType

HELPERS: str = globals().get("HELPERS", "hw6utils")
"""The import name of the trusted helper package (the grader sets its private name before import)."""


def helper(module: str) -> ModuleType:
    """A module of the trusted helper package, e.g. ``helper("records")``."""
    return importlib.import_module(f"{HELPERS}.{module}")
