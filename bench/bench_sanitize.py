"""Page sanitiser benchmark: what the kit's allow-list (coursekit/sanitize.py) adds to rendering a page.

Each notebook is rendered to HTML three ways, side by side in one process, ``--rounds`` times each
(median kept): ``none`` (nbconvert's HTMLExporter, no sanitising), ``bleach`` (the kit's former setting:
``sanitize_html`` plus nbconvert's ``SanitizeHTML`` preprocessor), ``formgrader`` (the course's
nbgrader_config.py: the kit's ``markdown2html`` and ``clean_html`` filters clean every fragment) and
``feedback`` (``SanitizedHTMLExporter``: ``clean_page`` over the whole page). Times are CPU seconds of this process (``time.process_time``):
on a shared machine wall time mostly measures the other jobs. The column that answers "what does the
sanitiser add" is ``in the sanitiser``: the CPU time spent inside ``coursekit.sanitize`` (every
``clean_html`` call and ``clean_page``) during the ``kit`` render, timed around those calls. Notebooks: the six hw6 source notebooks (rich Markdown and math,
no outputs), the tiny course's adder notebook with every payload of ``coursekit.testing.xss`` planted,
and a synthetic notebook of 200 cells, each with a 50-row HTML table and a Markdown output.

    .venv/bin/python bench/bench_sanitize.py [--rounds 5]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import coursekit.sanitize as sanitize

import nbformat
from nbconvert.exporters import HTMLExporter
from traitlets.config import Config

from coursekit.course import Course
from coursekit.preprocessors.math_to_mathml import MathToMathML
from coursekit.samples import fill_answers
from coursekit.sanitize import SanitizedHTMLExporter
from coursekit.testing.courses import home_course, source_dir
from coursekit.testing.tiny_course import adder_notebook
from coursekit.testing.xss import plant_payloads


def exporters() -> dict[str, HTMLExporter]:
    """The three ways a page is rendered; MathToMathML runs in each (it is not part of the sanitiser)."""
    kit = Config(home_course().config)  # the course's nbgrader_config.py: filters, sanitize_html
    none = Config({"HTMLExporter": {"sanitize_html": False}})
    bleach = Config({"HTMLExporter": {"sanitize_html": True,
                                      "preprocessors": ["nbconvert.preprocessors.sanitize.SanitizeHTML"]}})
    out = {"none": HTMLExporter(config=none), "bleach": HTMLExporter(config=bleach),
           "formgrader": HTMLExporter(config=kit), "feedback": SanitizedHTMLExporter(config=kit)}
    for exporter in out.values():
        exporter.register_preprocessor(MathToMathML, enabled=True)
    return out


def table_notebook(cells: int = 200, rows: int = 50) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    table = "<table><thead><tr><th>i</th><th>loss</th></tr></thead><tbody>" + "".join(
        f"<tr><td>{i}</td><td style='color: #333'>{i / 7:.4f}</td></tr>" for i in range(rows)) + "</tbody></table>"
    for i in range(cells):
        cell = nbformat.v4.new_code_cell(f"show({i})")
        cell.outputs = [nbformat.v4.new_output("display_data", data={"text/html": table,
                                                                     "text/plain": "table"}),
                        nbformat.v4.new_output("display_data", data={"text/markdown": f"**step {i}**: $x_{i}$"})]
        nb.cells.append(cell)
    return nb


def notebooks() -> dict[str, nbformat.NotebookNode]:
    out = {path.stem: nbformat.read(str(path), as_version=4) for path in sorted(source_dir().glob("*.ipynb"))}
    adder = adder_notebook()
    out["tiny adder + all payloads"] = plant_payloads(fill_answers(adder, adder_notebook()), "why", "add")
    out["200 HTML-table outputs"] = table_notebook()
    return out


class Timed:
    """Wraps the sanitiser's entry points and adds up the time spent in them."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._cleaner, self._clean_page = sanitize._CLEANER, sanitize.clean_page
        timed = self

        class Cleaner:
            def clean(self, html: str) -> str:
                started = time.process_time()
                try:
                    return timed._cleaner.clean(html)
                finally:
                    timed.seconds += time.process_time() - started

        def clean_page(page: str, scripts=()) -> str:
            started, inner = time.process_time(), timed.seconds
            try:
                return timed._clean_page(page, scripts)
            finally:  # clean_page's own regex work plus its clean_html call, counted once
                timed.seconds = inner + (time.process_time() - started)

        sanitize._CLEANER, sanitize.clean_page = Cleaner(), clean_page


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    ways = exporters()
    timer = Timed()
    print("| notebook | cells | none | bleach (former) | formgrader | feedback | in the sanitiser: formgrader "
          "| in the sanitiser: feedback |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    worst = 0.0
    for name, nb in notebooks().items():
        times: dict[str, list[float]] = {way: [] for way in ways}
        inside: dict[str, list[float]] = {"formgrader": [], "feedback": []}
        for _ in range(args.rounds):
            for way, exporter in ways.items():  # interleaved: the same load on each
                timer.seconds = 0.0
                started = time.process_time()
                exporter.from_notebook_node(nbformat.from_dict(nb), resources={})
                times[way].append(time.process_time() - started)
                if way in inside:
                    inside[way].append(timer.seconds)
        med = {way: statistics.median(t) for way, t in times.items()}
        own = {way: statistics.median(t) for way, t in inside.items()}
        worst = max(worst, *own.values())
        print(f"| {name} | {len(nb.cells)} | {med['none']:.3f} s | {med['bleach']:.3f} s | {med['formgrader']:.3f} s "
              f"| {med['feedback']:.3f} s | {own['formgrader']:.4f} s | {own['feedback']:.4f} s |")
    print(f"\nlargest CPU time in the sanitiser per notebook: {worst:.4f} s (load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
