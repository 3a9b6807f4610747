"""The kit's anchors in Chromium: a page cleaned by ``coursekit.sanitize.clean_page`` with kit anchors
marked (as feedback pages are) and a student's elements that reuse their names, placed first. Clicking a
kit link must land on the kit's anchor, clicking the student's link on the student's element: a browser
prefers an element's id to an anchor's name, which is how a student took nbgrader's table of contents."""
from __future__ import annotations

import pytest

from coursekit.sanitize import clean_page, kit_anchor_mark, mark_kit_anchors
from tests.support.browser import launch, require_browser

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

STUDENT = ("<div id='test_add'>student-1</div><span id='user-content-test_add'>student-2</span>"
           "<i id='top'>student-3</i><h2 id='Adder'>student-4</h2><a href='#test_add'>student-link</a>")


def page_with_kit_anchors() -> str:
    """nbgrader's feedback layout in miniature: the "top" anchor first, the student's answer, then the
    instructor's heading and nbgrader's anchor for the test cell, and the kit's links to them."""
    mark = kit_anchor_mark()
    kit_top = mark_kit_anchors('<a name="top"></a>', mark)
    kit_links = mark_kit_anchors('<p><a href="#test_add">toc-test</a> <a href="#Adder">toc-heading</a></p>', mark)
    kit_body = mark_kit_anchors('<h1 id="Adder">kit-heading</h1><a name="test_add"></a><p>kit-test-cell</p>'
                                '<a href="#top">(Top)</a>', mark)
    spacer = "<p>" + "<br>" * 400 + "</p>"  # so every jump scrolls
    return clean_page(f"<html><head><title>t</title></head><body>{kit_top}{kit_links}{STUDENT}{spacer}"
                      f"{kit_body}{spacer}</body></html>", kit_mark=mark)


def test_kit_links_land_on_kit_anchors_and_student_links_on_student_elements(tmp_path):
    from playwright.sync_api import sync_playwright

    chromium = require_browser()
    path = tmp_path / "adder.html"
    path.write_text(page_with_kit_anchors())
    with sync_playwright() as playwright:
        browser = launch(playwright, chromium)
        try:
            page = browser.new_page()
            page.goto(path.as_uri())

            def lands(link_text: str) -> str:
                page.click(f"text={link_text}")
                page.wait_for_timeout(100)
                return page.evaluate("""() => {
                    const name = decodeURIComponent(location.hash.slice(1));
                    const found = document.getElementById(name) || document.getElementsByName(name)[0];
                    return (found.textContent || found.nextElementSibling.textContent).trim();
                }""")

            assert lands("toc-test") == "kit-test-cell"  # nbgrader's anchor, not the student's div
            assert lands("toc-heading") == "kit-heading"  # the instructor's heading, not the student's
            assert lands("(Top)") == "toc-test toc-heading"  # the page's top, not the student's <i id=top>
            assert lands("student-link") == "student-1"  # the student's own link stays among the student's names
        finally:
            browser.close()
