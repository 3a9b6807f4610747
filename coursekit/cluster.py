"""Grading on a Dask cluster: the parent's runner, the environment fingerprint, and the worker.

Clusters are authenticated: every connection is mutual TLS with the cluster's certificates
(``coursekit.cluster_tls``); a ``tcp://`` scheduler is refused. The parent (``coursekit autograde
--scheduler tls://HOST:8786``) publishes its environment fingerprint
on the scheduler, refuses to start while a connected worker differs, and submits self-contained tasks
(``coursekit.task``), each carrying that fingerprint. A worker (``coursekit worker``) checks that it can
sandbox kernels and that its fingerprint equals the published one before it joins; a task whose
fingerprint differs from the worker's is refused all the same. Faults are Dask's: a task whose worker
dies is re-run on another one; after ``allowed_failures`` + 1 such deaths it is given up (``KilledWorker``)
and the notebook is reported as not graded.

A worker never grades with a kernel that can reach the network: the degraded sandbox (no namespaces) lets
a kernel open sockets as its uid, so a worker refuses it unless a probe kernel, run exactly as student
kernels are, can reach neither a listener of ours on loopback nor the scheduler.
"""
from __future__ import annotations

import asyncio
import hashlib
import importlib.metadata
import platform
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from coursekit.cluster_tls import require_tls, security
from coursekit.course import CourseError
from coursekit.task import Outcome, Task, grade_notebook

FINGERPRINT_KEY = "coursekit-fingerprint"  # scheduler metadata: the environment the cluster grades with
PACKAGES = ("torch", "numpy", "nbgrader", "nbclient", "nbformat", "nbconvert", "ipykernel", "dask", "distributed")
_fingerprint: dict[str, str] = {}


class EnvironmentMismatch(RuntimeError):
    """A worker's environment differs from the parent's: its grades could differ."""


class SandboxHasNetwork(RuntimeError):
    """This worker's kernels could reach the network (degraded sandbox): it must not grade."""


def environment_fingerprint() -> dict[str, str]:
    """What the grades depend on besides the task: Python and package versions, and a hash of coursekit's
    own files (the judge, the sandbox, the executor)."""
    if not _fingerprint:
        _fingerprint["python"] = platform.python_version()
        for name in PACKAGES:
            try:
                _fingerprint[name] = importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                _fingerprint[name] = "missing"
        package = Path(__file__).resolve().parent
        digest = hashlib.sha256()
        for path in sorted(p for p in package.rglob("*") if p.suffix in (".py", ".json") and p.is_file()
                           and "__pycache__" not in p.parts):
            digest.update(path.relative_to(package).as_posix().encode())
            digest.update(path.read_bytes())
        _fingerprint["coursekit"] = digest.hexdigest()[:16]
    return dict(_fingerprint)


def differences(here: dict[str, str], there: dict[str, str], where: str = "the scheduler") -> str:
    """One line naming what differs ('' when nothing does)."""
    keys = sorted(set(here) | set(there))
    return ", ".join(f"{key} {here.get(key, 'missing')} here, {there.get(key, 'missing')} on {where}"
                     for key in keys if here.get(key) != there.get(key))


def run_remote(task: Task) -> Outcome:
    """What a cluster worker runs for one task: refuse it from a different environment, then grade it."""
    mismatch = differences(environment_fingerprint(), task.fingerprint, "the grading parent")
    if mismatch:
        raise EnvironmentMismatch(f"this worker's environment differs: {mismatch}")
    from distributed import get_worker

    if not task.settings.get("SandboxedExecute", {}).get("sandboxed", True):
        raise SandboxHasNetwork("the grading run asked for unsandboxed kernels (--no-sandbox): a worker never "
                                "runs those")
    problem = networked_sandbox(get_worker().scheduler.address)
    if problem:
        raise SandboxHasNetwork(problem)
    print(f"coursekit worker: grading {task.student} {task.notebook}.ipynb", file=sys.stderr, flush=True)
    return grade_notebook(task)


