"""Grade tables for people: a printed summary, CSV files and a score plot."""
from __future__ import annotations

import csv
from pathlib import Path

from coursekit.course import Course
from coursekit.grading import NotebookScore, StudentResult, read_scores
from coursekit.late import Lateness, explain, lateness_of, notebook_penalties
from coursekit.outcomes import saved_outcome


def export_csv(course: Course, path: Path) -> Path:
    """nbgrader's own CSV export (one row per student and assignment)."""
    from nbgrader.api import Gradebook
    from nbgrader.plugins import CsvExportPlugin

    path.parent.mkdir(parents=True, exist_ok=True)
    plugin = CsvExportPlugin()
    plugin.to = str(path)
    with Gradebook(course.db_url, course.course_id) as gb:
        plugin.export(gb)
    return path


def export_notebook_csv(course: Course, assignment: str, students: list[str], path: Path) -> Path:
    """One row per student and notebook: autograded score, maximum, whether manual grading is pending, the
    notebook's late penalty (points), on time or late, and why (coursekit.late.explain)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student_id", "notebook", "autograded_score", "max_autograded_score", "needs_manual_grade",
                         "late_penalty", "timeliness", "late_reason"])
        late = lateness_of(course, assignment, students)
        for student in students:
            penalty = notebook_penalties(course, assignment, student)
            reason = explain(course, assignment, student) if student in late else ""
            status = late[student].status if student in late else ""
            for nb in read_scores(course, assignment, student):
                writer.writerow([student, nb.name, f"{nb.code_score:g}", f"{nb.max_code_score:g}",
                                 int(nb.needs_manual_grade), f"{penalty.get(nb.name, 0.0):g}", status, reason])
    return path


def summary_table(results: list[StudentResult], lateness: dict[str, Lateness] | None = None) -> str:
    """A fixed-width table: one row per student, one column per notebook (autograded points); with
    ``lateness`` (coursekit.late.lateness_of) also the late penalty and on time/late, with the reason
    below the table for every student who was late or had an extension."""
    notebooks = sorted({nb.name for r in results for nb in r.notebooks})
    late_columns = ["late penalty", "submitted"] if lateness is not None else []
    header = ["student", *notebooks, "total", *late_columns, "status"]
    rows = []
    for r in results:
        scores = {nb.name: nb for nb in r.notebooks}
        cells = [f"{scores[n].code_score:g}/{scores[n].max_code_score:g}" if n in scores else "-" for n in notebooks]
        late = []
        if lateness is not None:
            state = lateness.get(r.student)
            late = [f"-{state.penalty:g}" if state and state.penalty else "0", state.status if state else "-"]
        rows.append([r.student, *cells, f"{r.code_score:g}/{r.max_code_score:g}", *late, r.status])
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(row, widths)) for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for r in results:
        for reason in r.reasons:
            lines.append(f"  {r.student}: {reason}")
        state = (lateness or {}).get(r.student)
        if state is not None and (state.status != "on time" or state.extension is not None):
            lines.append(f"  {r.student}: {state.explanation}")
    return "\n".join(lines)


def plot_scores(results: list[StudentResult], path: Path) -> Path:
    """Stacked bars: each student's autograded points per notebook, against the maximum."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    notebooks = sorted({nb.name for r in results for nb in r.notebooks})
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(results) + 3), 4))
    bottoms = [0.0] * len(results)
    for name in notebooks:
        heights = [next((nb.code_score for nb in r.notebooks if nb.name == name), 0.0) for r in results]
        ax.bar([r.student for r in results], heights, bottom=bottoms, label=name)
        bottoms = [b + h for b, h in zip(bottoms, heights)]
    if results:
        ax.axhline(max(r.max_code_score for r in results), color="k", linestyle="--", linewidth=1, label="maximum")
    ax.set_ylabel("autograded points")
    ax.set_title("Autograded scores by notebook")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def results_from_gradebook(course: Course, assignment: str, students: list[str]) -> list[StudentResult]:
    """Rebuild per-student results after the fact (`coursekit report`): the scores from the gradebook,
    the status and reasons the last `coursekit` run gave (coursekit.outcomes; "graded" when that run's
    autograded notebooks were replaced since). A student that run could not grade at all is listed too."""
    results = []
    for student in students:
        scores: list[NotebookScore] = read_scores(course, assignment, student)
        status, reasons = saved_outcome(course, assignment, student) or ("graded", [])
        if scores or status == "failed":
            results.append(StudentResult(student=student, status=status, reasons=reasons, notebooks=scores))
    return results
