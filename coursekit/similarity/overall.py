"""How much of each student's answered code a pair of students shares: the page's headline per pair.

A student's written code is the fingerprints of every answer they wrote that was compared (long enough
after removing the release's skeleton), common code included. A pair's shared code is, over every
answer cell, the fingerprints the two have in common (all of an answer that is identical after
normalising). Each student's share is shared / written, so a verbatim copy of three answers by a student
who wrote nothing else reads 100 % for that student, not 3/21 of a mean over every cell. The pair's
score is the larger of the two shares. An answer is "shared" when its cell lists the pair (its
similarity is at least ``min_code_score``).
"""
from __future__ import annotations

import heapq
from collections import defaultdict
from dataclasses import dataclass, field

from coursekit.similarity.code import CellIndex, CodePair


@dataclass
class StudentPair:
    first: str
    second: str
    shared_first: int             # fingerprints of first's answers that second's hold too, every cell
    shared_second: int
    written_first: int            # fingerprints of first's answers
    written_second: int
    answers_first: int            # answers first wrote (compared)
    answers_second: int
    cells: list[tuple[str, float]] = field(default_factory=list)  # listed cells, most similar first

    @property
    def share_first(self) -> float:
        return self.shared_first / self.written_first if self.written_first else 0.0

    @property
    def share_second(self) -> float:
        return self.shared_second / self.written_second if self.written_second else 0.0

    @property
    def score(self) -> float:
        return max(self.share_first, self.share_second)

    @property
    def answers_shared(self) -> int:
        return len(self.cells)

    @property
    def largest(self) -> tuple[str, float] | None:
        return self.cells[0] if self.cells else None


class PairTotals:
    """Sums each pair's shared fingerprints cell by cell (``add`` right after ``CellIndex.pairs``, so that
    only one cell's pair counts are held at a time)."""

    def __init__(self) -> None:
        self.written: dict[str, int] = defaultdict(int)
        self.answers: dict[str, int] = defaultdict(int)
        self.shared: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
        self.cells: dict[tuple[str, str], list[tuple[str, float]]] = defaultdict(list)

    def add(self, index: CellIndex, listed: list[CodePair]) -> None:
        for answer in index.answers:
            self.written[answer.owner] += answer.size
            self.answers[answer.owner] += 1
        for (a, b), (of_a, of_b) in index.shared.items():
            key, counts = ((a, b), (of_a, of_b)) if a <= b else ((b, a), (of_b, of_a))
            self.shared[key][0] += counts[0]
            self.shared[key][1] += counts[1]
        for pair in listed:
            a, b = sorted((pair.first.owner, pair.second.owner))
            self.cells[(a, b)].append((index.cell.label, pair.score))

    def pairs(self, limit: int | None = None) -> list[StudentPair]:
        """The pairs that share anything (the ``limit`` highest), highest score first."""
        def score(item) -> float:
            (a, b), (of_a, of_b) = item
            return max(of_a / self.written[a] if self.written[a] else 0.0,
                       of_b / self.written[b] if self.written[b] else 0.0)

        items = self.shared.items() if limit is None else heapq.nlargest(limit, self.shared.items(), key=score)
        found = [StudentPair(a, b, count[0], count[1], self.written[a], self.written[b], self.answers[a],
                             self.answers[b], sorted(self.cells.get((a, b), []), key=lambda c: -c[1]))
                 for (a, b), count in items]
        return sorted(found, key=lambda p: (-p.score, -p.answers_shared, p.first, p.second))


def student_pairs(indexes: list[CellIndex], cell_pairs: dict[str, list[CodePair]]) -> list[StudentPair]:
    """Pairs over every cell of indexes whose ``pairs()`` have run (cell_pairs: label -> listed pairs)."""
    totals = PairTotals()
    for index in indexes:
        totals.add(index, cell_pairs.get(index.cell.label, []))
    return totals.pairs()