class ClusterRunner:
    """Runs tasks on the workers of a Dask scheduler (see ``coursekit.grading.Runner``)."""

    def __init__(self, address: str, allowed_failures: int, certificates: Path) -> None:
        from distributed import Client

        address, credentials = require_tls(address), security(certificates, "client")
        try:  # the default client: distributed.wait uses it
            self.client = Client(address, timeout=30, security=credentials)
        except (OSError, TimeoutError) as err:
            raise CourseError(f"cannot reach the Dask scheduler at {address} with the certificates in "
                              f"{certificates}: {err}") from None
        self.allowed_failures = allowed_failures
        self.fingerprint = environment_fingerprint()
        self.futures: set[Any] = set()
        self._waiting_said = False
        try:
            self._check_workers()
            self.client.set_metadata(FINGERPRINT_KEY, self.fingerprint)
            # a lambda travels by value: the scheduler need not import coursekit
            self.client.run_on_scheduler(lambda dask_scheduler: setattr(dask_scheduler, "allowed_failures",
                                                                        allowed_failures))
        except BaseException:
            self.client.close()
            raise

    def _check_workers(self) -> None:
        """Refuse to start while a connected worker grades with a different environment."""
        theirs = self.client.run(environment_fingerprint, on_error="return")
        wrong = {address: differences(fp, self.fingerprint, "this machine") if isinstance(fp, dict) else repr(fp)
                 for address, fp in theirs.items()}
        wrong = {address: why for address, why in wrong.items() if why}
        if wrong:
            lines = "; ".join(f"{address}: {why}" for address, why in sorted(wrong.items()))
            raise CourseError(f"workers of {self.client.scheduler.address} differ from this environment ({lines}); "
                              "restart them with the same coursekit and packages")

    def slots(self) -> int:
        threads = sum(self.client.nthreads().values())
        if not threads and not self._waiting_said:
            from tqdm import tqdm

            tqdm.write(f"coursekit: no workers on {self.client.scheduler.address} yet; start `coursekit worker "
                       f"{self.client.scheduler.address}` on each grading machine")
            self._waiting_said = True
        return max(1, threads)

    def submit(self, task: Task) -> Any:
        key = f"grade-{task.student}-{task.notebook}-{uuid.uuid4().hex[:8]}"
        future = self.client.submit(run_remote, task, key=key, pure=False)
        self.futures.add(future)
        return future

    def wait(self, futures: set[Any]) -> set[Any]:
        """The finished ones; none after a second, so that workers joining meanwhile get tasks soon."""
        from distributed import wait

        try:
            return set(wait(list(futures), timeout=1.0, return_when="FIRST_COMPLETED").done)
        except TimeoutError:
            return set()

    def outcome(self, future: Any, task: Task) -> Outcome:
        from distributed import KilledWorker

        self.futures.discard(future)
        try:
            return future.result()
        except KilledWorker:
            return Outcome(task.student, task.notebook, None, [
                f"{task.notebook}.ipynb: not graded: it stopped {self.allowed_failures + 1} workers"])
        except Exception as err:  # e.g. EnvironmentMismatch, or the worker could not unpickle the task
            return Outcome(task.student, task.notebook, None, [
                f"{task.notebook}.ipynb: could not be graded on the cluster ({err.__class__.__name__}: "
                f"{str(err)[:160]})"])
        finally:
            future.release()

    def close(self) -> None:
        """Cancel what is still queued or running (Ctrl-C), then disconnect."""
        if self.futures:
            self.client.cancel(list(self.futures))
            self.futures.clear()
        self.client.close()


# --- the worker -------------------------------------------------------------------------------------

def published_fingerprint(address: str, credentials: Any, wait: float) -> dict[str, str] | None:
    """The fingerprint a grading parent published on the scheduler, waiting up to ``wait`` seconds for one."""
    from distributed import Client

    with Client(address, timeout=30, set_as_default=False, security=credentials) as client:
        deadline, said = time.monotonic() + wait, False
        while True:
            published = client.get_metadata(FINGERPRINT_KEY, None)
            if published or time.monotonic() > deadline:
                return published
            if not said:
                print(f"coursekit worker: waiting for `coursekit autograde --scheduler {address}` to publish "
                      "the environment it grades with", file=sys.stderr, flush=True)
                said = True
            time.sleep(1.0)


NETWORK_PROBE = """
import socket, sys
reached = []
for host, port in [tuple(t.rsplit(":", 1)) for t in sys.argv[1:]]:
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
        reached.append(host + ":" + port)
    except OSError:
        pass
print(" ".join(reached))
"""
_probed: dict[str, str] = {}


