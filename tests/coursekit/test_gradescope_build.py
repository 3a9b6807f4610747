"""setup.sh for real, in a fresh root file system, then grading in fresh containers of the README's size.

What it does (root, Linux; slow: run it alone, see docs/benchmarks.md for its time):
1. a fresh Debian 12 root file system, ``debootstrap --variant=minbase`` from the package registry (cached
   under ``$COURSEKIT_GRADESCOPE_CACHE``, default /var/cache/coursekit, outside the repository; Gradescope's
   default base is Ubuntu 22.04, which this machine cannot download);
2. the image build: the zip unpacked in /autograder/source, then ``bash setup.sh`` as root, chrooted into
   an overlay on that root (its upper layer is the image; nothing touches the host), in private mount, PID,
   IPC and UTS namespaces. Deviations, forced by a machine that reaches only PyPI and Debian's archive:
   - where this machine holds the torch CPU wheel (/opt/wheels, bound read-only), ``COURSEKIT_FIND_LINKS``
     points setup.sh's pip at it and ``COURSEKIT_TORCH_INDEX`` at PyPI, because download.pytorch.org is
     unreachable here (the lock's sha256 of torch is that wheel's; every file is still hash-checked);
     elsewhere setup.sh runs unchanged;
   - ``PIP_CERT`` is the host's CA bundle (this machine reaches PyPI through a TLS proxy); it is removed
     from the image afterwards;
3. per submission, a fresh overlay on the image, new mount/PID/IPC/UTS/cgroup namespaces, Docker's default
   capabilities (no CAP_SYS_ADMIN, so the kit's sandbox runs degraded, as in a Docker container), and a
   cgroup with the README's limits for the mode; ``/autograder/run_autograder`` under Gradescope's timeout.
   The sandbox's uid locks (/run/coursekit/uids) are the host's, bound in: the container shares this
   host's users, so its kernels must not take a uid a host run holds.

Log mode grades hw6's reference submission log, an empty upload and a truncated log; notebooks mode
grades hw6's reference solution (full autograded points), its untouched release (0) and truncated
notebooks (0), each within the README's size for the mode (no out-of-memory kill, inside the timeout).
Both zips have the same setup.sh and lock (checked), so one image build serves both: each case gets its
own zip's files.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from coursekit.gradescope.build import CONTAINER
from coursekit.gradescope.emulate import Cgroup, notebook_upload
from coursekit.testing.submission_logs import reference_submission_log
from tests.support.gradescope import assert_reads_right, expected_max

# About 26 minutes (1,537 s on 2026-12-01 with hw6 in notebooks mode), alone in one xdist worker
# (docs/benchmarks.md, "Gradescope image build").
pytestmark = [pytest.mark.slow, pytest.mark.gradescope_build, pytest.mark.xdist_group("gradescope_build"),
              pytest.mark.timeout(3600)]

REPO_ROOT = Path(__file__).resolve().parents[2]
MIRROR = Path(os.environ.get("HW6_DATA_MIRROR") or next(
    (p for p in (REPO_ROOT / "data" / "names", REPO_ROOT.parent / "shared" / "data" / "names") if p.is_dir()),
    REPO_ROOT / "data" / "names"))
CACHE = Path(os.environ.get("COURSEKIT_GRADESCOPE_CACHE", "/var/cache/coursekit"))
SUITE, ARCHIVE = "bookworm", os.environ.get("COURSEKIT_DEBIAN_MIRROR", "http://deb.debian.org/debian")
WHEELS = Path(os.environ.get("COURSEKIT_TEST_WHEELS", "/opt/wheels"))  # holds torch-2.13.0+cpu here
HOST_CA = Path(os.environ.get("PIP_CERT", "/etc/ssl/certs/ca-certificates.crt"))
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DOCKER_CAPS = ("-all,+chown,+dac_override,+fowner,+fsetid,+kill,+setgid,+setuid,+setpcap,+net_bind_service,"
               "+net_raw,+sys_chroot,+mknod,+audit_write,+setfcap")

if os.geteuid() != 0 or not sys.platform.startswith("linux"):  # pragma: no cover
    pytest.skip("needs root on Linux (namespaces, overlays, cgroups)", allow_module_level=True)
for tool in ("unshare", "setpriv", "chroot", "mount", "apt-get", "dpkg"):
    if shutil.which(tool) is None:  # pragma: no cover
        pytest.skip(f"needs {tool}", allow_module_level=True)

# Inside the namespaces: a Docker-like container file system on the overlay $1 (lower $2, upper $3, work $4)
CONTAINER_FS = r'''
set -e
m=$1
mount -t overlay overlay -o "lowerdir=$2,upperdir=$3,workdir=$4" "$m"
mount -t proc proc "$m/proc"
mount -t sysfs -o ro sysfs "$m/sys"
mount -t tmpfs -o mode=755,size=65536k,nosuid tmpfs "$m/dev"
for n in null zero full random urandom tty; do touch "$m/dev/$n"; mount --bind "/dev/$n" "$m/dev/$n"; done
mkdir -p "$m/dev/pts" "$m/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts "$m/dev/pts"
ln -s pts/ptmx "$m/dev/ptmx"
mount -t tmpfs -o size=64m,mode=1777,nosuid,nodev shm "$m/dev/shm"
ln -s /proc/self/fd "$m/dev/fd"
for n in 0:stdin 1:stdout 2:stderr; do ln -s "/proc/self/fd/${n%%:*}" "$m/dev/${n##*:}"; done
'''

IMAGE_BUILD = CONTAINER_FS + r'''
mkdir -p "$m/mnt/wheels" && mount --bind -o ro "$5" "$m/mnt/wheels"
torch_env=()
[ -n "$8" ] && torch_env=(COURSEKIT_FIND_LINKS=/mnt/wheels COURSEKIT_TORCH_INDEX=https://pypi.org/simple)
mkdir -p "$m/run/coursekit/uids" && mount --bind /run/coursekit/uids "$m/run/coursekit/uids"
set +e
chroot "$m" /usr/bin/env -i HOME=/root PATH="$6" LANG=C.UTF-8 TERM=dumb PIP_CERT=/etc/ssl/host-ca.crt "${torch_env[@]}" \
  /bin/bash -c 'cd /autograder/source && bash ./setup.sh'
echo $? > "$7"
'''

CASE = CONTAINER_FS + r'''
mkdir -p "$m/sys/fs/cgroup" && mount -t tmpfs -o size=1m tmpfs "$m/sys/fs/cgroup"
mkdir "$m/sys/fs/cgroup/memory" && mount -t cgroup -o ro,memory cgroup "$m/sys/fs/cgroup/memory"
mkdir -p "$m/run/coursekit/uids" && mount --bind /run/coursekit/uids "$m/run/coursekit/uids"
exec setpriv --bounding-set "$5" --inh-caps -all chroot "$m" /usr/bin/env -i HOME=/root PATH="$6" LANG=C.UTF-8 \
  /bin/bash -c "cd /autograder && exec timeout -s KILL $7 /autograder/run_autograder"
'''


# --- the base, the image, a container ------------------------------------------------------------------

def debootstrap_base() -> Path:
    """A minimal Debian root file system from the package registry, made once and cached."""
    base = CACHE / f"base-{SUITE}"
    if (base / "usr" / "bin" / "apt-get").is_file():
        return base
    tools = CACHE / "tools"
    program = shutil.which("debootstrap")
    env = dict(os.environ)
    if program is None:  # unpack Debian's debootstrap package here rather than install it on the host
        tools.mkdir(parents=True, exist_ok=True)
        subprocess.run(["apt-get", "download", "debootstrap"], cwd=tools, check=True, capture_output=True)
        deb = sorted(tools.glob("debootstrap_*.deb"))[-1]
        subprocess.run(["dpkg", "-x", str(deb), str(tools / "db")], check=True)
        program, env["DEBOOTSTRAP_DIR"] = str(tools / "db/usr/sbin/debootstrap"), str(tools / "db/usr/share/debootstrap")
    partial = CACHE / f"base-{SUITE}.part"
    shutil.rmtree(partial, ignore_errors=True)
    subprocess.run(["nice", "-n", "10", program, "--variant=minbase", SUITE, str(partial), ARCHIVE],
                   check=True, env=env, capture_output=True, timeout=3600)
    partial.rename(base)
    return base


def unpack_zip(zip_path: Path, autograder: Path) -> None:
    """Gradescope's unpacking: the zip in /autograder/source (modes kept), run_autograder copied up."""
    source = autograder / "source"
    source.mkdir(parents=True)
    with zipfile.ZipFile(zip_path) as zf:
        for info in zf.infolist():
            dest = source / info.filename
            dest.parent.mkdir(parents=True, exist_ok=True)
            if not info.is_dir():
                dest.write_bytes(zf.read(info))
                os.chmod(dest, (info.external_attr >> 16) & 0o777 or 0o644)
    shutil.copy2(source / "run_autograder", autograder / "run_autograder")


