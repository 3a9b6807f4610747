"""emulate.Cgroup: the container size the Gradescope benchmark and the real-build test measure with.

A process that stays under the memory limit is measured (its resident memory, the cgroup's peak, its CPU
time); one that goes over it is killed by the kernel's out-of-memory killer and counted.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from coursekit.gradescope.emulate import Cgroup

if os.geteuid() != 0 or not sys.platform.startswith("linux") or not os.path.isdir("/sys/fs/cgroup"):  # pragma: no cover
    pytest.skip("needs root and cgroups", allow_module_level=True)

HOLD = "import time; x = bytearray({mb} << 20); x[::4096] = b'1' * len(x[::4096]); time.sleep(1.0)"


def run_in(group: Cgroup, mb: int) -> int:
    return subprocess.run([sys.executable, "-c", HOLD.format(mb=mb)], preexec_fn=group.enter,
                          capture_output=True, timeout=60).returncode


def test_a_process_under_the_limit_is_measured():
    group = Cgroup(f"coursekit-test-{os.getpid()}-under", memory_mb=256, cpus=1.0, sample=True)
    try:
        assert run_in(group, 100) == 0
        stats = group.stats()
    finally:
        group.remove()
    assert stats["oom_kills"] == 0
    assert 100 <= stats["peak_mb"] < 256
    assert stats["rss_mb"][os.path.basename(sys.executable)] >= 100  # sampled while it held the memory
    assert stats["address_space_mb"][os.path.basename(sys.executable)] >= 100 and stats["rss_sum_mb"] >= 100
    assert stats["cpu_s"] > 0


def test_a_process_over_the_limit_is_killed_and_counted():
    group = Cgroup(f"coursekit-test-{os.getpid()}-over", memory_mb=128, cpus=1.0)
    try:
        returncode = run_in(group, 300)
        stats = group.stats()
    finally:
        group.remove()
    assert returncode == -9
    assert stats["oom_kills"] >= 1
