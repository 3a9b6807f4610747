"""coursekit demo: the whole instructor pipeline on the bundled sample submissions."""
from __future__ import annotations

import argparse
import sys

from coursekit.commands._common import add_assignment_argument, guarded, open_course
from coursekit.feedback import generate_feedback
from coursekit.feedback_delivery import write_summaries
from coursekit.grading import Results, autograde
from coursekit.report import export_csv, export_notebook_csv, plot_scores, summary_table
from coursekit.samples import SAMPLE_STUDENTS, build_samples


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_assignment_argument(parser)


@guarded
def run(args: argparse.Namespace) -> int:
    course, assignment = open_course(args)
    print(f"[1/5] release {assignment} from {course.folder('source', assignment)}")
    course.generate_release(assignment)
    print("[2/5] sample submissions: " + ", ".join(SAMPLE_STUDENTS))
    build_samples(course, assignment)
    print("[3/5] autograde into the gradebook")
    results = autograde(course, assignment, list(SAMPLE_STUDENTS), jobs=2)
    print("[4/5] feedback")
    generate_feedback(course, assignment, list(SAMPLE_STUDENTS))
    write_summaries(course, assignment, list(SAMPLE_STUDENTS))  # summary.html per student
    print("[5/5] export")
    reports = course.root / "reports"
    export_csv(course, reports / "grades.csv")
    export_notebook_csv(course, assignment, list(SAMPLE_STUDENTS), reports / "grades-by-notebook.csv")
    plot = plot_scores(results, reports / "scores.png")
    print()
    print(summary_table(results))
    print(f"\ngradebook: {course.db_url}\nfeedback:  {course.folder('feedback')}\n"
          f"grades:    {reports / 'grades.csv'}\nplot:      {plot}")
    failures = demo_failures(results)
    for failure in failures:
        print(f"coursekit demo: FAILED: {failure}", file=sys.stderr)
    return 1 if failures else 0


def demo_failures(results: Results) -> list[str]:
    """Why the demo did not show the kit working: the reference below full points, a sample that could
    not be graded, a notebook whose reference could not be computed (each with its reason)."""
    failures = [f"{notebook}.ipynb could not be graded for anyone: {why}" for notebook, why in results.unavailable.items()]
    for result in results:
        if result.status == "failed":
            failures.append(f"sample {result.student!r} could not be graded: " + "; ".join(result.reasons[:3]))
        elif result.student == "reference" and (result.max_code_score == 0
                                                or result.code_score < result.max_code_score):
            failures.append(f"the reference solution earned {result.code_score:g}/{result.max_code_score:g}, not "
                            "full points: " + ("; ".join(result.reasons[:3]) or "see the table above"))
    return failures
