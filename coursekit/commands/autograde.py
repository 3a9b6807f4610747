"""coursekit autograde: grade submissions in submitted/ into the gradebook."""
from __future__ import annotations

import argparse
import sys

from coursekit.commands._common import add_assignment_argument, guarded, open_course
from coursekit.grading import autograde
from coursekit.late import lateness_of
from coursekit.report import summary_table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_assignment_argument(parser)
    parser.add_argument("--student", action="append", help="only this student (repeatable)")
    parser.add_argument("--jobs", "-j", type=int, default=1, help="grade this many notebooks in parallel")
    parser.add_argument("--scheduler", default=None, metavar="tls://HOST:8786",
                        help="grade on the `coursekit worker`s of this Dask scheduler (default: "
                             "c.ParallelGrading.scheduler; unset: this machine)")
    parser.add_argument("--no-sandbox", action="store_true",
                        help="run kernels unsandboxed (only for trusted code, e.g. on a machine without root)")


@guarded
def run(args: argparse.Namespace) -> int:
    course, assignment = open_course(args)
    results = autograde(course, assignment, args.student, jobs=args.jobs,
                        sandboxed=False if args.no_sandbox else None, scheduler=args.scheduler)
    print(summary_table(results, lateness_of(course, assignment, [r.student for r in results])))
    for notebook, why in results.unavailable.items():  # nobody was graded on it: the instructor must act
        print(f"coursekit autograde: {notebook}.ipynb was graded for nobody: {why}", file=sys.stderr)
    return 1 if results.unavailable else 0
