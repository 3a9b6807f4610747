"""Every resource a kernel can use has a cap, and hitting one gives a line a student understands
(issues 19 item 8 and 20 item 3): writable space, message size, memory (never above the machine's),
cell time; and two graders on one host never touch each other's kernels."""
from __future__ import annotations

import io
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from coursekit import sandbox
from coursekit.executor import ExecutionReport, execute, remove_scratch, scratch_copy
from coursekit.preprocessors import SandboxedExecute
from coursekit.testing.floods import FLOODS_15MIB, HONEST, grade_in_fresh_process

REPO_ROOT = Path(__file__).resolve().parents[2]
KERNEL_ARGUMENTS = ["--HistoryManager.hist_file=:memory:", "--IPKernelApp.log_level=ERROR"]
MiB = 2 ** 20

try:
    sandbox.check_available()
except sandbox.SandboxUnavailable as exc:  # pragma: no cover - CI and the dev machine run as root
    pytest.skip(f"sandbox unavailable: {exc}", allow_module_level=True)


def run_cells(tmp_path: Path, *sources: str, **traits) -> tuple[nbformat.NotebookNode, ExecutionReport, Path]:
    """Run the cells in a sandboxed kernel as SandboxedExecute would (its scratch folder and limits)."""
    nb = new_notebook(cells=[new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    folder = tmp_path / "submission"
    folder.mkdir(exist_ok=True)
    settings = SandboxedExecute(**{"timeout": 30, "notebook_timeout": 90, "extra_arguments": KERNEL_ARGUMENTS,
                                   **traits}).execution_settings()
    workdir = scratch_copy(folder, settings.limits.workdir_bytes)
    try:
        report = execute(nb, workdir, settings)
    finally:
        remove_scratch(workdir)
    assert not workdir.exists() and not os.path.ismount(workdir)  # nothing of it stays on the host
    return nb, report, workdir


def text(cell) -> str:
    return "".join(o.get("text", "") + o.get("ename", "") for o in cell.outputs)


FILL = ("import os\n"
        "def fill(place):\n"
        "    written = 0\n"
        "    try:\n"
        "        with open(os.path.join(place, 'fill'), 'wb') as f:\n"
        "            while written < 2 ** 30:\n"
        "                f.write(b'0' * 2 ** 20); written += 2 ** 20\n"
        "            f.flush()\n"
        "    except OSError as e:\n"
        "        print(place, 'ENOSPC' if e.errno == 28 else e)\n"
        "    return written\n"
        "total = sum(fill(place) for place in ['.', '/tmp', '/var/tmp', '/dev/shm'])\n"
        "print('TOTAL', total // 2 ** 20)\n")


def test_everything_a_kernel_writes_is_capped(tmp_path):
    nb, report, _ = run_cells(tmp_path, FILL, writable_bytes=64 * MiB, max_file_bytes=256 * MiB)
    out = text(nb.cells[0])
    assert report.problems == [], report.problems
    assert ". ENOSPC" in out and "/tmp ENOSPC" in out
    total = int(out.split("TOTAL")[1].split()[0])
    assert 32 <= total <= 64  # the working folder and the private /tmp, /var/tmp, /dev/shm together


def test_an_oversize_message_stops_the_kernel_with_a_reason(tmp_path):
    nb, report, _ = run_cells(tmp_path, "print('before')", "print('x' * 5_000_000)", "print('never')",
                              max_message_bytes=1 * MiB)
    assert len(report.problems) == 1, report.problems
    assert report.problems[0].startswith("the kernel sent a message larger than the grader's limit of 1 MiB")
    assert "at cell 1;" in report.problems[0] and "never" not in text(nb.cells[2])


def test_an_honest_large_output_below_the_limit_arrives(tmp_path):
    nb, report, _ = run_cells(tmp_path, "print('y' * 500_000)", "print('after')", max_message_bytes=1 * MiB)
    assert report.problems == [] and "after" in text(nb.cells[1])


def test_a_flood_of_messages_under_the_size_limit_is_stopped_and_the_graders_memory_stays_bounded():
    honest = grade_in_fresh_process(HONEST)
    flood = grade_in_fresh_process(FLOODS_15MIB)  # 200 x 15 MiB, each under the 16 MiB message limit
    assert honest["problems"] == [] and flood["problems"] == [
        "the kernel sent more than the grader's limit of 256 MiB of messages (output in a loop?) at cell 0; "
        "it was stopped and later cells did not run"]
    assert "after" not in flood["outputs"][1]
    # what the grader holds is bounded by its queue (4 messages), the message it reads and its decoded copy,
    # not by what the kernel sends (3 GB here; uncapped, the peak grows by GBs: docs/benchmarks.md)
    assert flood["peak_mib"] < honest["peak_mib"] + 12 * 15, (honest, flood)


def test_many_honest_outputs_in_a_burst_all_arrive(tmp_path):
    burst = "from IPython.display import display\nfor i in range(3000):\n    display({'text/plain': f'line {i}'}, raw=True)"
    nb, report, _ = run_cells(tmp_path, burst, "print('after')")
    lines = [o["data"]["text/plain"] for o in nb.cells[0].outputs if o.get("output_type") == "display_data"]
    assert report.problems == [] and lines == [f"line {i}" for i in range(3000)] and "after" in text(nb.cells[1])


def test_out_of_memory_is_said_in_words(tmp_path):
    dies = "import ctypes\nctypes.CDLL('libstdc++.so.6')._Znwm(ctypes.c_size_t(1 << 40))  # C++ new: bad_alloc"
    nb, report, _ = run_cells(tmp_path, "x = bytearray(3 * 2 ** 30)", "print('alive')", dies, "print('never')",
                              memory_bytes=2 * 2 ** 30)
    assert report.problems[0] == "cell 0 ran out of memory (the kernel may use 2.0 GiB)"
    assert "[grader] cell 0 ran out of memory" in text(nb.cells[0]) and "alive" in text(nb.cells[1])
    assert report.problems[1].startswith("the kernel ran out of memory at cell 2 (it may use 2.0 GiB)")
    assert report.executed_cells == 2


def test_a_timed_out_cell_is_said_in_words_and_the_next_cells_run(tmp_path):
    nb, report, _ = run_cells(tmp_path, "import time\ntime.sleep(60)", "print('next')", timeout=2)
    assert report.problems == ["cell 0 ran longer than its limit of 2 s and was interrupted"]
    assert "[grader] cell 0 ran longer than its limit of 2 s" in text(nb.cells[0])
    assert "next" in text(nb.cells[1])


def test_the_memory_limit_never_exceeds_the_machine(tmp_path, monkeypatch):
    assert sandbox.machine_memory_bytes() <= os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") + 2 ** 20
    monkeypatch.setattr(sandbox, "_machine_memory", [768 * MiB])  # as in a 768 MB container
    work = tmp_path / "work"
    work.mkdir()
    report = "import resource; print(*(resource.getrlimit(r)[0] for r in (resource.RLIMIT_DATA, resource.RLIMIT_AS)))"
    limits = sandbox.Limits(memory_bytes=8 * 2 ** 30, wall_seconds=20, cpu_seconds=20)
    r = sandbox.run([sys.executable, "-I", "-c", report], workdir=work, uid=sandbox.claim_uid(), limits=limits)
    assert r.returncode == 0, r.stderr
    assert [int(n) for n in r.stdout.split()] == [768 * MiB, 768 * MiB + limits.mapping_bytes]


def test_torch_trains_in_a_small_container_and_shared_memory_is_capped_too(tmp_path, monkeypatch):
    """torch reserves far more address space than it uses: under Gradescope's default 768 MB it must still
    import and train (an address-space cap of 768 MB killed it). Shared mappings, which RLIMIT_DATA does not
    count, stop at the address-space cap; the kernel, not the grader, is the OOM killer's first choice."""
    monkeypatch.setattr(sandbox, "_machine_memory", [768 * MiB])
    work = tmp_path / "work"
    work.mkdir()
    code = ("import mmap, torch\n"
            "model = torch.nn.LSTM(8, 32)\n"
            "model(torch.randn(20, 4, 8))[0].sum().backward()\n"
            "try:\n    mmap.mmap(-1, 3 * 2 ** 30)\nexcept OSError:\n    print('shared mapping refused')\n"
            "print(open('/proc/self/oom_score_adj').read().strip())\n")
    r = sandbox.run([sys.executable, "-c", code], workdir=work, uid=sandbox.claim_uid(),
                    limits=sandbox.Limits(memory_bytes=8 * 2 ** 30, wall_seconds=60, cpu_seconds=60))
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().split("\n")[:2] == ["shared mapping refused", "1000"]


def test_cgroup_limits_are_read(tmp_path, monkeypatch):
    """A v2 and a v1 hierarchy as a container shows them: the smallest limit up the tree counts."""
    v2, v1 = tmp_path / "unified", tmp_path / "memory"
    (v2 / "job" / "kernel").mkdir(parents=True)
    (v2 / "job" / "memory.max").write_text("805306368\n")
    (v2 / "job" / "kernel" / "memory.max").write_text("max\n")
    (v1 / "box").mkdir(parents=True)
    (v1 / "box" / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    files = {"/proc/self/cgroup": "4:memory:/box\n0::/job/kernel\n",
             "/proc/self/mountinfo": f"35 31 0:32 / {v1} rw - cgroup cgroup rw,memory\n"
                                     f"41 31 0:38 / {v2} rw - cgroup2 cgroup2 rw\n"}
    real_open = open

    def fake_open(path, *args, **kwargs):
        return io.StringIO(files[path]) if path in files else real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", fake_open)
    assert min(sandbox._cgroup_memory_limits()) == 805306368


def test_two_graders_never_touch_each_others_kernels(tmp_path, monkeypatch):
    """Grader A runs a kernel; grader B (here: this process) claims a uid, runs and cleans up its own
    kernels in both modes (its clean-up kills by uid): A's kernel and scratch folder are untouched."""
    mark = f"{8000 + secrets.randbelow(1000)}.{secrets.randbelow(10 ** 6):06d}"
    grader_a = (
        "import sys, tempfile\n"
        f"sys.path.insert(0, {str(REPO_ROOT)!r})\n"
        "from coursekit import sandbox\n"
        "uid = sandbox.claim_uid()\n"
        "work = tempfile.mkdtemp(prefix='ck-', dir=sandbox.SCRATCH_ROOT)\n"
        "print(uid, work, flush=True)\n"
        f"r = sandbox.run(['sleep', {mark!r}], workdir=work, uid=uid, limits=sandbox.Limits(wall_seconds=60))\n"
        "print('A ended', r.returncode, r.timed_out, flush=True)\n")
    a = subprocess.Popen([sys.executable, "-c", grader_a], stdout=subprocess.PIPE, text=True)
    try:
        uid_a, work_a = a.stdout.readline().split()
        deadline = time.monotonic() + 20
        while not processes_with(mark) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert processes_with(mark), "grader A's kernel did not start"
        uid_b = sandbox.claim_uid()
        assert uid_b != int(uid_a)
        for degraded in (False, True):
            if degraded:
                monkeypatch.setenv(sandbox.NO_NAMESPACES_ENV, "1")
            work = tmp_path / f"b-{degraded}"
            work.mkdir()
            r = sandbox.run(["sh", "-c", "sleep 60 & echo started"], workdir=work, uid=uid_b, allow_degraded=True,
                            limits=sandbox.Limits(wall_seconds=20))
            assert r.returncode == 0 and b"started" in r.stdout
            sandbox.kill_user_processes(uid_b)  # what the executor does after each notebook
        assert processes_with(mark) and a.poll() is None, "grader B touched grader A's kernel"
        assert Path(work_a).is_dir()
    finally:
        a.kill()
        a.wait()
        sandbox.kill_user_processes(int(uid_a))
        subprocess.run(["rm", "-rf", work_a])


def processes_with(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def test_a_grader_holds_no_file_or_thread_of_a_finished_kernel(tmp_path):
    """A long grading run starts thousands of kernels in one process: each must give back its sockets,
    contexts and threads (they leaked about 30 open files per kernel, and a run died when ZeroMQ could
    not open another socket)."""
    import threading

    def held() -> tuple[int, int]:
        return len(os.listdir("/proc/self/fd")), threading.active_count()

    run_cells(tmp_path, "print('warm-up')")
    before = held()
    for n in range(4):
        _, report, _ = run_cells(tmp_path, f"print({n})", "1 / 0" if n % 2 else "pass")
        assert report.executed_cells == 2, report.problems
    files, threads = held()
    assert files <= before[0] + 2 and threads <= before[1], (before, (files, threads))
