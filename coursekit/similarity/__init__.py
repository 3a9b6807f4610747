"""Similarity report: which submissions share code or trained weights (for a person to look at).

``similarity_report(course, assignment)`` reads the submissions (code.py: answer cells, weights.py:
trained models, collect.py: where they are), and writes ``reports/similarity/index.html`` and
``pairs.csv`` (report.py). Settings and their defaults: settings.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from coursekit.course import Course
from coursekit.similarity.code import CodePair
from coursekit.similarity.collect import REFERENCE, collect
from coursekit.similarity.overall import PairTotals, StudentPair
from coursekit.similarity.report import write_report
from coursekit.similarity.settings import DEFAULTS, SimilaritySettings
from coursekit.similarity.weights import WeightGroup, weight_groups

__all__ = ["SimilarityResult", "StudentPair", "similarity_report", "SimilaritySettings", "DEFAULTS", "REFERENCE"]


@dataclass
class SimilarityResult:
    page: Path
    cell_pairs: dict[str, list[CodePair]]   # cell label -> pairs, most similar first
    pairs: list[StudentPair]                # over every answer cell, most similar first (student_pairs_kept)
    weight_groups: list[WeightGroup]
    reasons: list[str]
    students: list[str]


def similarity_report(course: Course, assignment: str, settings: SimilaritySettings = DEFAULTS, *,
                      out_dir: Path | None = None, students: list[str] | None = None,
                      reference_log: Path | None = None, reference_records: Path | None = None,
                      progress: bool = True) -> SimilarityResult:
    """Compare every submission's answers and trained weights; write the page and the CSV."""
    found = collect(course, assignment, settings, students=students, reference_log=reference_log,
                    reference_records=reference_records, progress=progress)
    cell_pairs, totals = {}, PairTotals()
    for index in found.indexes:
        cell_pairs[index.cell.label] = index.pairs()
        totals.add(index, cell_pairs[index.cell.label])
        index.shared = {}  # summed into totals: one cell's pair counts at a time
    pairs = totals.pairs(settings.student_pairs_kept)
    groups = weight_groups(found.models, settings)
    out_dir = out_dir or course.root / "reports" / "similarity"
    page = write_report(out_dir, assignment, found.indexes, cell_pairs, pairs, groups, found.students,
                        found.reasons, settings, REFERENCE)
    return SimilarityResult(page, cell_pairs, pairs, groups, found.reasons, found.students)
