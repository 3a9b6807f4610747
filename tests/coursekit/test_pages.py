"""Pages staff and students open: no active content (coursekit/sanitize.py), no hidden test source
(coursekit/feedback.py), on the tiny course.

Three hostile students are graded once: ``xss`` puts the OWASP-class payloads of
``coursekit.testing.xss`` in a written answer (with attachments and math), a raw cell, and outputs of
every MIME type (in the grading kernel, for the formgrader, and in the submitted notebook, for
feedback); ``leaker`` prints the kernel's input history (base64, hex, reversed, rot13, ``In``, ``_ih``)
after the hidden tests ran and from inside ``add`` while the test cell runs; ``hooker`` registers a
``pre_run_cell`` hook that captures every cell's code and prints it later.
"""
from __future__ import annotations

import base64
import codecs
import html
import re

import nbformat
import pytest
from nbformat.v4 import new_code_cell

from coursekit.course import Course
from coursekit.feedback import generate_feedback
from coursekit.grading import autograde
from coursekit.sanitize import ID_PREFIX, clean_html, clean_page
from coursekit.samples import fill_answers
from coursekit.testing.tiny_course import ASSIGNMENT, make_course
from coursekit.testing.xss import (CLOBBER_PAYLOADS, CLOBBERED, PAYLOADS, active_content, element_names,
                                   payload_html, plant_payloads, scripts_of)


HIDDEN_LINE = "check('hidden-test-marker', add(-5, 2))"  # the tiny course's hidden test (adder.ipynb)
OWN_OUTPUT = "my own run printed 42\n"


def encodings(secret: str) -> dict[str, str]:
    """``secret`` as text filters would miss it: each encoding's part that any text containing it shows."""
    raw = secret.encode()
    found = {"plain": secret, "html-escaped": html.escape(secret), "hex": raw.hex(), "reversed": secret[::-1],
             "rot13": codecs.encode(secret, "rot13")}
    for shift in range(3):  # base64 of a longer text holds one of three alignments of the secret
        found[f"base64+{shift}"] = base64.b64encode(b"\0" * shift + raw).decode()[4:-4]
    return found


def _cell(nb, gid):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == gid)


def _filled(course: Course, name: str) -> nbformat.NotebookNode:
    release = nbformat.read(str(course.folder("release", ASSIGNMENT, f"{name}.ipynb")), as_version=4)
    source = nbformat.read(str(course.folder("source", ASSIGNMENT, f"{name}.ipynb")), as_version=4)
    return fill_answers(release, source)


def _after(nb, gid: str, cell) -> None:
    nb.cells.insert(nb.cells.index(_cell(nb, gid)) + 1, cell)


def xss_adder(course: Course) -> nbformat.NotebookNode:
    return plant_payloads(_filled(course, "adder"), written_answer="why", after_code="add")


LEAK_CODE = """import base64, codecs
history = "\\n".join(In)
print(base64.b64encode(history.encode()).decode())
print(history.encode().hex())
print(history[::-1])
print(codecs.encode(history, "rot13"))
print(_ih)
print(In)
"""


def leaker_adder(course: Course) -> nbformat.NotebookNode:
    nb = _filled(course, "adder")
    _cell(nb, "add").source = ("def add(a, b):\n    print(''.join(In).encode().hex())  # while the test cell runs\n"
                               "    return a + b")
    leak = new_code_cell(LEAK_CODE)
    leak.outputs = [nbformat.v4.new_output("stream", name="stdout", text=OWN_OUTPUT)]
    _after(nb, "test_add", leak)
    return nb


def hooker_adder(course: Course) -> nbformat.NotebookNode:
    nb = _filled(course, "adder")
    _cell(nb, "add").source += ("\ncaptured = []\n"
                                "get_ipython().events.register('pre_run_cell', "
                                "lambda info: captured.append(info.raw_cell))")
    later = new_code_cell("import base64\ncode = '\\n'.join(captured)\n"
                          "print(base64.b64encode(code[::-1].encode()).decode())\nprint(code[::-1])\n"
                          "print(base64.b64encode(code.encode()).decode())")
    _after(nb, "why", later)
    return nb


