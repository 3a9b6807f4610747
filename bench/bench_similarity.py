"""`coursekit similarity` benchmark: time and peak memory for 200 and 1,000 synthetic submissions.

Each size gets its own synthetic class (six notebooks per student, generated from the release and the
instructor's solutions, not timed): every answer is the solution with about a third of the student's
lines replaced, dropped or extended by random statements; 3 % of the students copy an earlier
student's answers (with other comments); every student hands in a Problem 4 ``submission_log.json``
(the reference model's 38k weights: 10 % trained with the reference's seed and hyperparameters, the
copiers with a copied log under another seed, the rest their own) and has an autograded
``rnn_gradients.ipynb`` whose training cells hold the eight 3k models as check records (75 % equal to
the reference, 15 % within float noise of it, 10 % a run of their own). The report then runs in a
child process per size, so that its peak RSS (ru_maxrss) is its own; the growth ratios come from the
same run.

    .venv/bin/python bench/bench_similarity.py [--sizes 200 1000] [--keep DIR]
"""
from __future__ import annotations

import argparse
import base64
import copy
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from coursekit.course import Course
from coursekit.similarity import DEFAULTS
from coursekit.similarity.collect import release_cells
from coursekit.testing.courses import copy_course

ASSIGNMENT = "hw6"
NAMES = ["x", "h", "out", "tmp", "acc", "y", "z", "w", "s", "k", "i", "j", "prev", "cur", "total"]
ATTRS = ["sum", "mean", "view", "reshape", "matmul", "exp", "log", "clamp", "unsqueeze", "squeeze", "softmax",
         "max", "argmax", "flip", "cumsum", "transpose", "detach", "abs", "sqrt", "norm"]
OPS = ["+", "-", "*", "/", "@"]
P4_SHAPES = {"embedding.weight": (58, 64), "rnn.weight_ih_l0": (256, 64), "rnn.weight_hh_l0": (256, 64),
             "rnn.bias_ih_l0": (256,), "rnn.bias_hh_l0": (256,), "output.weight": (18, 64), "output.bias": (18,)}


# --- synthetic answers ------------------------------------------------------------------------------
def random_statement(rng: np.random.Generator, indent: str) -> str:
    v = lambda: NAMES[rng.integers(len(NAMES))]
    a = lambda: ATTRS[rng.integers(len(ATTRS))]
    kind = rng.integers(5)
    if kind == 0:
        text = f"{v()} = {v()}.{a()}({v()}, dim={rng.integers(3)})"
    elif kind == 1:
        text = f"{v()} = {v()} {OPS[rng.integers(5)]} {v()} * {rng.integers(1, 10)}"
    elif kind == 2:
        text = f"{v()}.append({v()}.{a()}().{a()}())"
    elif kind == 3:
        text = f"{v()} = torch.{a()}({v()} {OPS[rng.integers(5)]} {rng.integers(1, 5)}) + {v()}[:, {rng.integers(3)}]"
    else:
        text = f"{v()}, {v()} = {v()}.{a()}(), {v()}.shape[{rng.integers(3)}]"
    return indent + text


def student_answer(solution: str, skeleton: frozenset[str], rng: np.random.Generator) -> str:
    """The solution with about a third of the student's own lines replaced, dropped or extended."""
    out = []
    for line in solution.splitlines():
        if line.strip() in skeleton or not line.strip():
            out.append(line)
            continue
        indent = line[: len(line) - len(line.lstrip())]
        roll = rng.random()
        if roll < 0.25:
            out.append(random_statement(rng, indent))
        elif roll >= 0.33:
            out.append(line)
        if rng.random() < 0.15:
            out.append(random_statement(rng, indent))
    return "\n".join(out)


# --- synthetic weights ------------------------------------------------------------------------------
def encoded(array: np.ndarray) -> dict:
    data = np.ascontiguousarray(array, dtype="<f4")
    return {"shape": list(data.shape), "dtype": "float32", "data": base64.b64encode(data.tobytes()).decode("ascii")}


