"""`coursekit fetch-data`: fetch and verify the Problem 4 surname data into the course's data/names/.

The logic lives in the student helper ``surname_data.py`` (it travels with the assignment); this command
runs the instructor's copy of it (``coursekit.helpers``) instead of keeping a second one.
"""
from __future__ import annotations

import argparse
import os
import sys

from coursekit.commands._common import guarded, open_course
from coursekit.course import helper_dir
from coursekit.helpers import trusted_module


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dest", default=None,
                        help="folder for the 18 files (default: HW6_DATA_DIR, else <course>/data/names)")
    parser.add_argument("--mirror", default=None,
                        help="copy from this local folder instead of downloading (default: HW6_DATA_MIRROR)")
    parser.add_argument("--force", action="store_true", help="delete the files in --dest and fetch them again")
    parser.add_argument("--url", default=None, help="zip to download (default: the PyTorch tutorial's data.zip)")


@guarded
def run(args: argparse.Namespace) -> int:
    course, assignment = open_course(args)
    data = trusted_module(helper_dir(course.config, assignment), "surname_data")
    dest = args.dest or os.environ.get("HW6_DATA_DIR") or course.root / "data" / "names"
    try:
        folder = data.ensure_data(dest, force=args.force, mirror=args.mirror, url=args.url)
        digests = data.verify_dir(folder)
    except data.SurnameDataError as exc:
        print(f"fetch-data: {exc}", file=sys.stderr)
        return 1
    print(f"{len(digests)} files verified in {folder} (combined sha256 {data.combined_sha256(digests)})")
    return 0
