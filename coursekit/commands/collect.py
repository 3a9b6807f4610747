"""coursekit collect: copy student folders or zips (or a Gradescope export zip) into submitted/."""
from __future__ import annotations

import argparse
from pathlib import Path

from coursekit.collect import collect
from coursekit.commands._common import guarded, open_course
from coursekit.gradescope.export import collect_export, is_export


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", type=Path, help="per student: a folder or a .zip named after the student id; "
                        "or Gradescope's Export Submissions zip")
    parser.add_argument("--assignment", default=None, help="assignment id (default: from pyproject.toml)")


@guarded
def run(args: argparse.Namespace) -> int:
    course, assignment = open_course(args)
    exports = [p for p in args.paths if is_export(p)]
    for export in exports:
        for line in collect_export(course, assignment, export):
            print(line)
    rest = [p for p in args.paths if p not in exports]
    for line in collect(course, assignment, rest) if rest else []:
        print(line)
    return 0
