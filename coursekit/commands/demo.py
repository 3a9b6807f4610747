"""coursekit demo: the whole instructor pipeline on the bundled sample submissions."""
from __future__ import annotations

import argparse

from coursekit.commands._common import add_assignment_argument, guarded, open_course
from coursekit.feedback import generate_feedback
from coursekit.feedback_delivery import write_summaries
from coursekit.grading import autograde
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
    return 0
