"""coursekit gradescope: write the Gradescope autograder zip (log or notebooks mode)."""
from __future__ import annotations

import argparse
from pathlib import Path

from coursekit.commands._common import add_assignment_argument, guarded, open_course
from coursekit.gradescope.build import MODES, build


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_assignment_argument(parser)
    parser.add_argument("--mode", choices=MODES, default="log",
                        help="log: grade the uploaded submission_log.json (the homework's hand-in); "
                             "notebooks: autograde the uploaded .ipynb files like `coursekit autograde`")
    parser.add_argument("--out", type=Path, default=None,
                        help="zip to write (default: gradescope/<assignment>-autograder.zip in the course folder)")


@guarded
def run(args: argparse.Namespace) -> int:
    course, assignment = open_course(args)
    out = args.out or course.root / "gradescope" / f"{assignment}-autograder.zip"
    manifest = build(course, assignment, args.mode, out)
    auto = sum(c["points"] for c in manifest["cells"] if c["kind"] == "auto")
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, mode {args.mode})")
    if args.mode == "log":
        print(f"  students upload {manifest['log_name']}; {manifest['log_points']:g} points")
    else:
        print(f"  students upload {', '.join(n + '.ipynb' for n in manifest['notebooks'])}; "
              f"{auto:g} autograded points (written answers: grade them in Gradescope's manually graded questions)")
    size = manifest["container"]
    print("  upload it in Gradescope: assignment -> Configure Autograder -> Zip file upload (Ubuntu 22.04 base image)")
    print(f"  container: {size['cpus']:g} CPU, {size['memory_mb']} MB memory, timeout {size['timeout_seconds'] // 60} minutes")
    return 0