def submission_log(weights: dict[str, np.ndarray], seed: int) -> dict:
    return {"format_version": 2, "hparams": {"hidden_size": 64, "num_layers": 1, "dropout": 0.2, "model_type": "lstm",
                                             "optimizer_class": "Adam", "lr": 0.01, "batch_size": 512, "epochs": 20,
                                             "seed": seed},
            "weights": {name: encoded(array) for name, array in weights.items()}, "data": {"split_seed": 6},
            "versions": {"python": "3.11.7", "torch": "2.13.0", "numpy": "2.4.6"}}


def training_models(rng: np.random.Generator) -> list[tuple[str, int, bool, dict[str, np.ndarray]]]:
    """The eight 3k models (hidden size 32, input size 1) with weights drawn from ``rng``."""
    models = []
    for kind, gates in (("rnn", 1), ("lstm", 4)):
        for layers in (1, 2):
            for last in (False, True):
                state = {}
                for i in range(layers):
                    state[f"recurrent_net.layers.{i}.W_h"] = rng.normal(size=(gates * 32, 32))
                    state[f"recurrent_net.layers.{i}.W_x"] = rng.normal(size=(gates * 32, 1 if i == 0 else 32))
                    state[f"recurrent_net.layers.{i}.b"] = rng.normal(size=(gates * 32,))
                state["readout.weight"], state["readout.bias"] = rng.normal(size=(1, 32)), rng.normal(size=(1,))
                models.append((kind, layers, last, state))
    return models


def training_records(models, noise: float, rng: np.random.Generator) -> dict[str, list[dict]]:
    by_cell: dict[str, list[dict]] = {"test_training_rnn": [], "test_training_lstm": []}
    for kind, layers, last, state in models:
        plain = {k: {"__array__": list(v.shape), "data": (v + noise * rng.normal(size=v.shape) if noise else v)
                     .astype(np.float32).ravel().tolist()} for k, v in state.items()}
        by_cell[f"test_training_{kind}"].append({"name": f"{kind}_{layers} model", "value": {
            "model": kind, "num_layers": layers, "last_timestep_only": last, "state_dict": plain, "seed": 0,
            "recipe": {"hidden_size": 32, "steps": 1000 if kind == "rnn" else 500, "lr": 0.01, "seed": 0}}})
    return by_cell


