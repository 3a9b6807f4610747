"""Grading on a Dask cluster: a real `coursekit cluster scheduler` and `coursekit worker` processes on
127.0.0.1, all speaking mutual TLS with certificates from `coursekit cluster certs`.

Each worker is its own process tree (own session), started in its own temporary folder outside the
course folder. The tests compare with serial runs, kill workers mid-task (SIGKILL to the whole tree),
start a worker from a modified copy of coursekit, connect without the cluster's certificate, and start a
worker whose sandbox would be the degraded one (kernels with network).
"""
from __future__ import annotations

import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell

from coursekit import grading
from coursekit.cluster import (FINGERPRINT_KEY, EnvironmentMismatch, SandboxHasNetwork, environment_fingerprint,
                               run_remote)
from coursekit.cluster_tls import generate_certificates, security
from coursekit.course import Course, CourseError
from coursekit.grading import autograde, read_scores
from coursekit.samples import fill_answers
from coursekit.testing.courses import home_course
from coursekit.testing.tiny_course import ASSIGNMENT, make_course

REPO_ROOT = home_course().root
pytestmark = pytest.mark.xdist_group("cluster")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A TLS scheduler and workers, each in its own session; stops them all."""

    def __init__(self, root: Path) -> None:
        self.root, self.processes, self.workers = root, [], {}
        self.certificates = root / "certs"
        generate_certificates(self.certificates)
        port = free_port()
        self.address = f"tls://127.0.0.1:{port}"
        folder = root / "scheduler"
        folder.mkdir()
        self.start([sys.executable, "-m", "coursekit", "cluster", "scheduler", str(self.certificates),
                    "--host", "127.0.0.1", "--port", str(port)], folder, folder / "log")
        deadline = time.monotonic() + 60
        while "Scheduler at" not in (folder / "log").read_text():
            assert time.monotonic() < deadline, (folder / "log").read_text()
            time.sleep(0.2)

    def client(self):
        from distributed import Client

        return Client(self.address, timeout=30, set_as_default=False, security=security(self.certificates, "client"))

    def start(self, command: list[str], cwd: Path, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
        process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=open(log, "w"),
                                   env=env, start_new_session=True)
        self.processes.append(process)
        return process

    def start_worker(self, name: str, pythonpath: Path = REPO_ROOT, env: dict[str, str] | None = None
                     ) -> subprocess.Popen:
        folder = self.root / name
        folder.mkdir()
        env = {**os.environ, "PYTHONPATH": str(pythonpath), **(env or {})}
        process = self.start([sys.executable, "-m", "coursekit", "worker", self.address, "--name", name,
                              "--certificates", str(self.certificates)], folder, folder / "log", env)
        self.workers[name] = process
        return process

    def log(self, name: str) -> str:
        return (self.root / name / "log").read_text()

    def kill(self, name: str) -> None:
        """SIGKILL a worker's whole process tree (a machine that disappears)."""
        os.killpg(self.workers.pop(name).pid, signal.SIGKILL)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def grading_line(student: str, notebook: str) -> str:
    return f"coursekit worker: grading {student} {notebook}.ipynb"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    cluster = Cluster(tmp_path_factory.mktemp("machines"))
    try:
        cluster.start_worker("worker-a")
        cluster.start_worker("worker-b")
        yield cluster
    finally:
        cluster.stop()


def give_certificates(course: Course, cluster: Cluster) -> None:
    """The instructor's side of the cluster's certificates, where autograde looks (.coursekit/cluster)."""
    folder = course.root / ".coursekit" / "cluster"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    for name in ("ca.pem", "client.pem", "client.key"):
        shutil.copy2(cluster.certificates / name, folder / name)


@pytest.fixture(scope="module")
def course(tmp_path_factory, cluster) -> Course:
    course = Course.open(make_course(tmp_path_factory.mktemp("cluster") / "course"))
    course.generate_release(ASSIGNMENT)
    give_certificates(course, cluster)
    return course


