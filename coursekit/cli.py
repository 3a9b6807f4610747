"""The single `coursekit` command line.

Each subcommand lives in its own module with ``add_arguments(parser)`` and ``run(args) -> int``;
modules are imported only when their command runs, so ``coursekit --help`` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "release": ("coursekit.commands.release", "generate the student release of an assignment from source/"),
    "collect": ("coursekit.commands.collect", "copy student submissions (folders, zips or a Gradescope export) into submitted/"),
    "autograde": ("coursekit.commands.autograde", "autograde submissions into the gradebook"),
    "feedback": ("coursekit.commands.feedback", "write feedback pages and a summary per student; --release, --zip"),
    "export": ("coursekit.commands.export", "export grades from the gradebook to CSV"),
    "late": ("coursekit.commands.late", "due dates, extensions and late penalties; --recompute re-applies them"),
    "roster": ("coursekit.commands.roster", "import the LMS's class list (Canvas or Moodle CSV) into the gradebook"),
    "report": ("coursekit.commands.report", "print the score table and plot the score distribution"),
    "samples": ("coursekit.commands.samples", "write the bundled sample submissions into submitted/"),
    "points": ("coursekit.commands.points", "print the points per notebook (from the cell metadata)"),
    "demo": ("coursekit.commands.demo", "release, autograde the samples, feedback, export and report"),
    "fetch-data": ("coursekit.commands.fetch_data", "fetch and verify the surname data (Problem 4)"),
    "grade-log": ("coursekit.commands.grade_log", "grade a student's submission_log.json (Problem 4)"),
    "similarity": ("coursekit.commands.similarity", "rank pairs of submissions that share code or trained weights"),
    "gradescope": ("coursekit.commands.gradescope", "build the Gradescope autograder zip (log or notebooks mode)"),
    "cluster": ("coursekit.commands.cluster", "the TLS certificates of a grading cluster, and its scheduler"),
    "worker": ("coursekit.commands.worker", "grade notebooks for `autograde --scheduler` on this machine (a Dask worker)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="coursekit", description=__doc__.splitlines()[0])
    parser.add_argument("--course-dir", default=None,
                        help="course folder holding nbgrader_config.py (default: search upwards from here)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, description=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    top, rest = parser.parse_known_args(argv)
    module_name, help_text = COMMANDS[top.command]
    module = importlib.import_module(module_name)
    sub = argparse.ArgumentParser(prog=f"coursekit {top.command}", description=help_text)
    module.add_arguments(sub)
    args = sub.parse_args(rest)
    args.course_dir = top.course_dir
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