SHADOW_HTML = ("<div id='test_add'>shadow-1</div><a name='top'>shadow-2</a><span id='user-content-test_add'>shadow-3"
               "</span><p id='Adder'>shadow-4</p><a name='comment-why'>shadow-5</a><b id='why'>shadow-6</b>"
               "<i id='user-content-top'>shadow-7</i><a href='#test_add'>shadow-8</a><a href='#top'>shadow-9</a>")
SHADOW_MARKDOWN = ("# Adder\n\n## test_add\n\n## top\n\n## user-content-Adder\n\n" + SHADOW_HTML +
                   "\n\nBecause $\\frac{a+b}{2} = \\frac{b+a}{2}$.")


def shadow_adder(course: Course) -> nbformat.NotebookNode:
    """Every way to reuse a name the page's own anchors have: ids and names equal to the grade ids,
    ``top`` and the instructor's heading (``# Adder``), already ``user-content-`` ones, headings that
    render to those ids; in a written answer and in HTML outputs (run by the grader, and as submitted)."""
    nb = _filled(course, "adder")
    add = _cell(nb, "add")
    add.source += f"\nfrom IPython.display import HTML, display\ndisplay(HTML({SHADOW_HTML!r}))"
    add.outputs = [nbformat.v4.new_output("display_data", data={"text/html": SHADOW_HTML, "text/plain": "x"})]
    _cell(nb, "why").source = SHADOW_MARKDOWN
    return nb


STUDENTS = {"xss": xss_adder, "leaker": leaker_adder, "hooker": hooker_adder, "shadow": shadow_adder}


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> Course:
    course = Course.open(make_course(tmp_path_factory.mktemp("pages") / "course"))
    course.generate_release(ASSIGNMENT)
    for student, build in STUDENTS.items():
        folder = course.folder("submitted", student, ASSIGNMENT)
        folder.mkdir(parents=True)
        nbformat.write(build(course), str(folder / "adder.ipynb"))
        nbformat.write(_filled(course, "squares"), str(folder / "squares.ipynb"))
    results = autograde(course, ASSIGNMENT, list(STUDENTS))
    assert all(r.status == "graded" for r in results), [(r.student, r.reasons) for r in results]
    assert generate_feedback(course, ASSIGNMENT, list(STUDENTS)) == {s: None for s in STUDENTS}
    return course


def feedback_page(course: Course, student: str) -> str:
    return (course.folder("feedback", student, ASSIGNMENT) / "adder.html").read_text()


def formgrader_page(course: Course, student: str) -> str:
    """The grading page nbgrader's formgrader serves for a submission (its exporter, config and template)."""
    from nbconvert.exporters import HTMLExporter
    from nbgrader.server_extensions.formgrader import handlers
    from traitlets.config import Config

    config = Config(course.config)
    config.HTMLExporter.template_name = "formgrade"
    config.HTMLExporter.extra_template_basedirs = [handlers.template_path]
    resources = {"assignment_id": ASSIGNMENT, "notebook_id": "adder", "submission_id": "s1", "index": 0,
                 "total": 1, "base_url": "", "student": student, "last_name": "", "first_name": "",
                 "notebook_path": "/autograded"}
    page, _ = HTMLExporter(config=config).from_filename(
        str(course.folder("autograded", student, ASSIGNMENT, "adder.ipynb")), resources=resources)
    return page


# --- the sanitiser alone --------------------------------------------------------------------------------

def test_the_checker_sees_the_raw_payloads():
    assert len(active_content(payload_html())) >= 60  # so an empty list below means something


@pytest.mark.parametrize("payload", PAYLOADS)
def test_no_payload_survives_the_sanitiser(payload):
    assert active_content(clean_html(payload)) == []


