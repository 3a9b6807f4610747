"""coursekit similarity: rank pairs of submissions that share code or trained weights."""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from coursekit.commands._common import add_assignment_argument, fail, guarded, open_course
from coursekit.similarity import DEFAULTS, similarity_report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_assignment_argument(parser)
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: reports/similarity)")
    parser.add_argument("--reference-log", type=Path, default=None,
                        help="the instructor's own submission_log.json, to flag Problem 4 weights equal to it")
    parser.add_argument("--reference-records", type=Path, default=None,
                        help="reference check records (default: the newest .coursekit/reference/<assignment>/"
                             "rnn_gradients-*.json)")
    parser.add_argument("--min-tokens", type=int, default=DEFAULTS.min_tokens,
                        help=f"skip answers shorter than this many tokens of their own (default {DEFAULTS.min_tokens})")
    parser.add_argument("--min-score", type=float, default=DEFAULTS.min_code_score,
                        help=f"list code pairs from this similarity on (default {DEFAULTS.min_code_score})")
    parser.add_argument("--near-distance", type=float, default=DEFAULTS.near_distance,
                        help=f"relative distance for near-duplicate weights (default {DEFAULTS.near_distance})")


@guarded
def run(args: argparse.Namespace) -> int:
    course, assignment = open_course(args)
    for option in ("reference_log", "reference_records"):
        path = getattr(args, option)
        if path is not None and not path.is_file():
            return fail(f"{path}: no such file (--{option.replace('_', '-')})")
    settings = dataclasses.replace(DEFAULTS, min_tokens=args.min_tokens, min_code_score=args.min_score,
                                   near_distance=args.near_distance)
    result = similarity_report(course, assignment, settings, out_dir=args.out, reference_log=args.reference_log,
                               reference_records=args.reference_records)
    for reason in result.reasons:
        print(f"  {reason}", file=sys.stderr)
    n_pairs = sum(len(p) for p in result.cell_pairs.values())
    print(f"{len(result.students)} submissions: {n_pairs} similar answer pairs, "
          f"{len(result.weight_groups)} groups of equal or near-equal trained weights")
    print(f"report: {result.page}")
    print(f"pairs:  {result.page.parent / 'pairs.csv'}")
    print("The report ranks pairs for a person to look at; it accuses nobody.")
    return 0