def layer(root: Path) -> tuple[Path, Path, Path]:
    upper, work, merged = root / "upper", root / "work", root / "merged"
    for folder in (upper, work, merged):
        folder.mkdir(parents=True)
    return upper, work, merged


def local_torch() -> bool:
    """Whether this machine holds the torch CPU wheel (then setup.sh is pointed at it: see the docstring)."""
    return any(WHEELS.glob("torch-2.13.0+cpu-*.whl"))


def disk_mb(path: Path) -> float:
    return int(subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True).stdout.split()[0]) / 1e6


def build_image(base: Path, zip_path: Path, work: Path) -> dict:
    """Run setup.sh for real in an overlay on ``base``; the overlay's upper folder is the image."""
    upper, scratch, merged = layer(work)
    unpack_zip(zip_path, upper / "autograder")
    (upper / "etc" / "ssl").mkdir(parents=True)
    shutil.copyfile(HOST_CA, upper / "etc" / "ssl" / "host-ca.crt")
    shutil.copyfile("/etc/resolv.conf", upper / "etc" / "resolv.conf")
    rc_file, log = work / "setup.rc", work / "setup.log"
    started = time.monotonic()
    with open(log, "w") as out:
        subprocess.run(["nice", "-n", "10", "unshare", "--mount", "--propagation", "private", "--pid", "--fork",
                        "--ipc", "--uts", "bash", "-c", IMAGE_BUILD, "image", str(merged), str(base), str(upper),
                        str(scratch), str(WHEELS), PATH, str(rc_file), "1" if local_torch() else ""],
                       stdout=out, stderr=subprocess.STDOUT, timeout=3600, check=False)
    seconds = time.monotonic() - started
    (upper / "etc" / "ssl" / "host-ca.crt").unlink()
    shutil.rmtree(upper / "mnt", ignore_errors=True)
    shutil.rmtree(upper / "run" / "coursekit", ignore_errors=True)
    rc = rc_file.read_text().strip() if rc_file.is_file() else "no exit status"
    facts = {"rc": rc, "seconds": seconds, "log": log.read_text(errors="replace"), "upper": upper,
             "image_mb": disk_mb(upper), "venv_mb": disk_mb(upper / "opt" / "coursekit" / "venv")
             if (upper / "opt" / "coursekit" / "venv").is_dir() else 0.0}
    facts["apt_leftovers"] = sorted(str(p.relative_to(upper)) for folder in ("var/cache/apt/archives", "var/lib/apt/lists")
                                    for p in (upper / folder).glob("*") if p.is_file() and p.name != "lock")
    shutil.rmtree(upper / "autograder")  # each case unpacks its own zip (same setup.sh and lock)
    return facts