def test_sanitiser_keeps_text_math_tables_images_and_safe_links():
    kept = clean_html('<p>hover <b>me</b></p><table><tr><td data-sort="2">2</td></tr></table>'
                      '<math><mfrac><mi>a</mi><mi>b</mi></mfrac></math>'
                      '<img src="data:image/png;base64,iVBORw0KGgo=" alt="plot">'
                      '<a href="https://example.org/">w</a><a href="mailto:t@example.org">m</a><a href="#top">t</a>'
                      '<span style="color: red">red</span>')
    for piece in ("hover <b>me</b>", '<td data-sort="2">', "<mfrac>", 'src="data:image/png;base64,',
                  'href="https://example.org/"', 'href="mailto:t@example.org"', 'href="#user-content-top"', "color:red"):
        assert piece in kept
    assert "href" not in clean_html('<a href="../../api/contents">up</a><a href="/formgrader">root</a>')


def test_student_ids_and_anchor_names_live_in_their_own_namespace():
    cleaned = clean_html("\n\n".join(CLOBBER_PAYLOADS))
    names, links = element_names(cleaned)
    assert len(names) >= 8 and all(name.startswith(ID_PREFIX) for name in names), names
    assert set(names).isdisjoint(CLOBBERED)
    assert "#user-content-top" in links  # a link follows its target into the namespace
    assert 'href="adder.html#user-content-test_add"' in clean_html('<a href="adder.html#test_add">s</a>')
    assert 'href="https://example.org/#top"' in clean_html('<a href="https://example.org/#top">s</a>')
    assert str(clean_html(str(cleaned))) == cleaned  # cleaning again changes nothing (no double prefix)
    page = clean_page(f"<html><body><a name='top'></a><a href='#top'>t</a>{CLOBBER_PAYLOADS[0]}</body></html>")
    names, links = element_names(page)
    assert all(name.startswith(ID_PREFIX) for name in names) and set(links) == {"#user-content-top"}


def test_clean_page_keeps_only_the_kits_own_script_and_the_head_styles():
    own = "document.title = 'sorted';"
    page = (f"<html><head><title>x</title><style>body{{color:red}}</style><script>evil()</script></head><body>"
            f"<p>hi</p><script>{own}</script><script>alert('XSS')</script><img src=x onerror=alert(1)>"
            f"<p>&lt;script&gt;{own}&lt;/script&gt;</p></body></html>")
    cleaned = clean_page(page, scripts=[own])
    assert cleaned.count("<script>") == 1 and f"<script>{own}</script>" in cleaned
    assert "body{color:red}" in cleaned and "<p>hi</p>" in cleaned
    assert "evil()" not in cleaned and "alert" not in cleaned
    assert active_content(cleaned, allowed_scripts={("<script>", own)}, allowed_elements={"style", "meta"}) == []


# --- feedback and the formgrader, built from hostile submissions ---------------------------------------

def test_feedback_pages_carry_no_active_content(graded):
    page = feedback_page(graded, "xss")
    assert active_content(page, allowed_elements={"style", "meta"}) == []
    text = html.unescape(page)
    for visible in ("hover", "md-link25", "link12", "math37", "XSS-73"):  # the student's words stay, as text
        assert visible in text, visible
    assert "<math" in page  # math still renders (MathML), without its href


def test_formgrader_view_carries_no_active_content_beyond_its_own_scripts(graded):
    honest = formgrader_page(graded, "hooker")  # same template, no payloads in it
    hostile = formgrader_page(graded, "xss")
    assert "XSS-12" not in honest and "link12" in hostile and "md-link25" in hostile
    template_own = set(active_content(honest, allowed_scripts=scripts_of(honest)))
    found = set(active_content(hostile, allowed_scripts=scripts_of(honest))) - template_own
    assert found == set()


def test_student_markup_cannot_clobber_the_formgrader_pages_names(graded):
    own, _ = element_names(formgrader_page(graded, "hooker"))  # the template's names, no payloads
    names, _ = element_names(formgrader_page(graded, "xss"))
    assert {"user-content-test_add", "user-content-statusmessage", "user-content-document"} <= set(names)
    for name in CLOBBERED:  # the template's own elements (the grade input ``test_add``, ...) stay unique
        assert names.count(name) == own.count(name), name
    template_made = re.compile(r"cell-id=[\w-]+|[0-9a-f]{8}-[0-9a-f-]{27}")  # nbconvert: cell ids, widget divs
    assert [n for n in set(names) - set(own) if not n.startswith(ID_PREFIX) and not template_made.fullmatch(n)] == []


