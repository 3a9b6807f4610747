"""coursekit collect: copy student folders or zips into submitted/."""
from __future__ import annotations

import argparse
from pathlib import Path

from coursekit.collect import collect
from coursekit.commands._common import guarded, open_course


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", type=Path, help="per student: a folder or a .zip named after the student id")
    parser.add_argument("--assignment", default=None, help="assignment id (default: from pyproject.toml)")


@guarded
def run(args: argparse.Namespace) -> int:
    course, assignment = open_course(args)
    for line in collect(course, assignment, args.paths):
        print(line)
    return 0
