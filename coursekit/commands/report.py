"""coursekit report: the score table from the gradebook, and a plot of it."""
from __future__ import annotations

import argparse

from coursekit.commands._common import add_assignment_argument, guarded, open_course
from coursekit.late import lateness_of
from coursekit.report import plot_scores, results_from_gradebook, summary_table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_assignment_argument(parser)


@guarded
def run(args: argparse.Namespace) -> int:
    course, assignment = open_course(args)
    results = results_from_gradebook(course, assignment, course.students_with_submissions(assignment))
    print(summary_table(results, lateness_of(course, assignment, [r.student for r in results])))
    print(f"plot: {plot_scores(results, course.root / 'reports' / 'scores.png')}")
    return 0
