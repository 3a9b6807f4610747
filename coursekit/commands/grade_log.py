"""coursekit grade-log: grade a student's Problem 4 submission_log.json and print the result as JSON."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from coursekit.course import find_course_dir
from coursekit.gradelog import DEFAULT_MAX_BYTES, GraderError, grade


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="a student's submission_log.json")
    parser.add_argument("--max-score", type=float, default=None,
                        help="points for 80%% accuracy (default: the notebook's test_accuracy points)")
    parser.add_argument("--max-bytes", type=int, default=DEFAULT_MAX_BYTES,
                        help="refuse logs larger than this without parsing them (default 16 MiB)")
    parser.add_argument("--data-dir", default=None,
                        help="verified surname data folder (default: HW6_DATA_DIR, else <course>/data/names; "
                             "`coursekit fetch-data` fills it)")


def run(args: argparse.Namespace) -> int:
    """Exit 0 whenever the log could be graded (any score), 2 when the grader itself could not run."""
    course = find_course_dir(getattr(args, "course_dir", None))
    try:
        result = grade(Path(args.path), course=course, data_dir=args.data_dir, max_score=args.max_score,
                       max_bytes=args.max_bytes)
    except GraderError as exc:
        print(f"grade-log: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    return 0
