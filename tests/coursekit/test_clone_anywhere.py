"""A newcomer's clone grades wherever it lives (issue 24): `git clone` into a folder under /tmp whose
name has a space, a virtual environment inside the clone, the data fetched from the mirror, then the
whole `coursekit demo`: it exits 0 and the reference earns full points.

That run is the session's graded hw6 sample course (tests/hw6/sample_course.py), which other tests then
read or grade again in copies; here, what the newcomer saw."""
from __future__ import annotations

import pytest

from coursekit import sandbox
from tests.hw6.sample_course import CLONE

try:
    sandbox.check_available()
except sandbox.SandboxUnavailable as exc:  # pragma: no cover - CI and the dev machine run as root
    pytest.skip(f"sandbox unavailable: {exc}", allow_module_level=True)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("hw6_pipeline")]


@pytest.mark.timeout(3600)  # the whole hw6 demo: minutes of CPU, more on a shared machine
def test_a_clone_under_tmp_in_a_folder_with_a_space_runs_the_whole_demo(graded_hw6_built):
    clone, built = graded_hw6_built
    assert clone.name == CLONE and " " in clone.name and str(clone).startswith("/tmp/")
    assert built.kit_file.startswith(str(clone) + "/")  # the clone's own kit is the one under test
    demo = built.demo
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    reference = next(line for line in demo.stdout.splitlines() if line.startswith("reference "))
    assert "56/56" in reference.split(), reference
    assert "FAILED" not in demo.stderr, demo.stderr[-3000:]