def run_case(base: Path, image: Path, zip_path: Path, files: dict[str, bytes], work: Path, mode: str) -> dict:
    """One submission in a fresh container of the README's size for ``mode``."""
    size = CONTAINER[mode]
    upper, scratch, merged = layer(work)
    unpack_zip(zip_path, upper / "autograder")
    for folder in ("submission", "results"):
        (upper / "autograder" / folder).mkdir()
    for name, content in files.items():
        (upper / "autograder" / "submission" / name).write_bytes(content)
    (upper / "autograder" / "submission_metadata.json").write_text(json.dumps(
        {"created_at": "2026-11-20T13:45:01.000000-08:00", "users": [{"name": "Student"}], "previous_submissions": []}))
    group = Cgroup(f"coursekit-gs-{os.getpid()}-{work.name}", size["memory_mb"], size["cpus"], sample=True)
    started = time.monotonic()
    try:
        done = subprocess.run(["unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--ipc", "--uts",
                               "--cgroup", "bash", "-c", CASE, "case", str(merged), f"{image}:{base}", str(upper),
                               str(scratch), DOCKER_CAPS, PATH, str(size["timeout_seconds"])],
                              capture_output=True, text=True, timeout=size["timeout_seconds"] + 120,
                              preexec_fn=group.enter, check=False)
        wall = time.monotonic() - started
        stats = group.stats()
    finally:
        group.remove()
    results_file = upper / "autograder" / "results" / "results.json"
    results = json.loads(results_file.read_text()) if results_file.is_file() else None
    return {"results": results, "stdout": done.stdout + done.stderr, "wall_s": wall, **stats}


# --- the test ------------------------------------------------------------------------------------------------

def build_zip(course: Path, mode: str) -> subprocess.Popen:
    """Start `coursekit gradescope hw6 --mode MODE` on ``course``, writing hw6-MODE.zip beside it."""
    with open(course.parent / f"build-{mode}.log", "w") as log:
        return subprocess.Popen([sys.executable, "-m", "coursekit", "--course-dir", str(course), "gradescope", "hw6",
                                 "--mode", mode, "--out", str(course.parent / f"hw6-{mode}.zip")], stdout=log,
                                stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})


