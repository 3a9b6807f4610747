"""What one process pays to import nbformat, with and without jsonschema's rfc3987-syntax format checker.

Every nbgrader/coursekit process, pool worker, Dask worker and Gradescope run imports nbformat, which
imports jsonschema, which imports rfc3987-syntax when it is installed (jupyter-events asks for it) and
builds 38 Lark parsers. `make install` uninstalls it; this measures what that saves, side by side:
the same venv, once with the package put back on the path from a scratch folder.

    .venv/bin/python bench/bench_imports.py [--rounds 5]
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile


def cpu_seconds(env: dict[str, str]) -> float:
    """CPU seconds (user + system) of one fresh interpreter importing nbformat."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-c", "import nbformat"], env=env, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", scratch,
                        "rfc3987-syntax==1.1.0"], check=True)
        without = dict(os.environ)
        with_it = dict(os.environ, PYTHONPATH=scratch)
        found = subprocess.run([sys.executable, "-c", "import rfc3987_syntax"], env=without,
                               stderr=subprocess.DEVNULL).returncode == 0
        if found:
            sys.exit("rfc3987-syntax is installed in this venv: run `make install` (it removes it) first")
        times = {"with rfc3987-syntax": [], "without (make install)": []}
        for _ in range(args.rounds):  # interleaved, so load affects both alike
            times["with rfc3987-syntax"].append(cpu_seconds(with_it))
            times["without (make install)"].append(cpu_seconds(without))
    base = statistics.median(times["with rfc3987-syntax"])
    print(f"import nbformat, CPU seconds per process (median of {args.rounds}, load {os.getloadavg()[0]:.1f}):")
    for name, values in times.items():
        print(f"  {name:24s} {statistics.median(values):6.2f} s   {statistics.median(values) / base:5.2f}x")


if __name__ == "__main__":
    main()
