"""The similarity report in a real browser: headless Debian Chromium (Playwright) opens the page from disk.

Builds the synthetic class of tests/coursekit/test_similarity.py, writes the report, and checks what a
person sees: the top pair, the copied answer's pair first in its cell with the matching code
highlighted side by side, student text shown as text (a <script> in a comment never runs), sorting by a
column header, and a heat map that loaded. A screenshot goes to tests/artifacts/ (gitignored).
"""
from __future__ import annotations

import importlib.util
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
            assert "accuses nobody" in page.locator("#notice").inner_text()

            top = page.locator("#top-pairs")
            first = _row_texts(page, top)[0]
            assert {first[1], first[2]} == {"dave", REFERENCE} and int(first[3].rstrip("%")) >= 80

            weights = _row_texts(page, page.locator("#weights"))  # trained differently yet equal: first
            assert weights[0][1] == "Problem 4 surname classifier" and weights[0][3] == "alice, gina"
            assert "worth a look" in weights[0][9]

            heatmap = page.locator("#heatmap")
            assert heatmap.evaluate("img => img.complete && img.naturalWidth > 100")

            cell = page.locator("h3", has_text="rnn_gradients: rnn_layer").locator("xpath=following-sibling::table[1]")
            row = cell.locator("tbody tr").first
            assert {row.locator("td").nth(1).inner_text(), row.locator("td").nth(2).inner_text()} == {"alice", "bob"}
            row.locator("summary").click()
            marks = row.locator("mark")
            assert marks.count() >= 2 and marks.first.is_visible()
            assert 'alert("bob")' in row.locator("pre").nth(1).inner_text()  # shown as text

            top.locator("th", has_text="mean similarity").click()  # ascending: the weaker pair first
            assert {*_row_texts(page, top)[0][1:3]} == {"alice", "bob"}
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "similarity_report.png"), full_page=False)
        finally:
            browser.close()
    assert dialogs == []  # no student text ran as script