def finished(course: Path, mode: str, process: subprocess.Popen, timeout: float = 1800) -> Path:
    """The zip ``build_zip`` started, once its build has succeeded."""
    assert process.wait(timeout=timeout) == 0, (course.parent / f"build-{mode}.log").read_text()[-3000:]
    return course.parent / f"hw6-{mode}.zip"


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    """A copy of this course (release included) with the verified surname data."""
    if not MIRROR.is_dir():  # pragma: no cover
        pytest.skip("needs the verified surname data (HW6_DATA_MIRROR)")
    course = tmp_path_factory.mktemp("hw6") / "course"
    shutil.copytree(REPO_ROOT, course, ignore=shutil.ignore_patterns(
        ".git", ".venv", "autograded", "submitted", "feedback", "reports", "gradebook.db", ".coursekit", "data",
        "__pycache__", "gradescope"))
    shutil.copytree(MIRROR, course / "data" / "names")
    return course


def test_setup_builds_a_fresh_image_that_grades(course, tmp_path):
    # notebooks mode grades the reference once while it builds (minutes of CPU): it runs while setup.sh
    # (mostly downloads and unpacking) builds the image from the log-mode zip, which has the same setup.sh
    zips = {"course": course}
    zips["log"] = finished(course, "log", build_zip(course, "log"), timeout=600)
    notebooks_build = build_zip(course, "notebooks")
    started = time.monotonic()
    try:
        base = debootstrap_base()
        image = build_image(base, zips["log"], tmp_path / "image")
    finally:
        zips["notebooks"] = finished(course, "notebooks", notebooks_build)
    print(f"\nimage and notebooks-mode zip (built side by side) ready after {time.monotonic() - started:.0f} s")
    read = {mode: zipfile.ZipFile(zips[mode]) for mode in ("log", "notebooks")}
    for name in ("setup.sh", "requirements.lock", "run_autograder"):  # one image build serves both zips
        assert read["log"].read(name) == read["notebooks"].read(name), name
    print(f"setup.sh: exit {image['rc']} in {image['seconds']:.0f} s; image layer {image['image_mb']:.0f} MB "
          f"(venv {image['venv_mb']:.0f} MB)")
    assert image["rc"] == "0", image["log"][-4000:]
    assert "image ready: torch 2.13.0+cpu" in image["log"], image["log"][-2000:]
    assert image["apt_leftovers"] == [], image["apt_leftovers"][:5]
    site = image["upper"] / "opt" / "coursekit" / "venv" / "lib" / "python3.11" / "site-packages"
    installed = {p.name.split("-")[0].lower() for p in site.glob("*.dist-info")}
    assert not {"jupyterlab", "notebook", "dask", "distributed"} & installed
    assert image["image_mb"] < 1500

    honest = json.dumps(reference_submission_log()).encode()
    manifests = {mode: json.loads(read[mode].read("gradescope.json")) for mode in read}
    autograded = expected_max(manifests["notebooks"])  # the reference earns all of it; written answers are not rows
    reference = notebook_upload(zips["course"], "hw6", filled=True)
    cases = [("log", "reference", {"submission_log.json": honest}, 5.0),
             ("log", "empty", {}, 0.0),
             ("log", "truncated", {"submission_log.json": honest[: len(honest) // 2]}, 0.0),
             ("notebooks", "reference", reference, autograded),
             ("notebooks", "release", notebook_upload(zips["course"], "hw6", filled=False), 0.0),
             ("notebooks", "truncated", {k: v[:200] for k, v in reference.items()}, 0.0)]
    for mode, name, files, expected in cases:
        case = run_case(base, image["upper"], zips[mode], files, tmp_path / f"{mode}-{name}", mode)
        results = case["results"]
        size = CONTAINER[mode]
        kinds = ", ".join(f"{kind} {mb:.0f}" for kind, mb in case["rss_mb"].items() if mb >= 20)
        print(f"{mode:9} {name:9} score {results and results['score']} (expected {expected:g}); "
              f"{case['wall_s']:.0f} s wall, {case['cpu_s']:.0f} CPU-s, peak {case['peak_mb']:.0f} of "
              f"{size['memory_mb']} MB, {size['cpus']} CPU, OOM kills {case['oom_kills']}; "
              f"largest RSS sum {case['rss_sum_mb']:.0f} MB ({kinds})", flush=True)
        assert results is not None, case["stdout"][-3000:]
        assert_reads_right(results, manifests[mode], case["stdout"])
        assert results["score"] == expected, (results["output"], case["stdout"][-3000:])
        assert case["oom_kills"] == 0, f"{mode} {name}: out of memory in a {size['memory_mb']} MB container"
        assert case["wall_s"] < size["timeout_seconds"], f"{mode} {name}: {case['wall_s']:.0f} s"
        assert "did not finish within" not in " ".join(results["extra_data"].get("instructor_notes", []))
        if mode == "notebooks":
            notes = " ".join(results["extra_data"]["instructor_notes"])
            assert f"memory limit {size['memory_mb'] / 1024:.1f} GB" in notes or name == "truncated", notes
