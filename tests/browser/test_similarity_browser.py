"""The similarity report in a real browser: headless Debian Chromium (Playwright) opens the page from disk.

Builds the synthetic class of tests/coursekit/test_similarity.py, writes the report, and checks what a
person sees: the top pair, the copied answer's pair first in its cell with the matching code
highlighted side by side, student text shown as text (a <script> in a comment never runs), sorting by a
column header (first click: highest first), and a heat map that loaded. In a 1,400 px window with
every side-by-side view open, nothing is wider than the window, on that page and on a page of
coursekit.testing.similarity_class with a 400-character line in a copied answer. A screenshot goes to
tests/artifacts/ (gitignored).
"""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from tests.support.browser import launch, require_browser

TESTS = Path(__file__).resolve().parents[1]
ARTIFACTS = TESTS / "artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]


def _module(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# the synthetic class of the similarity tests
similarity_class = _module("_similarity_class", TESTS / "coursekit" / "test_similarity.py")


def _row_texts(page, table) -> list[list[str]]:
    return table.evaluate("t => Array.from(t.tBodies[0].rows).map(r => Array.from(r.cells).map(c => c.innerText))")


def _no_horizontal_overflow(page) -> bool:
    """Every <details> open (side by side shown); the page is no wider than the window."""
    page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; })")
    widths = page.evaluate("[document.documentElement.scrollWidth, document.body.scrollWidth, window.innerWidth]")
    return max(widths[:2]) <= widths[2]


def test_page_with_long_lines_fits_a_1400px_window(tmp_path):
    chromium = require_browser()
    from coursekit.similarity import DEFAULTS, REFERENCE
    from coursekit.similarity.report import write_report
    from coursekit.testing.similarity_class import build_class, ranked_pairs
    from playwright.sync_api import sync_playwright

    synthetic = build_class(0)
    copier, source = synthetic.copies["verbatim"]
    long_line = "    total = " + " + ".join(f"weights[{n}] * inputs[{n}]" for n in range(20)) + "\n"
    for student in (copier, source):
        for grade_id, text in synthetic.answers[student].items():
            synthetic.answers[student][grade_id] = text + long_line
    indexes, cell_pairs, pairs = ranked_pairs(synthetic)
    page_path = write_report(tmp_path, "synthetic", indexes, cell_pairs, pairs, [], list(synthetic.answers), [],
                             DEFAULTS, REFERENCE)
    assert len(long_line) > 400 and "weights[19] * inputs[19]" in re.sub(r"<[^>]+>", "", page_path.read_text())
    with sync_playwright() as playwright:
        browser = launch(playwright, chromium)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(page_path.as_uri())
            assert _no_horizontal_overflow(page)
            pre = page.locator("pre", has_text="weights[19]").first
            assert pre.is_visible() and pre.evaluate("p => p.getBoundingClientRect().right") <= 1400
        finally:
            browser.close()


def test_report_page_shows_the_top_pair(tmp_path):
    chromium = require_browser()
    from coursekit.similarity import REFERENCE, similarity_report
    from playwright.sync_api import sync_playwright

    course = similarity_class.build_class(tmp_path / "course")
    result = similarity_report(course, "hw6", reference_log=course.root / "instructor_log.json", progress=False)
    dialogs: list[str] = []
    with sync_playwright() as playwright:
        browser = launch(playwright, chromium)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.goto(result.page.as_uri())
            assert "accuses nobody" in page.locator("#user-content-notice").inner_text()

            top = page.locator("#user-content-top-pairs")
            # alice and bob each wrote one answer, and it is shared: 100 % of their code; dave copied the
            # instructor's solution everywhere but one answer
            first, second = _row_texts(page, top)[:2]
            assert {first[1], first[2]} == {"alice", "bob"} and first[3] == "100%"
            assert "100% (1 of 1 answers)" in first[4] and "rnn_gradients: rnn_layer" in first[6]
            assert {second[1], second[2]} == {"dave", REFERENCE} and int(second[3].rstrip("%")) >= 80

            weights = _row_texts(page, page.locator("#user-content-weights"))  # trained differently yet equal: first
            assert weights[0][1] == "Problem 4 surname classifier" and weights[0][3] == "alice, gina"
            assert "worth a look" in weights[0][9]

            heatmap = page.locator("#user-content-heatmap")
            assert heatmap.evaluate("img => img.complete && img.naturalWidth > 100")

            cell = page.locator("h3", has_text="rnn_gradients: rnn_layer").locator("xpath=following-sibling::table[1]")
            row = cell.locator("tbody tr").first
            assert {row.locator("td").nth(1).inner_text(), row.locator("td").nth(2).inner_text()} == {"alice", "bob"}
            row.locator("summary").click()
            marks = row.locator("mark")
            assert marks.count() >= 2 and marks.first.is_visible()
            assert 'alert("bob")' in row.locator("pre").nth(1).inner_text()  # shown as text

            rows = _row_texts(page, top)
            top.locator("th", has_text="rank").click()  # first click: highest first
            assert [int(r[0]) for r in _row_texts(page, top)] == sorted((int(r[0]) for r in rows), reverse=True)
            top.locator("th", has_text="rank").click()  # second click: back to lowest first
            assert [int(r[0]) for r in _row_texts(page, top)] == sorted(int(r[0]) for r in rows)
            assert _no_horizontal_overflow(page)
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "similarity_report.png"), full_page=False)
        finally:
            browser.close()
    assert dialogs == []  # no student text ran as script