KIT_ANCHORS = ["top", "Adder", "test_add", "why"]  # adder's feedback page: nbgrader's and the instructor's heading


def test_feedback_links_reach_their_anchors_and_student_names_stay_in_their_namespace(graded):
    names, links = element_names(feedback_page(graded, "xss"))
    assert "user-content-statusmessage" in names
    assert [n for n in names if not n.startswith(ID_PREFIX)] == KIT_ANCHORS  # nbgrader's and the heading's, once each
    assert {link[1:] for link in links if link.startswith("#")} <= set(names)  # every in-page link lands


def _lands_on(names: list[str], links: list[str], page_name: str = "adder.html") -> dict[str, str]:
    """Where each in-page link goes: the first element with that id or anchor name (unique names here)."""
    return {link: link.partition("#")[2] for link in links if link.startswith(("#", f"{page_name}#"))}


def test_student_names_cannot_take_or_shadow_the_kits_anchors_in_feedback(graded):
    """The page's own anchors (nbgrader's table of contents, "(Top)", the instructor's heading, the
    summary's links) and the student's names cannot collide: a student id equal to a grade id, ``top``,
    a heading that renders to the instructor's heading id, or an id already in ``user-content-``, all
    stay in the student namespace, and every kit link lands on the kit's anchor."""
    from coursekit.feedback_delivery import write_summaries

    assert write_summaries(graded, ASSIGNMENT, ["shadow"]) == {"shadow": None}  # the summary block, cleaned again
    page = feedback_page(graded, "shadow")
    assert page.count("shadow-") >= 18  # both plantings (output and written answer) are on the page
    names, links = element_names(page)
    kit = [n for n in names if not n.startswith(ID_PREFIX)]
    assert sorted(kit) == sorted([*KIT_ANCHORS, "coursekit-summary"]), kit  # each once, none from the student
    for planted in ("test_add", "top", "Adder", "why", "comment-why"):
        assert names.count(f"{ID_PREFIX}{planted}") >= 2, planted  # the student's, moved aside (output, answer)
    assert f"{ID_PREFIX}user-content-Adder" not in names and names.count(f"{ID_PREFIX}Adder") >= 3  # no double prefix
    kit_links = {link for link in links if not link.partition("#")[2].startswith(ID_PREFIX)}
    assert {"#top", "#test_add", "#why", "#Adder", "adder.html#why"} <= kit_links, kit_links  # why: waits for a grader
    assert {target for target in _lands_on(names, list(kit_links)).values()} <= set(kit)
    student_links = [link for link in links if link not in kit_links]
    assert {"#user-content-test_add", "#user-content-top"} <= set(student_links)  # the student's own links
    assert all(link.partition("#")[2].startswith(ID_PREFIX) for link in student_links)
    summary = (graded.folder("feedback", "shadow", ASSIGNMENT) / "summary.html").read_text()
    assert "adder.html#why" in element_names(summary)[1]
    assert element_names(feedback_page(graded, "shadow")) == (names, links)  # stable: nothing cleaned twice differently


def test_student_names_cannot_take_or_shadow_the_kits_anchors_in_the_formgrader(graded):
    own, _ = element_names(formgrader_page(graded, "hooker"))  # the template's names and the heading's
    names, links = element_names(formgrader_page(graded, "shadow"))
    assert "Adder" in own and own.count("Adder") == 1  # the instructor's heading anchor is the kit's
    template_made = re.compile(r"cell-id=[\w-]+|[0-9a-f]{8}-[0-9a-f-]{27}")
    bare = [n for n in names if not n.startswith(ID_PREFIX) and not template_made.fullmatch(n)]
    assert sorted(bare) == sorted(n for n in own if not n.startswith(ID_PREFIX) and not template_made.fullmatch(n))
    assert names.count(f"{ID_PREFIX}Adder") >= 3 and names.count(f"{ID_PREFIX}test_add") >= 3  # the student's
    assert "#Adder" in links and names.count("Adder") == 1


