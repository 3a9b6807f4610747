"""Benchmark: the Gradescope autograder (run_autograder in an emulated container) against the kit's own
commands on the same submission, side by side in one run.

Part 1 (log mode): `run_autograder` for the reference student's submission_log.json against
`coursekit grade-log` of the same file.
Part 2 (notebooks mode, hw6): `run_autograder` for the reference student's six notebooks against
`coursekit autograde` of the same submission (reference records already cached on both sides, as they
are on Gradescope: computed once when the zip is built). `--skip-notebooks` leaves part 2 out.
Part 3 (`--containers`, instead of parts 1 and 2): notebooks mode of hw6 in containers of given sizes,
each run in a cgroup of this machine (memory limit without swap, CPU quota: what Gradescope's container
settings are): the reference submission and an untouched release; wall time, CPU-seconds, the cgroup's
peak memory (page cache included), out-of-memory kills, the largest resident memory of each kind of
process (sampled every 0.25 s) and the score. `--zip` reuses a built notebooks-mode zip.

Run (root, Linux): .venv/bin/python bench/bench_gradescope.py [--repeats 1] [--log-repeats 3] [--skip-notebooks]
                   .venv/bin/python bench/bench_gradescope.py --containers 0.5/768 1.0/1536 [--zip nb.zip]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from coursekit.course import Course
from coursekit.gradescope import emulate
from coursekit.gradescope.build import build
from coursekit.testing.courses import copy_course
from coursekit.testing.submission_logs import reference_submission_log

REPO = Path(__file__).resolve().parents[1]  # the checkout whose coursekit the subprocesses import


def clock(fn) -> tuple[float, object]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def gradescope_run(zip_path: Path, files: dict[str, Path], work: Path) -> tuple[float, dict]:
    shutil.rmtree(work, ignore_errors=True)
    emulate.unpack(zip_path, work)
    for name, path in files.items():
        shutil.copy(path, work / "submission" / name)
    seconds, (results, _) = clock(lambda: emulate.run(work))
    assert results is not None
    return seconds, results


def kit(course: Course, *args: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    seconds, done = clock(lambda: subprocess.run([sys.executable, "-m", "coursekit", "--course-dir", str(course.root),
                                                  *args], capture_output=True, text=True, env=env))
    if done.returncode != 0:
        raise SystemExit(f"coursekit {' '.join(args)} failed: {done.stderr[-2000:]}")
    return seconds


def row(label: str, ours: list[float], theirs: list[float], note: str) -> str:
    a, b = statistics.median(ours), statistics.median(theirs)
    return f"| {label} | {a:.1f} | {b:.1f} | {a / b:.2f}x | {note} |"


def container_runs(sizes: list[str], zip_path: Path | None, submissions: list[str], env: dict[str, str]) -> None:
    """Part 3: hw6 notebooks mode in cgroups of the given sizes ("CPUS/MB"), one row per run."""
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if zip_path is None:
            course = Course.open(copy_course(tmp / "course"))
            print("building the notebooks-mode zip (grades the reference once: minutes)...")
            build_s, _ = clock(lambda: build(course, "hw6", "notebooks", tmp / "nb.zip"))
            print(f"notebooks-mode zip built in {build_s:.1f} s")
            zip_path = tmp / "nb.zip"
        import zipfile

        with zipfile.ZipFile(zip_path) as zf:
            manifest = json.loads(zf.read("gradescope.json"))
        auto = sum(c["points"] for c in manifest["cells"] if c["kind"] == "auto")
        uploads = {"reference": emulate.notebook_upload(REPO, "hw6", filled=True),
                   "release": emulate.notebook_upload(REPO, "hw6", filled=False)}
        expected = {"reference": auto, "release": 0.0}
        rows = []
        for size in sizes:
            cpus, memory_mb = float(size.split("/")[0]), int(size.split("/")[1])
            for name in submissions:
                tree = tmp / f"gs-{name}"
                shutil.rmtree(tree, ignore_errors=True)
                emulate.unpack(zip_path, tree)
                for file_name, data in uploads[name].items():
                    (tree / "submission" / file_name).write_bytes(data)
                group = emulate.Cgroup(f"coursekit-bench-gs-{os.getpid()}", memory_mb, cpus, sample=True)
                try:
                    wall, (results, stdout) = clock(lambda: emulate.run(tree, cgroup=group, env=env))
                    stats = group.stats()
                finally:
                    group.remove()
                score = results["score"] if results else None
                kinds = ", ".join(f"{k} {v:.0f} MB (VmPeak {stats['address_space_mb'][k]:.0f}) / "
                                  f"{stats['cpu_by_kind'].get(k, 0):.0f} s"
                                  for k, v in stats["rss_mb"].items() if v >= 20)
                rows.append(f"| {name} | {cpus:g} CPU, {memory_mb} MB | {score} / {auto:g} | {wall:.0f} s | "
                            f"{stats['cpu_s']:.0f} s | {stats['peak_mb']:.0f} MB | {stats['rss_sum_mb']:.0f} MB | "
                            f"{stats['oom_kills']} | {kinds} |")
                print(rows[-1], flush=True)
                if score != expected[name]:
                    lost = [f"  {t.get('number', '')} {t['name']}: {t['score']:g}/{t['max_score']:g}: "
                            f"{t['output'][:300]!r}" for t in (results or {}).get("tests", [])
                            if t["score"] < t["max_score"] and name == "reference"]
                    print(f"  score {score}, expected {expected[name]:g}: {(results or {}).get('output', '')[:1500]}\n"
                          + "\n".join(lost[:12]) + f"\n{stdout[-2000:]}", flush=True)
    env_text = " ".join(f"{k}={v}" for k, v in env.items()) or "none"
    print(f"\nhw6 notebooks mode in cgroups (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
          f"extra environment: {env_text})\n")
    print("| submission | container | score | wall | CPU | cgroup peak | largest RSS sum | OOM kills | "
          "per process kind: largest RSS (largest VmPeak) / CPU |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    print("\n".join(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1, help="notebooks-mode runs of each side (median reported)")
    parser.add_argument("--log-repeats", type=int, default=3, help="log-mode runs of each side (median reported)")
    parser.add_argument("--skip-notebooks", action="store_true", help="only the log mode")
    parser.add_argument("--containers", nargs="+", metavar="CPUS/MB",
                        help="part 3 only: hw6 notebooks mode in cgroups of these sizes, e.g. 0.5/768 1.0/1536")
    parser.add_argument("--zip", type=Path, help="part 3: a built hw6 notebooks-mode zip (default: build one)")
    parser.add_argument("--submissions", nargs="+", default=["reference", "release"],
                        choices=["reference", "release"], help="part 3: which uploads to grade")
    parser.add_argument("--env", nargs="*", default=[], metavar="NAME=VALUE",
                        help="part 3: extra environment for run_autograder")
    args = parser.parse_args()
    if args.containers:
        container_runs(args.containers, args.zip, args.submissions, dict(e.split("=", 1) for e in args.env))
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        course = Course.open(copy_course(tmp / "course"))
        if not (course.root / "data" / "names").is_dir():
            raise SystemExit("run `coursekit fetch-data` first: the surname data is needed")

        print("training the reference model once for its log (~15 s)...")
        log = tmp / "submission_log.json"
        log.write_text(json.dumps(reference_submission_log()))
        build_s, _ = clock(lambda: build(course, "hw6", "log", tmp / "log.zip"))
        print(f"log-mode zip built in {build_s:.1f} s")
        ours, theirs = [], []
        for i in range(args.log_repeats):
            seconds, results = gradescope_run(tmp / "log.zip", {"submission_log.json": log}, tmp / "gs")
            assert results["score"] == 5.0, results
            ours.append(seconds)
            theirs.append(kit(course, "grade-log", str(log)))
            print(f"  log run {i + 1}: run_autograder {ours[-1]:.1f} s, coursekit grade-log {theirs[-1]:.1f} s")
        rows.append(row("log: reference submission_log.json", ours, theirs, "score 5/5 on both sides"))

        if not args.skip_notebooks:
            print("building the notebooks-mode zip (grades the reference once: minutes)...")
            build_s, manifest = clock(lambda: build(course, "hw6", "notebooks", tmp / "nb.zip"))
            print(f"notebooks-mode zip built in {build_s:.1f} s")
            from coursekit.samples import build_samples

            course.generate_release("hw6")
            build_samples(course, "hw6")
            submission = course.folder("submitted", "reference", "hw6")
            files = {p.name: p for p in submission.glob("*.ipynb")}
            warm = kit(course, "autograde", "--student", "reference")  # caches this course's reference records
            print(f"  coursekit autograde, first run (computes the reference records): {warm:.1f} s")
            ours, theirs = [], []
            for i in range(args.repeats):
                seconds, results = gradescope_run(tmp / "nb.zip", files, tmp / "gs")
                auto = sum(c["points"] for c in manifest["cells"] if c["kind"] == "auto")
                assert results["score"] == auto, (results["score"], auto)
                ours.append(seconds)
                theirs.append(kit(course, "autograde", "--student", "reference"))
                print(f"  notebooks run {i + 1}: run_autograder {ours[-1]:.1f} s, coursekit autograde {theirs[-1]:.1f} s")
            rows.append(row("notebooks: reference, six notebooks", ours, theirs, f"{auto:g}/{auto:g} autograded points"))
            rows.append(f"| notebooks-mode zip build (once) | {build_s:.1f} | – | – | grades the reference once |")

    load = os.getloadavg()[0]
    print(f"\nmedian of {args.log_repeats} (log) and {args.repeats} (notebooks) runs, seconds (load average {load:.1f} on {os.cpu_count()} cores)\n")
    print("| submission | run_autograder (emulated Gradescope) | coursekit | ratio | note |")
    print("| --- | ---: | ---: | ---: | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
