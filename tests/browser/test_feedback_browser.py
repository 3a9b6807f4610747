"""A feedback page built from a hostile submission, opened in Chromium: none of the payloads runs.

The student plants the OWASP-class payloads of ``coursekit.testing.xss`` in a written answer, a raw
cell, attachments, math and outputs of every MIME type; the page is generated the way students get it
(autograde, then feedback). In the browser we listen for dialogs (every payload calls ``alert``), read
``window.xssRan``, count requests that leave the page, then hover over, focus and click every element
(links included) and look again.
"""
from __future__ import annotations

import nbformat
import pytest

from coursekit.course import Course
from coursekit.feedback import generate_feedback
from coursekit.grading import autograde
from coursekit.samples import fill_answers
from coursekit.testing.tiny_course import ASSIGNMENT, make_course
from coursekit.testing.xss import plant_payloads
from tests.support.browser import launch, require_browser

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(420)]


@pytest.fixture
def feedback_page(tmp_path):
    course = Course.open(make_course(tmp_path / "course"))
    course.generate_release(ASSIGNMENT)
    folder = course.folder("submitted", "mallory", ASSIGNMENT)
    folder.mkdir(parents=True)
    for name in course.source_notebooks(ASSIGNMENT):
        release = nbformat.read(str(course.folder("release", ASSIGNMENT, f"{name}.ipynb")), as_version=4)
        source = nbformat.read(str(course.folder("source", ASSIGNMENT, f"{name}.ipynb")), as_version=4)
        nb = fill_answers(release, source)
        if name == "adder":
            nb = plant_payloads(nb, written_answer="why", after_code="add")
        nbformat.write(nb, str(folder / f"{name}.ipynb"))
    autograde(course, ASSIGNMENT, ["mallory"])
    assert generate_feedback(course, ASSIGNMENT, ["mallory"]) == {"mallory": None}
    return course.folder("feedback", "mallory", ASSIGNMENT) / "adder.html"


def test_no_payload_runs_in_a_feedback_page(feedback_page):
    from playwright.sync_api import sync_playwright

    chromium = require_browser()
    url = feedback_page.as_uri()
    with sync_playwright() as playwright:
        browser = launch(playwright, chromium)
        try:
            page = browser.new_page()
            dialogs, requests, errors = [], [], []
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.on("request", lambda request: requests.append(request.url) if request.url != url else None)
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(url)
            page.wait_for_load_state("load")
            assert "link12" in page.inner_text("body") and "hover" in page.inner_text("body")  # the text is there
            page.wait_for_timeout(1000)
            # every element hovered and focused; everything clickable clicked, except plain web and mail
            # links (allowed: they only navigate when a person follows them)
            touched = page.evaluate("""() => {
                let n = 0;
                for (const e of document.querySelectorAll('body *')) {
                    for (const type of ['mouseover', 'mouseenter', 'focus', 'animationstart', 'toggle'])
                        e.dispatchEvent(new Event(type));
                    const href = e.getAttribute('href') || '';
                    if (!/^(https?:|mailto:)/i.test(href.trim())) { try { e.click(); } catch (err) {} }
                    n += 1;
                }
                return n;
            }""")
            assert touched > 100
            page.wait_for_timeout(1000)
            assert page.url.split("#")[0] == url  # no click left the page
            assert dialogs == [], dialogs
            assert page.evaluate("() => window.xssRan") is None
            assert not [r for r in requests if not r.startswith("data:")], requests  # nothing fetched
        finally:
            browser.close()
