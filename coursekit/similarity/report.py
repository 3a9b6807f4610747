"""The similarity report: ranked pairs, a heat map and trained-weight groups as one HTML page, and a CSV.

The page is self-contained (inline CSS, a few lines of inline JavaScript to sort tables, the heat map
as an embedded PNG) and escapes every piece of student text. It ranks pairs for a person to look at.
"""
from __future__ import annotations

import base64
import csv
import html
import io
from pathlib import Path

from coursekit.sanitize import clean_page
from coursekit.similarity.code import CellIndex, CodePair
from coursekit.similarity.overall import StudentPair
from coursekit.similarity.settings import SimilaritySettings
from coursekit.similarity.weights import WeightGroup

NOTICE = ("This report ranks pairs of submissions for a person to look at. It accuses nobody: a high rank "
          "is not a finding. Short answers, the course's own skeleton code, well-known idioms and, for "
          "trained weights, the same seed with the same hyperparameters can make honest work look alike.")


def heatmap_png(pairs: list[StudentPair], limit: int) -> tuple[bytes | None, list[str]]:
    """Students x students pair score (the larger share of answered code shared), for the students of the
    most similar pairs."""
    students: list[str] = []
    for pair in pairs:
        for owner in (pair.first, pair.second):
            if owner not in students and len(students) < limit:
                students.append(owner)
    if len(students) < 2:
        return None, students
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    where = {s: i for i, s in enumerate(students)}
    grid = np.zeros((len(students), len(students)))
    for pair in pairs:
        if pair.first in where and pair.second in where:
            grid[where[pair.first], where[pair.second]] = grid[where[pair.second], where[pair.first]] = pair.score
    np.fill_diagonal(grid, np.nan)
    size = min(14.0, 3.0 + 0.22 * len(students))
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(grid, cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(len(students)), students, rotation=90, fontsize=7)
    ax.set_yticks(range(len(students)), students, fontsize=7)
    ax.set_title("share of a student's answered code also in the other's (the larger of the two)")
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue(), students


def highlighted(source: str, spans: list[tuple[int, int]]) -> str:
    """The source as escaped HTML with the matching spans in <mark>."""
    parts, at = [], 0
    for start, end in spans:
        parts.append(html.escape(source[at:start]))
        parts.append(f"<mark>{html.escape(source[start:end])}</mark>")
        at = end
    parts.append(html.escape(source[at:]))
    return "".join(parts)


