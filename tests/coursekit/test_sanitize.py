"""The feedback exporter (coursekit/sanitize.py) compiles nbconvert's templates once per process: a second
exporter renders the same page without compiling anything, and a changed template is compiled again.
(What the pages may carry is tested in test_pages.py.)"""
from __future__ import annotations

import copy

import jinja2
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from coursekit import sanitize


NOTEBOOK = new_notebook(cells=[new_markdown_cell("# Title\nSome *text*."),
                               new_code_cell("print(1)", outputs=[new_output("stream", name="stdout", text="1\n")])])


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
