"""Benchmark: what the fail-closed intake costs per notebook, against the previous intake, side by side.

The previous ``coursekit/intake.py`` is taken from git (``--old``, default the commit before the
fail-closed intake) into a temporary folder and imported as a separate module. Both look at the same
submission folders, alternating (the machine is shared, so each pair sees the same load):

* old: ``inspect`` + ``make_gradable`` (os.walk for links, JSON and nbformat checks);
* new: ``prepare`` (the same, plus every metadata field's JSON type, a descriptor walk that raises on
  any error, and the second walk that proves nothing odd is left), then the guard's own walk before
  nbgrader copies files (``_odd_entries``).

Submissions: the six hw6 release notebooks (no outputs), and the same with 2 MB of outputs in each
notebook (a student's saved outputs), each with the helper package beside them (30 files). Medians
of wall-clock seconds per submission, and per notebook.

Run: .venv/bin/python bench/bench_intake.py [--repeats 20] [--old COMMIT]
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_output
from nbgrader.utils import compute_checksum

from coursekit import intake
from coursekit.notebook import grade_id, is_test_cell
from coursekit.testing.courses import helper_folder, release_dir

from old_module import load_old  # bench/ is this script's folder

REPO = Path(__file__).resolve().parents[1]
OLD_DEFAULT = "9ac6f90"  # main before the fail-closed intake


def expected(release: Path) -> list[intake.ExpectedNotebook]:
    out = []
    for path in sorted(release.glob("*.ipynb")):
        nb = nbformat.read(str(path), as_version=4)
        tests = {grade_id(c): compute_checksum(c) for c in nb.cells if is_test_cell(c)}
        out.append(intake.ExpectedNotebook(path.stem, frozenset(grade_id(c) for c in nb.cells if grade_id(c)), tests))
    return out


def submission(folder: Path, release: Path, output_bytes: int) -> Path:
    folder.mkdir(parents=True)
    for path in release.glob("*.ipynb"):
        nb = nbformat.read(str(path), as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        for cell in code:
            cell.outputs = [new_output("stream", name="stdout", text="x" * (output_bytes // max(1, len(code))))]
        nbformat.write(nb, str(folder / path.name))
    shutil.copytree(helper_folder(), folder / helper_folder().name, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--old", default=OLD_DEFAULT)
    args = parser.parse_args()
    release = release_dir()
    exp = expected(release)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        old = load_old(args.old, "coursekit/intake.py", root)
        kinds = {"release notebooks": 0, "with 2 MB of outputs each": 2_000_000}
        rows = []
        for label, size in kinds.items():
            folder = submission(root / "submitted" / "s" / "hw6", release, size)
            times = {"old": [], "new": [], "new + guard walk": []}
            for _ in range(args.repeats):
                started = time.perf_counter()
                found = old.inspect(folder, exp)
                old.make_gradable(found, root, "s", "hw6")
                times["old"].append(time.perf_counter() - started)
                started = time.perf_counter()
                result = intake.prepare(folder, exp, root, "s", "hw6")
                middle = time.perf_counter()
                intake._odd_entries(folder)
                times["new"].append(middle - started)
                times["new + guard walk"].append(time.perf_counter() - started)
                assert not result.failed and len(result.notebooks) == len(exp), result.reasons
            shutil.rmtree(folder)
            medians = {k: statistics.median(v) for k, v in times.items()}
            rows.append((label, medians))
    count = len(exp)
    print(f"{count} notebooks per submission, {args.repeats} repeats, medians")
    print("| submission | old intake | new intake | new + guard walk | added per notebook |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for label, m in rows:
        added = (m["new + guard walk"] - m["old"]) / count
        print(f"| {label} | {m['old']:.3f} s | {m['new']:.3f} s | {m['new + guard walk']:.3f} s | {added * 1000:+.1f} ms |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
