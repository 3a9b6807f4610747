"""How far apart the similarity report puts planted copies and honest pairs (a synthetic class).

The class (coursekit/testing/similarity_class.py): 24 honest students who write four answers each in
their own style, and six copiers who take three answers of one student each, hidden at one level
(verbatim, renamed, reordered, loop rewritten, dead code, helper function). For several seeds, the
same class is scored side by side by

* ``before``: the page's former headline (the mean of the listed per-cell similarities over every
  answer cell), with answers identical only in the same statement order (``any_order=False``);
* ``mean over cells``: the former headline, with answers of the same statements in any order identical;
* ``share of code``: the headline now, the larger of the two students' shares of their answered code
  that the other holds too (coursekit/similarity/overall.py);
* ``share of code, per statement``: the same with k-grams kept inside statements (setting
  ``per_statement``; not the default).

For each: every copy's score, the best honest pair's, how many copies rank above every honest pair, and
the reordered copy's score over the best honest pair's.

    .venv/bin/python bench/bench_similarity_class.py [--seeds 10]
"""
from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time

from coursekit.similarity import DEFAULTS
from coursekit.testing.similarity_class import LEVELS, build_class, ranked_pairs


def mean_over_cells(cell_pairs: dict, n_cells: int) -> dict[frozenset, float]:
    """The former headline: listed per-cell similarities summed, over every answer cell."""
    sums: dict[frozenset, float] = {}
    for pairs in cell_pairs.values():
        for pair in pairs:
            key = frozenset((pair.first.owner, pair.second.owner))
            sums[key] = sums.get(key, 0.0) + pair.score
    return {key: total / n_cells for key, total in sums.items()}


def score(seed: int, method: str) -> tuple[dict[str, float], float]:
    settings = dataclasses.replace(DEFAULTS, per_statement=method.endswith("per statement"),
                                   any_order=method != "before")
    synthetic = build_class(seed, settings=settings)
    indexes, cell_pairs, pairs = ranked_pairs(synthetic)
    if method in ("before", "mean over cells"):
        scores = mean_over_cells(cell_pairs, len(indexes))
    else:
        scores = {frozenset((p.first, p.second)): p.score for p in pairs}
    copies = {frozenset(pair): level for level, pair in synthetic.copies.items()}
    by_level = {level: scores.get(key, 0.0) for key, level in copies.items()}
    honest = max((s for key, s in scores.items() if key not in copies), default=0.0)
    return by_level, honest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()
    methods = ["before", "mean over cells", "share of code", "share of code, per statement"]
    print(f"{args.seeds} classes (seeds 0-{args.seeds - 1}), 30 students each, 4 answer cells\n")
    header = f"{'method':30s} " + " ".join(f"{level:>10s}" for level in LEVELS) + \
        f" {'best honest':>11s} {'copies above':>12s} {'reordered/honest':>16s}"
    print(header)
    for method in methods:
        start = time.perf_counter()
        rows = [score(seed, method) for seed in range(args.seeds)]
        seconds = (time.perf_counter() - start) / args.seeds
        levels = {level: statistics.mean(r[0][level] for r in rows) for level in LEVELS}
        honest = statistics.mean(r[1] for r in rows)
        above = sum(sum(s > r[1] for s in r[0].values()) for r in rows)
        ratios = [r[0]["reordered"] / r[1] for r in rows if r[1] > 0]
        print(f"{method:30s} " + " ".join(f"{levels[level]:10.3f}" for level in LEVELS)
              + f" {honest:11.3f} {above:>6d} / {len(LEVELS) * len(rows):<4d}"
              f" {statistics.mean(ratios):7.2f} (min {min(ratios):.2f})   [{seconds:.2f} s per class]")
    print("\nscores are means over the seeds; 'copies above': copies scoring above that class's best honest pair")
    return 0


if __name__ == "__main__":
    sys.exit(main())
