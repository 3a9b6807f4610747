"""Fixtures of the hw6 notebook tests."""
from __future__ import annotations

from typing import Any

import pytest

from coursekit.testing.notebooks import solution_namespace


@pytest.fixture(scope="module")
def reference(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The namespace of the test module's notebook ``NB`` after its reference solution cells (tests skipped).
    A module that needs less of the notebook defines its own ``reference``."""
    return solution_namespace(request.module.NB)