def submit(course: Course, student: str, filled: bool = True, sleep: float = 0.0,
           only: str | None = None) -> None:
    folder = course.folder("submitted", student, ASSIGNMENT)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for name in course.source_notebooks(ASSIGNMENT):
        if only and name != only:
            continue
        nb = nbformat.read(str(course.folder("release", ASSIGNMENT, f"{name}.ipynb")), as_version=4)
        if filled:
            nb = fill_answers(nb, nbformat.read(str(course.folder("source", ASSIGNMENT, f"{name}.ipynb")), as_version=4))
        if sleep and name == "adder":
            nb.cells.insert(0, new_code_cell(f"import time\ntime.sleep({sleep})"))
        nbformat.write(nb, str(folder / f"{name}.ipynb"))
    (folder / "notes.txt").write_text(f"{student}'s own file\n")


def graded(course: Course, students: list[str]) -> dict[str, tuple]:
    """Per student: scores per notebook and the test cells' outputs of the graded notebooks."""
    out = {}
    for student in students:
        cells = {}
        for path in sorted(course.folder("autograded", student, ASSIGNMENT).glob("*.ipynb")):
            nb = nbformat.read(str(path), as_version=4)
            cells[path.name] = [c.get("outputs") for c in nb.cells if c.cell_type == "code"]
        scores = {nb.name: (nb.code_score, nb.max_code_score) for nb in read_scores(course, ASSIGNMENT, student)}
        out[student] = (scores, cells)
    return out


def in_background(target) -> threading.Thread:
    errors: list[BaseException] = []

    def run():
        try:
            target()
        except BaseException as err:  # reported by the test
            errors.append(err)

    thread = threading.Thread(target=run, daemon=True)
    thread.errors = errors
    thread.start()
    return thread


