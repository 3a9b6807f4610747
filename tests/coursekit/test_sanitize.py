"""The feedback exporter (coursekit/sanitize.py) compiles nbconvert's templates once per process: a second
exporter renders the same page without compiling anything, and a changed template is compiled again. It
skips nbconvert's BeautifulSoup pass and still writes the page nbconvert's exporter would, images' alt text
included. (What the pages may carry is tested in test_pages.py.)"""
from __future__ import annotations

import copy
import re

import jinja2
import pytest
from bs4 import BeautifulSoup
from nbconvert.exporters import HTMLExporter
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from coursekit import sanitize


PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
NOTEBOOK = new_notebook(cells=[
    new_markdown_cell("# Title\nSome *text*. ![a described pixel](data:image/png;base64," + PIXEL + ")\n\n"
                      '<img src="data:image/png;base64,' + PIXEL + '" width="1">'),
    new_code_cell("print(1)", outputs=[new_output("stream", name="stdout", text="1\n"),
                                       new_output("display_data", data={"image/png": PIXEL})])])


def page() -> str:
    body, _ = sanitize.SanitizedHTMLExporter().from_notebook_node(copy.deepcopy(NOTEBOOK))
    return body


@pytest.fixture
def fresh_cache(monkeypatch):
    cache = sanitize.TemplatesCompiledOnce()
    monkeypatch.setattr(sanitize, "COMPILED_TEMPLATES", cache)
    return cache


def test_a_second_exporter_compiles_no_template_and_renders_the_same_page(fresh_cache, monkeypatch):
    first = page()
    assert fresh_cache.compiled  # the first exporter compiled nbconvert's templates and kept them

    def no_compiling(*args, **kwargs):
        raise AssertionError("a template was compiled again")

    monkeypatch.setattr(jinja2.Environment, "compile", no_compiling)
    assert page() == first


def test_a_changed_template_is_compiled_again(fresh_cache):
    def render(source: str) -> str:  # a new environment each time, as each exporter has
        environment = jinja2.Environment(loader=jinja2.DictLoader({"page.j2": source}),
                                         bytecode_cache=fresh_cache)
        return environment.get_template("page.j2").render(name="x")

    assert render("first {{ name }}") == "first x"
    assert render("first {{ name }}") == "first x"
    assert render("changed {{ name }}") == "changed x"


def canonical(page: str) -> str:
    """A page as a parser sees it (attribute order and whitespace between tags do not count)."""
    return re.sub(r">\s+<", "><", str(BeautifulSoup(page, "html.parser")))


def test_the_page_is_nbconverts_with_alt_text_for_every_image():
    ours = page()
    nbconvert_page, resources = HTMLExporter().from_notebook_node(copy.deepcopy(NOTEBOOK))
    assert canonical(ours) == canonical(sanitize.clean_page(nbconvert_page))
    alts = [img.get("alt") for img in BeautifulSoup(ours, "html.parser").find_all("img")]
    assert alts == ["a described pixel", sanitize.MISSING_ALT, sanitize.MISSING_ALT]