# --- the class ----------------------------------------------------------------------------------------
def build_class(root: Path, n: int, seed: int = 0) -> Course:
    course = Course.open(copy_course(root, folders=("source", "release"), with_data=False))
    cells, solutions = release_cells(course, ASSIGNMENT, DEFAULTS)
    skeleton = {(c.notebook, c.grade_id): c.skeleton for c in cells}
    releases = {name: json.loads(course.folder("release", ASSIGNMENT, f"{name}.ipynb").read_text())
                for name in sorted({c.notebook for c in cells})}
    rng = np.random.default_rng(seed)
    reference_p4 = {k: rng.normal(size=s).astype(np.float32) for k, s in P4_SHAPES.items()}
    reference_3k = training_models(rng)
    cache = root / ".coursekit" / "reference" / ASSIGNMENT
    cache.mkdir(parents=True)
    (cache / "rnn_gradients-bench.json").write_text(json.dumps(training_records(reference_3k, 0.0, rng)))

    answers: list[dict[str, dict[str, str]]] = []
    logs: list[dict] = []
    for number in range(n):
        student = f"s{number:04d}"
        folder = course.folder("submitted", student, ASSIGNMENT)
        folder.mkdir(parents=True)
        copier = number > 10 and rng.random() < 0.03
        if copier:  # another student's answers with other comments, and their weights under another seed
            source = int(rng.integers(number))
            mine = {nb: {gid: f"# my own work\n{text}\n# done" for gid, text in cells_.items()}
                    for nb, cells_ in answers[source].items()}
            log = dict(logs[source], hparams=dict(logs[source]["hparams"], seed=int(rng.integers(1, 10**6))))
        else:
            mine = {nb: {gid: student_answer(solutions[(nb, gid)], skeleton[(nb, gid)], rng)
                         for (nb_, gid) in skeleton if nb_ == nb} for nb in releases}
            if rng.random() < 0.1:
                log = submission_log(reference_p4, seed=0)
            else:
                log = submission_log({k: rng.normal(size=s).astype(np.float32) for k, s in P4_SHAPES.items()},
                                     seed=int(rng.integers(1, 10**6)))
        answers.append(mine)
        logs.append(log)
        for name, release in releases.items():
            nb = copy.deepcopy(release)
            for cell in nb["cells"]:
                gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
                if gid in mine[name]:
                    cell["source"] = mine[name][gid]
            (folder / f"{name}.ipynb").write_text(json.dumps(nb))
        (folder / "submission_log.json").write_text(json.dumps(log))

        roll = rng.random()
        models = training_models(rng) if roll < 0.1 else reference_3k
        records = training_records(models, 1e-6 if 0.1 <= roll < 0.25 else 0.0, rng)
        graded = copy.deepcopy(releases["rnn_gradients"])
        for cell in graded["cells"]:
            gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            if gid in records:
                cell["metadata"]["coursekit"] = {"records": records[gid]}
        target = course.folder("autograded", student, ASSIGNMENT, "rnn_gradients.ipynb")
        target.parent.mkdir(parents=True)
        target.write_text(json.dumps(graded))
    return course


# --- measuring ------------------------------------------------------------------------------------------
def measure(course_dir: Path) -> dict:
    """Run the report once in this process; its time and this process's peak RSS."""
    from coursekit.similarity import similarity_report
    course = Course.open(course_dir)
    start, cpu_start = time.perf_counter(), time.process_time()
    result = similarity_report(course, ASSIGNMENT, progress=False)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "cpu_seconds": cpu, "peak_rss_mib": peak,
            "code_pairs": sum(len(p) for p in result.cell_pairs.values()), "weight_groups": len(result.weight_groups),
            "students": len(result.students)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 1000])
    parser.add_argument("--keep", type=Path, default=None,
                        help="build the classes here and keep them (classes already there are reused)")
    parser.add_argument("--measure", type=Path, default=None, help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return 0

    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-similarity-"))
    rows = []
    try:
        for n in args.sizes:
            start = time.perf_counter()
            folder = work / f"class-{n}"
            course = Course.open(folder) if folder.is_dir() else build_class(folder, n)  # --keep: reuse
            built = time.perf_counter() - start
            size_mib = sum(p.stat().st_size for p in course.root.rglob("*") if p.is_file()) / 2**20
            child = subprocess.run([sys.executable, __file__, "--measure", str(course.root)], capture_output=True,
                                   text=True, check=True)
            row = json.loads(child.stdout.strip().splitlines()[-1]) | {"n": n, "built": built, "size_mib": size_mib}
            rows.append(row)
            print(f"{n:5d} submissions ({size_mib:6.0f} MiB on disk, built in {built:5.1f} s): "
                  f"report {row['seconds']:6.1f} s wall, {row['cpu_seconds']:6.1f} s CPU, "
                  f"peak RSS {row['peak_rss_mib']:6.0f} MiB, "
                  f"{row['code_pairs']} code pairs, {row['weight_groups']} weight groups", flush=True)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    if len(rows) >= 2:
        first, last = rows[0], rows[-1]
        print(f"growth {first['n']} -> {last['n']} submissions (x{last['n'] / first['n']:.1f}): "
              f"wall time x{last['seconds'] / first['seconds']:.2f}, "
              f"CPU time x{last['cpu_seconds'] / first['cpu_seconds']:.2f}, "
              f"peak RSS x{last['peak_rss_mib'] / first['peak_rss_mib']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