def _table(table_id: str, headers: list[str], rows: list[str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    return (f'<table class="sortable" id="{table_id}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>")


def _td(text: str, sort_value: float | None = None, raw: bool = False) -> str:
    value = f' data-sort="{sort_value:.6f}"' if sort_value is not None else ""
    return f"<td{value}>{text if raw else html.escape(text)}</td>"


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def write_csv(path: Path, indexes: list[CellIndex], cell_pairs: dict[str, list[CodePair]],
              pairs: list[StudentPair], groups: list[WeightGroup], reference: str) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["kind", "where", "student_a", "student_b", "score", "share_a", "share_b", "note"])
        for p in pairs:
            if p.cells:
                writer.writerow(["students", "all answers", p.first, p.second, f"{p.score:.4f}",
                                 f"{p.share_first:.4f}", f"{p.share_second:.4f}",
                                 f"answers shared: {p.answers_shared} of {p.answers_first} (a), "
                                 f"{p.answers_shared} of {p.answers_second} (b)"])
        for label, pairs in cell_pairs.items():
            for p in pairs:
                writer.writerow(["code", label, p.first.owner, p.second.owner, f"{p.score:.4f}",
                                 f"{p.share_first:.4f}", f"{p.share_second:.4f}",
                                 "identical after normalising" if p.identical else ""])
        for index in indexes:  # groups of three or more identical answers: each member beside the first
            for owners in (g for g in index.identical_groups() if len(g) >= 3):
                anchor = reference if reference in owners else owners[0]
                for owner in owners:
                    if owner != anchor:
                        writer.writerow(["identical", index.cell.label, anchor, owner, "1.0000", "1.0000", "1.0000",
                                         f"identical after normalising, group of {len(owners)}"])
        for g in groups:
            anchor = reference if reference in g.owners else g.owners[0]
            for owner in g.owners:
                if owner != anchor:
                    writer.writerow(["weights", g.slot, anchor, owner, f"{g.min_cosine:.6f}", "", "",
                                     ("exact" if g.exact else f"near, distance <= {g.max_distance:.3g}")
                                     + "; " + g.explanation(reference)])


def _weights_section(groups: list[WeightGroup], reference: str) -> str:
    if not groups:
        return "<p>No two submissions have equal or nearly equal trained weights.</p>"
    rows = []
    ordered = sorted(groups, key=lambda g: (g.concern(reference), g.slot, -len(g.owners), g.owners))
    for number, g in enumerate(ordered, 1):
        owners = _names(g.owners)
        shared = "; ".join(f"{k} = {v}" for k, v in g.shared.items())
        rows.append("<tr>" + _td(str(number), number) + _td(g.slot) + _td(str(len(g.owners)), len(g.owners))
                    + _td(owners) + _td("yes" if reference in g.owners else "no")
                    + _td("exact" if g.exact else f"near ({g.max_distance:.2g})", g.max_distance)
                    + _td(f"{g.min_cosine:.4f}", g.min_cosine) + _td(shared or "nothing")
                    + _td(", ".join(g.differing) or "nothing") + _td(g.explanation(reference)) + "</tr>")
    return _table("weights", ["#", "model", "members", "who", "equals reference", "equal or near (distance)",
                              "min cosine", "shared seed, hyperparameters, versions", "differ in",
                              "what this suggests"], rows)


def _has_something(index: CellIndex, pairs: list[CodePair]) -> bool:
    return bool(pairs) or any(len(g) >= 3 for g in index.identical_groups())


def _cell_section(index: CellIndex, pairs: list[CodePair], number: int, settings: SimilaritySettings) -> str:
    label = index.cell.label
    head = (f"<h3>{html.escape(label)}</h3><p>{len(index.answers)} answers compared, "
            f"{index.skipped_short} too short to compare (under {settings.min_tokens} tokens of their own), "
            f"{len(pairs)} pairs at or above {_pct(settings.min_code_score)}.</p>")
    groups = [g for g in index.identical_groups() if len(g) >= 3]
    if groups:
        items = "".join(f"<li>{len(g)} answers: {html.escape(_names(g))}</li>" for g in groups[:10])
        head += (f"<p>Identical after normalising, in groups of three or more (groups larger than the "
                 f"common-code limit are not listed as pairs):</p><ul class='identical'>{items}</ul>")
    if not pairs:
        return head
    rows = []
    for rank, pair in enumerate(pairs[: settings.pairs_per_cell], 1):
        left, right = index.matching_spans(pair)
        code = (f"<details><summary>side by side</summary><div class='sxs'>"
                f"<div><b>{html.escape(pair.first.owner)}</b><pre>{highlighted(pair.first.source, left)}</pre></div>"
                f"<div><b>{html.escape(pair.second.owner)}</b><pre>{highlighted(pair.second.source, right)}</pre></div>"
                f"</div></details>")
        rows.append("<tr>" + _td(str(rank), rank) + _td(pair.first.owner) + _td(pair.second.owner)
                    + _td(_pct(pair.score), pair.score) + _td(_pct(pair.share_first), pair.share_first)
                    + _td(_pct(pair.share_second), pair.share_second)
                    + _td("yes" if pair.identical else "no") + _td(code, raw=True) + "</tr>")
    return head + _table(f"cell-{number}", ["rank", "student A", "student B", "similarity",
                                            "of A found in B", "of B found in A", "identical after normalising",
                                            "code"], rows)


def _quiet_sections(quiet: list[tuple[CellIndex, int]]) -> str:
    """Cells with no similar pair and no identical group, folded into one line."""
    if not quiet:
        return ""
    items = "".join(f"<li>{html.escape(index.cell.label)}: {len(index.answers)} answers compared, "
                    f"{index.skipped_short} too short</li>" for index, _ in quiet)
    return (f"<details id='quiet-cells'><summary>{len(quiet)} answer cells with no similar pair "
            f"(nothing to compare, or nothing shared above the threshold)</summary><ul>{items}</ul></details>")


def _names(owners: list[str], limit: int = 12) -> str:
    return ", ".join(owners) if len(owners) <= limit else ", ".join(owners[:limit]) + f" and {len(owners) - limit} more"


def _pair_rows(pairs: list[StudentPair], limit: int) -> list[str]:
    rows = []
    for rank, pair in enumerate(pairs[:limit], 1):
        largest = pair.largest
        cells = "; ".join(f"{label} {_pct(score)}" for label, score in pair.cells)
        rows.append("<tr>" + _td(str(rank), rank) + _td(pair.first) + _td(pair.second)
                    + _td(_pct(pair.score), pair.score)
                    + _td(f"{_pct(pair.share_first)} ({pair.answers_shared} of {pair.answers_first} answers)",
                          pair.share_first)
                    + _td(f"{_pct(pair.share_second)} ({pair.answers_shared} of {pair.answers_second} answers)",
                          pair.share_second)
                    + _td(f"{largest[0]} {_pct(largest[1])}" if largest else "none above the threshold",
                          largest[1] if largest else 0.0)
                    + _td(cells or "-") + "</tr>")
    return rows


_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;max-width:110em}
.notice{background:#fff6d6;border:1px solid #e0c060;padding:.8em;font-size:1.05em}
table{border-collapse:collapse;margin:.5em 0 1.5em;max-width:100%}
td,th{border:1px solid #ccc;padding:.25em .5em;vertical-align:top;overflow-wrap:anywhere}
th{background:#eee;cursor:pointer}th:after{content:" \\2195";color:#999}
th[data-dir=desc]:after{content:" \\2193";color:#333}th[data-dir=asc]:after{content:" \\2191";color:#333}
.sxs{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:1em}
@media (max-width:1000px){.sxs{grid-template-columns:minmax(0,1fr)}}
pre{background:#f7f7f7;padding:.5em;font-size:.85em;white-space:pre-wrap;overflow-wrap:anywhere;margin:.2em 0}
img{max-width:100%;height:auto}
mark{background:#ffd54f}.reasons{color:#844}
"""

_SORT_SCRIPT = """
document.querySelectorAll('table.sortable th').forEach(function(th, col){
  th.addEventListener('click', function(){
    var body = th.closest('table').tBodies[0], desc = th.dataset.dir !== 'desc';
    var key = function(row){ var c = row.cells[col]; var v = c.dataset.sort;
      return v !== undefined ? parseFloat(v) : c.textContent.toLowerCase(); };
    Array.from(body.rows).sort(function(a, b){ var x = key(a), y = key(b);
      return (x < y ? -1 : x > y ? 1 : 0) * (desc ? -1 : 1); }).forEach(function(r){ body.appendChild(r); });
    th.parentNode.querySelectorAll('th').forEach(function(h){ delete h.dataset.dir; });
    th.dataset.dir = desc ? 'desc' : 'asc';
  });
});
"""


def render_page(assignment: str, indexes: list[CellIndex], cell_pairs: dict[str, list[CodePair]],
                pairs: list[StudentPair], groups: list[WeightGroup], students: list[str], reasons: list[str],
                settings: SimilaritySettings, reference: str) -> str:
    png, shown = heatmap_png(pairs, settings.heatmap_students)
    top_rows = _pair_rows(pairs, 4 * settings.pairs_per_cell)
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
             f"<title>Similarity report: {html.escape(assignment)}</title><style>{_STYLE}</style></head><body>",
             f"<h1>Similarity report: {html.escape(assignment)}</h1>",
             f"<p class='notice' id='notice'>{html.escape(NOTICE)}</p>",
             f"<p>{len(students)} submissions, {len(indexes)} answer cells; the {html.escape(reference)} takes "
             "part as if it were a student. Skeleton code from the release, comments, layout, strings and "
             "local names do not count (two answers of the same statements in another order are identical); code "
             "that more than "
             f"{_pct(settings.common_share)} of the class (and more than {settings.common_min} submissions) "
             "share is treated as common and does not count either. Similarity of an answer pair is the mean "
             "of the share of each answer's fingerprints found in the other.</p>"]
    if reasons:
        parts.append("<details class='reasons'><summary>" + f"files skipped: {len(reasons)}</summary><ul>"
                     + "".join(f"<li>{html.escape(r)}</li>" for r in reasons) + "</ul></details>")
    parts.append("<h2>Most similar pairs of students</h2><p>For each student of a pair: the share of all the "
                 "code they wrote in their answers that the other student's answers hold too, and how many of "
                 f"their answers are shared (similarity at or above {_pct(settings.min_code_score)}). A copy of "
                 "a few answers by someone who wrote little else reads high for that student. Score: the "
                 "larger of the two shares. Click a column to sort (first click: highest first).</p>")
    parts.append(_table("top-pairs", ["rank", "student A", "student B", "score", "A's code shared",
                                      "B's code shared", "largest shared answer", "shared answers"], top_rows)
                 if top_rows else "<p>No similar pairs.</p>")
    if png is not None:
        parts.append(f"<h2>Heat map</h2><p>The {len(shown)} students of the most similar pairs.</p>"
                     f"<img id='heatmap' alt='heat map of the share of answered code shared' "
                     f"src='data:image/png;base64,{base64.b64encode(png).decode('ascii')}'>")
    parts.append("<h2>Trained weights</h2><p>Groups of submissions whose trained models of one kind are equal "
                 f"or within a relative distance of {settings.near_distance:g} (|a - b| / max(|a|, |b|)); "
                 "groups trained with different seeds or hyperparameters come first. "
                 "Read the shared seed and hyperparameters first: a correct implementation trained with the "
                 "course's seed and recipe is expected to give the reference's weights.</p>")
    parts.append(_weights_section(groups, reference))
    parts.append("<h2>Per answer cell</h2>")
    quiet = []
    for number, index in enumerate(indexes, 1):
        if _has_something(index, cell_pairs[index.cell.label]):
            parts.append(_cell_section(index, cell_pairs[index.cell.label], number, settings))
        else:
            quiet.append((index, number))
    parts.append(_quiet_sections(quiet))
    parts.append(f"<script>{_SORT_SCRIPT}</script></body></html>")
    return "\n".join(parts)


def write_report(out_dir: Path, assignment: str, indexes: list[CellIndex], cell_pairs: dict[str, list[CodePair]],
                 pairs: list[StudentPair], groups: list[WeightGroup], students: list[str], reasons: list[str],
                 settings: SimilaritySettings, reference: str) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    page = out_dir / "index.html"
    html_page = render_page(assignment, indexes, cell_pairs, pairs, groups, students, reasons, settings, reference)
    page.write_text(clean_page(html_page, scripts=[_SORT_SCRIPT]), encoding="utf-8")  # last: coursekit/sanitize.py
    write_csv(out_dir / "pairs.csv", indexes, cell_pairs, pairs, groups, reference)
    return page