def test_kit_anchors_are_marked_by_a_secret_the_student_cannot_know():
    from coursekit.sanitize import kit_anchor_mark, mark_kit_anchors

    mark = kit_anchor_mark()
    assert mark != kit_anchor_mark()
    kit = mark_kit_anchors("<h1 id='user-content-top'>t<a href='#user-content-top'>¶</a></h1><a name=\"x\"></a>", mark)
    cleaned = clean_html(kit + "<p id='x'>s</p><p id='kit-user-content-top'>s</p>", kit_mark=mark)
    names, links = element_names(cleaned)
    assert names == ["kit-user-content-top", "x", "user-content-x", "user-content-kit-user-content-top"]
    assert links == ["#kit-user-content-top"] and mark not in cleaned
    assert element_names(clean_html(kit))[0] == [f"user-content-{mark}user-content-top", f"user-content-{mark}x"]


def test_feedback_never_shows_hidden_test_source_whatever_the_student_prints(graded):
    secrets = {**encodings(HIDDEN_LINE), **{f"marker {k}": v for k, v in encodings("hidden-test-marker").items()
                                              if k != "plain"}}
    for student in ("leaker", "hooker"):
        staff = (graded.folder("autograded", student, ASSIGNMENT) / "adder.ipynb").read_text()
        assert any(value in staff for value in secrets.values()), f"{student}'s attack did not run"
        page = feedback_page(graded, student)
        text = html.unescape(re.sub(r"<[^>]+>", "", page))
        leaked = {name for name, value in secrets.items() if value in page or value in text}
        assert leaked == set(), f"{student}'s feedback shows the hidden test as {leaked}"
        assert "All tests in this cell passed" in text  # the verdict comes from the grader
    assert OWN_OUTPUT.strip() in feedback_page(graded, "leaker")  # the outputs the student submitted


# --- math offline ------------------------------------------------------------------------------------------

LOADS = re.compile(r"""<(?:script|link|img|iframe|object|embed|source|video|audio)\b[^>]*?\b(?:src|href|data)\s*=\s*["']?([^"'\s>]+)""", re.I)


def test_feedback_pages_load_nothing_and_show_math_as_mathml(graded):
    """No script, no MathJax, no style sheet link, no resource but ``data:`` images; the written answer's
    math is MathML (coursekit.preprocessors.MathToMathML) the browser renders itself."""
    for name in ("adder.html", "summary.html"):
        page = (graded.folder("feedback", "shadow", ASSIGNMENT) / name).read_text()
        assert "<script" not in page.lower() and "mathjax" not in page.lower() and "cdn" not in page.lower(), name
        assert [url for url in LOADS.findall(page) if not url.startswith("data:image/")] == [], name
    page = feedback_page(graded, "shadow")
    assert "<mfrac>" in page and "\\frac" not in page


def test_formgrader_view_shows_math_as_mathml_and_loads_only_nbgraders_own_files_and_mathjax(graded):
    """The formgrader's view shows the written answer's math as MathML (the kit's Markdown filter), so it
    reads right offline. Still loaded by nbgrader's template: its own scripts and style sheets from the
    formgrader's static folder, and MathJax 2.7.7 from cdnjs (nbgrader's ``{{ mathjax() }}`` takes no
    setting; the kit cannot drop it by configuration): with the math already MathML it has no TeX of a
    Markdown cell left to typeset."""
    page = formgrader_page(graded, "shadow")
    assert "<mfrac>" in page and "\\frac{a+b}" not in page
    outside = {url for url in LOADS.findall(page) if not url.startswith(("/formgrader/static/", "data:image/"))}
    assert outside == {"https://cdnjs.cloudflare.com/ajax/libs/mathjax/2.7.7/latest.js?config=TeX-AMS_CHTML-full,Safe"}