def wait_for(condition, seconds: float = 120.0, what: str = "") -> object:
    deadline = time.monotonic() + seconds
    while not (found := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
    return found


def test_cluster_grades_like_a_serial_run_and_tasks_carry_no_course_paths(course, cluster, monkeypatch):
    students = ["student_alpha", "student_beta"]
    submit(course, "student_alpha")
    submit(course, "student_beta", filled=False)
    serial = {r.student: (r.status, r.reasons) for r in autograde(course, ASSIGNMENT, students)}
    serial_graded = graded(course, students)

    tasks = []
    make = grading.TaskMaker.__call__
    monkeypatch.setattr(grading.TaskMaker, "__call__", lambda self, *a: tasks.append(make(self, *a)) or tasks[-1])
    clustered = {r.student: (r.status, r.reasons) for r in autograde(course, ASSIGNMENT, students,
                                                                     scheduler=cluster.address)}
    assert clustered == serial
    assert graded(course, students) == serial_graded
    assert serial_graded["student_alpha"][0] == {"adder": (2.0, 2.0), "squares": (1.0, 1.0)}
    assert serial_graded["student_beta"][0] == {"adder": (0.0, 2.0), "squares": (0.0, 1.0)}
    assert any(grading_line("student_alpha", "adder") in cluster.log(w) for w in cluster.workers)

    # what travelled: the student's own file, no path into the course except the read-only data folders
    assert len(tasks) == 4
    read_only = course.config.SandboxedExecute.read_only
    for task in tasks:
        assert task.files["notes.txt"] == f"{task.student}'s own file\n".encode()
        assert "hw6utils/checks.py" in task.instructor
        blob = pickle.dumps(task)
        for path in read_only:
            blob = blob.replace(str(path).encode(), b"")
        assert str(course.root).encode() not in blob
        other = "student_beta" if task.student == "student_alpha" else "student_alpha"
        assert other.encode() not in blob


def test_killed_worker_task_reruns_and_every_notebook_is_saved_once(course, cluster, monkeypatch):
    students = ["student_alpha", "student_sleepy"]
    submit(course, "student_alpha")  # each test stands alone: pytest may run them in any order
    submit(course, "student_sleepy", sleep=6)
    saved: list[tuple[str, str]] = []
    save = grading.save_grades
    monkeypatch.setattr(grading, "save_grades",
                        lambda course_, config, assignment, outcome, after:
                        saved.append((outcome.student, outcome.notebook)) or save(course_, config, assignment,
                                                                                  outcome, after))

    def kill_the_sleeper():
        victim = wait_for(lambda: next((w for w in cluster.workers
                                        if grading_line("student_sleepy", "adder") in cluster.log(w)), None),
                          what="the sleepy notebook to start")
        time.sleep(1.0)
        cluster.kill(victim)
        cluster.start_worker(f"{victim}-replacement")

    killer = in_background(kill_the_sleeper)
    results = {r.student: r for r in autograde(course, ASSIGNMENT, students, scheduler=cluster.address)}
    killer.join(60)
    assert not killer.errors
    assert sorted(saved) == sorted({(s, nb) for s in students for nb in ("adder", "squares")})
    assert results["student_sleepy"].status == "graded", results["student_sleepy"].reasons
    assert graded(course, ["student_sleepy"])["student_sleepy"][0] == {"adder": (2.0, 2.0), "squares": (1.0, 1.0)}
    logs = "".join(cluster.log(w) for w in os.listdir(cluster.root) if w.startswith("worker"))
    assert logs.count(grading_line("student_sleepy", "adder")) == 2  # once on the killed worker, once again


def test_submission_that_stops_workers_fails_with_a_reason_and_the_run_goes_on(course, cluster, monkeypatch):
    monkeypatch.setitem(course.config, "ParallelGrading", type(course.config)({"allowed_failures": 1}))
    submit(course, "student_alpha")
    submit(course, "student_poison", sleep=300, only="adder")
    marker = grading_line("student_poison", "adder")

    def kill_whoever_runs_it():
        for attempt in (1, 2):
            victim = wait_for(lambda: next((w for w in cluster.workers
                                            if marker in cluster.log(w)), None),
                              what=f"attempt {attempt} of the poison notebook")
            cluster.kill(victim)
            cluster.start_worker(f"poisoned-{attempt}")

    killer = in_background(kill_whoever_runs_it)
    # the honest student's notebooks go out first, so no worker that is killed holds them twice
    results = {r.student: r for r in autograde(course, ASSIGNMENT, ["student_alpha", "student_poison"],
                                               scheduler=cluster.address)}
    killer.join(60)
    assert not killer.errors
    poison = results["student_poison"]
    assert poison.status == "failed"
    assert "adder.ipynb: not graded: it stopped 2 workers" in poison.reasons
    assert results["student_alpha"].status == "graded"
    assert graded(course, ["student_alpha"])["student_alpha"][0] == {"adder": (2.0, 2.0), "squares": (1.0, 1.0)}


def test_worker_with_modified_coursekit_is_refused(cluster, tmp_path):
    with cluster.client() as client:
        client.set_metadata(FINGERPRINT_KEY, environment_fingerprint())  # as a grading run does
        copy = tmp_path / "modified"
        shutil.copytree(REPO_ROOT / "coursekit", copy / "coursekit", ignore=shutil.ignore_patterns("__pycache__"))
        with open(copy / "coursekit" / "verdicts.py", "a") as f:
            f.write("\n# a locally patched judge\n")
        worker = cluster.start_worker("worker-modified", pythonpath=copy)
        assert worker.wait(timeout=120) == 2
        log = cluster.log("worker-modified")
        assert "coursekit worker: refused: this machine's environment differs" in log
        assert "coursekit " in log.split("differs", 1)[1]
        names = {w.get("name") for w in client.scheduler_info()["workers"].values()}
        assert "worker-modified" not in names and names  # the others are there, this one never joined


def test_task_from_another_environment_is_refused_by_the_worker_code():
    task = grading.Task("tiny", "s", "adder", "{}", {}, {}, "hw6utils", grading.Config(), [], {},
                        fingerprint={**environment_fingerprint(), "torch": "0.0.1"})
    with pytest.raises(EnvironmentMismatch, match="torch"):
        run_remote(task)


def test_clients_without_the_clusters_certificate_are_refused(cluster, course, tmp_path):
    import ssl

    from distributed import Client

    port = int(cluster.address.rsplit(":", 1)[1])
    with cluster.client() as client:  # the cluster's own certificate works
        assert client.scheduler_info()["address"] == cluster.address
    with pytest.raises((OSError, TimeoutError)):  # plain TCP, as the degraded kernel did on loopback
        Client(f"tcp://127.0.0.1:{port}", timeout=5, set_as_default=False)
    other = tmp_path / "attacker"
    generate_certificates(other)  # a well-formed certificate from another CA
    with pytest.raises((OSError, TimeoutError)):
        Client(cluster.address, timeout=5, set_as_default=False, security=security(other, "client"))
    context = ssl.create_default_context(cafile=str(cluster.certificates / "ca.pem"))
    context.check_hostname = False  # TLS that trusts the scheduler but shows no certificate of its own
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with pytest.raises((ssl.SSLError, ConnectionError)):
            with context.wrap_socket(raw) as tls:
                tls.sendall(b"\0" * 64)
                assert tls.recv(64) == b"", "the scheduler answered a client without a certificate"
                raise ConnectionError("closed by the scheduler")
    with pytest.raises(CourseError, match="tls://"):  # the kit never talks to a plain scheduler
        autograde(course, ASSIGNMENT, ["student_alpha"], scheduler=f"tcp://127.0.0.1:{port}")


def test_worker_refuses_the_degraded_sandbox_when_kernels_have_network(cluster):
    worker = cluster.start_worker("worker-degraded", env={"COURSEKIT_SANDBOX_NO_NAMESPACES": "1",
                                                          "COURSEKIT_SANDBOX_ALLOW_DEGRADED": "1"})
    assert worker.wait(timeout=120) == 2
    log = cluster.log("worker-degraded")
    assert "coursekit worker: refused: student kernels here could reach the network" in log
    assert "reached 127.0.0.1:" in log  # the probe kernel, run as a student kernel is, got through
    with cluster.client() as client:
        assert "worker-degraded" not in {w.get("name") for w in client.scheduler_info()["workers"].values()}


def test_task_asking_for_unsandboxed_kernels_is_refused_by_the_worker_code():
    settings = grading.Config({"SandboxedExecute": {"sandboxed": False}})  # `autograde --no-sandbox --scheduler`
    task = grading.Task("tiny", "s", "adder", "{}", {}, {}, "hw6utils", settings, [], {},
                        fingerprint=environment_fingerprint())
    with pytest.raises(SandboxHasNetwork, match="unsandboxed"):
        run_remote(task)


@pytest.mark.slow
@pytest.mark.timeout(1800)  # may first wait for another worker to grade the session's hw6 course
def test_hw6_samples_grade_alike_on_the_cluster(cluster, graded_hw6_built, tmp_path):
    """The session's graded hw6 sample course (graded by `coursekit demo` in a clone, tests/hw6/sample_course.py)
    graded again on the cluster, in a copy: the same results and the same gradebook."""
    from tests.hw6.sample_course import copy_graded_hw6

    built, samples = graded_hw6_built
    local_results = samples.results
    course = copy_graded_hw6(built, tmp_path / "hw6")
    give_certificates(course, cluster)
    students = ["reference", "untouched"]
    local = {s: (local_results[s].status, local_results[s].reasons, local_results[s].notebooks) for s in students}
    local_scores = {s: read_scores(course, "hw6", s) for s in students}
    clustered = {r.student: (r.status, r.reasons, r.notebooks)
                 for r in autograde(course, "hw6", students, scheduler=cluster.address)}
    assert clustered == local
    assert {s: read_scores(course, "hw6", s) for s in students} == local_scores
    assert all(nb.code_score == nb.max_code_score for nb in local["reference"][2])
