"""coursekit collect: copy student folders or zips (or a Gradescope export zip, or with ``--exchange``
nbgrader's exchange inbound) into submitted/, each upload checked whole first."""
from __future__ import annotations

import argparse
from pathlib import Path

from coursekit.collect import MiB, IntakeLimits, collect
from coursekit.commands._common import guarded, open_course
from coursekit.course import CourseError
from coursekit.exchange import collect_exchange
from coursekit.gradescope.export import collect_export, is_export


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = IntakeLimits()
    parser.add_argument("paths", nargs="*", type=Path, help="per student: a folder or a .zip named after the student id; "
                        "or Gradescope's Export Submissions zip")
    parser.add_argument("--exchange", action="store_true",
                        help="collect each student's newest submission from nbgrader's exchange (c.Exchange.root): "
                             "instead of `nbgrader collect`, which follows links")
    parser.add_argument("--assignment", default=None, help="assignment id (default: from pyproject.toml)")
    parser.add_argument("--max-mib", type=float, default=defaults.max_bytes / MiB,
                        help="largest upload, uncompressed, in MiB (default: %(default)g)")
    parser.add_argument("--max-files", type=int, default=defaults.max_files,
                        help="most files in one upload (default: %(default)d)")
    parser.add_argument("--max-depth", type=int, default=defaults.max_depth,
                        help="deepest path in one upload, in levels (default: %(default)d)")
    parser.add_argument("--max-path-bytes", type=int, default=defaults.max_path_bytes,
                        help="longest path in one upload, in bytes (default: %(default)d)")


@guarded
def run(args: argparse.Namespace) -> int:
    course, assignment = open_course(args)
    if not args.paths and not args.exchange:
        raise CourseError("give student folders or zips, or --exchange")
    limits = IntakeLimits(max_bytes=int(args.max_mib * MiB), max_files=args.max_files, max_depth=args.max_depth,
                          max_path_bytes=args.max_path_bytes)
    if args.exchange:
        for line in collect_exchange(course, assignment, limits):
            print(line)
    exports = [p for p in args.paths if is_export(p)]
    for export in exports:
        for line in collect_export(course, assignment, export):
            print(line)
    rest = [p for p in args.paths if p not in exports]
    for line in collect(course, assignment, rest, max_bytes=int(args.max_mib * MiB), max_files=args.max_files,
                        max_depth=args.max_depth, max_path_bytes=args.max_path_bytes) if rest else []:
        print(line)
    return 0