def networked_sandbox(scheduler: str) -> str:
    """'' if student kernels here cannot reach the network; else why they can (one line).

    The full sandbox has its own empty network namespace. In degraded mode a probe runs exactly as a
    kernel would (sandbox uid, same limits) and tries to connect to a listener of ours on loopback and to
    the scheduler; reaching either means a kernel could talk to the cluster (or anything else).
    """
    import socket
    import tempfile
    from urllib.parse import urlsplit

    from coursekit import sandbox

    if sandbox.check_available(allow_degraded=True) == "full":  # whether degraded is allowed is asked elsewhere
        return ""
    if scheduler in _probed:
        return _probed[scheduler]
    target = urlsplit(scheduler)
    with socket.socket() as listener, tempfile.TemporaryDirectory(prefix="coursekit-probe-") as workdir:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        targets = [f"127.0.0.1:{listener.getsockname()[1]}", f"{target.hostname}:{target.port}"]
        result = sandbox.run([sys.executable, "-I", "-c", NETWORK_PROBE, *targets], workdir=workdir,
                             uid=sandbox.claim_uid(), limits=sandbox.Limits(wall_seconds=30), allow_degraded=True)
    reached = result.stdout.decode(errors="replace").strip()
    if result.returncode != 0:
        problem = f"the network probe kernel failed ({result.returncode}): {result.stderr.decode(errors='replace')[-200:]}"
    elif reached:
        problem = f"a kernel in the degraded sandbox reached {reached}"
    else:
        problem = ""
    _probed[scheduler] = problem
    return problem


def serve(address: str, certificates: Path | str, *, name: str | None = None, wait: float = 86400.0) -> int:
    """Check this machine (sandbox, network, certificates, environment), then run one Dask worker of one
    thread until stopped."""
    from coursekit import sandbox

    try:
        address, credentials = require_tls(address), security(certificates, "worker")
        sandbox.check_available()
    except CourseError as err:
        print(f"coursekit worker: refused: {err}", file=sys.stderr)
        return 2
    except sandbox.SandboxUnavailable as err:
        print(f"coursekit worker: refused: cannot sandbox student kernels here ({err}); run it as root on Linux",
              file=sys.stderr)
        return 2
    network = networked_sandbox(address)
    if network:
        print(f"coursekit worker: refused: student kernels here could reach the network ({network}); a worker "
              "grades only with the full sandbox, or with a degraded one whose kernels have no network "
              "(e.g. a firewall rule for the sandbox uids)", file=sys.stderr)
        return 2
    try:
        published = published_fingerprint(address, credentials, wait)
    except (OSError, TimeoutError) as err:
        print(f"coursekit worker: cannot reach the Dask scheduler at {address}: {err}", file=sys.stderr)
        return 2
    if published is None:
        print(f"coursekit worker: no grading run published its environment on {address} within {wait:.0f} s",
              file=sys.stderr)
        return 2
    mismatch = differences(environment_fingerprint(), published)
    if mismatch:
        print(f"coursekit worker: refused: this machine's environment differs from the one {address} grades "
              f"with ({mismatch}); install the same coursekit and packages", file=sys.stderr)
        return 2
    print(f"coursekit worker: joining {address}", file=sys.stderr, flush=True)
    asyncio.run(_run_worker(address, credentials, name))
    return 0


async def _run_worker(address: str, credentials: Any, name: str | None) -> None:
    from distributed import Worker

    # one thread: a process claims one sandbox uid, and runs one kernel at a time with it
    with _health_only_http():
        async with Worker(address, nthreads=1, name=name, security=credentials, protocol="tls",
                          dashboard_address="127.0.0.1:0") as worker:
            await worker.finished()


async def _run_scheduler(host: str, port: int, credentials: Any) -> None:
    from distributed import Scheduler

    with _health_only_http():
        async with Scheduler(host=host, port=port, protocol="tls", security=credentials, dashboard=False,
                             dashboard_address="127.0.0.1:0") as scheduler:
            print(f"coursekit cluster: Scheduler at {scheduler.address}", file=sys.stderr, flush=True)
            await scheduler.finished()


def _health_only_http():
    """Dask's plain-HTTP side server (no TLS, no authentication) serves only /health, on loopback."""
    import dask

    return dask.config.set({"distributed.scheduler.http.routes": ["distributed.http.health"],
                            "distributed.worker.http.routes": ["distributed.http.health"]})


def run_scheduler(certificates: Path | str, host: str, port: int) -> int:
    """Run a Dask scheduler that accepts only mutual-TLS connections with the cluster's certificates."""
    try:
        credentials = security(certificates, "scheduler")
    except CourseError as err:
        print(f"coursekit cluster: refused: {err}", file=sys.stderr)
        return 2
    asyncio.run(_run_scheduler(host, port, credentials))
    return 0
