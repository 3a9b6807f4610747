"""Page sanitiser benchmark: what the kit's allow-list (coursekit/sanitize.py) adds to rendering a page,
the current sanitiser side by side with a previous one (``--old``, taken from git).

Each notebook is rendered to HTML ``--rounds`` times each way, interleaved in one process (median kept):
``none`` (nbconvert's HTMLExporter, no sanitising), ``bleach`` (the kit's first setting: ``sanitize_html``
plus nbconvert's ``SanitizeHTML`` preprocessor), ``export`` (the course's nbgrader_config.py with
nbconvert's lab template, as ``jupyter nbconvert --to html`` in the course: the ``markdown2html`` and
``clean_html`` filters clean every fragment, code cells too), ``formgrader`` (the same configuration with
nbgrader's ``formgrade`` template, the page the formgrader serves: it cleans outputs and Markdown, and
shows code through Pygments without ``clean_html``) and ``feedback`` (``SanitizedHTMLExporter``:
``clean_page`` over the whole page), the last three once with the old and once with the current
``coursekit/sanitize.py``. Times are CPU seconds of this process
(``time.process_time``): on a shared machine wall time mostly measures the other jobs. The columns that
answer "what does the sanitiser add" are ``in the sanitiser``: CPU time spent inside the sanitiser
module (every ``clean_html`` call and ``clean_page``) during those renders, timed around its calls.
Notebooks: the six hw6 source notebooks (rich Markdown and math, no outputs), the tiny course's adder
notebook with every payload of ``coursekit.testing.xss`` planted, and the stress page: 200 cells, each
with a 50-row HTML table (563 KB of HTML) and a Markdown output.

    .venv/bin/python bench/bench_sanitize.py [--rounds 3] [--old COMMIT] [--only NAME]
"""
from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import nbformat
from nbconvert.exporters import HTMLExporter
from traitlets.config import Config

import coursekit.sanitize
from coursekit.preprocessors.math_to_mathml import MathToMathML
from coursekit.samples import fill_answers
from coursekit.testing.courses import home_course, source_dir
from coursekit.testing.tiny_course import adder_notebook
from coursekit.testing.xss import plant_payloads

from old_module import load_old  # bench/ is this script's folder

REPO = Path(__file__).resolve().parents[1]
OLD_DEFAULT = "774c8ba"  # main before the kit anchors apart from student ids (issue 19 gaps)


class Timed:
    """Wraps a sanitiser module's entry points (in the module, so its own calls are timed too) and adds
    up the CPU time spent in them; a ``clean_html`` inside ``clean_page`` is counted once."""

    def __init__(self, module: ModuleType) -> None:
        self.seconds = 0.0
        clean_html, clean_page = module.clean_html, module.clean_page
        timed = self

        def timed_clean_html(fragment, **options):
            started = time.process_time()
            try:
                return clean_html(fragment, **options)
            finally:
                timed.seconds += time.process_time() - started

        def timed_clean_page(page: str, scripts=(), **options) -> str:
            started, inner = time.process_time(), timed.seconds
            try:
                return clean_page(page, scripts, **options)
            finally:
                timed.seconds = inner + (time.process_time() - started)

        module.clean_html, module.clean_page = timed_clean_html, timed_clean_page


def exporters(modules: dict[str, ModuleType]) -> dict[str, HTMLExporter]:
    """Every way a page is rendered; MathToMathML runs in each (it is not part of the sanitiser)."""
    course = Config(home_course().config)  # the course's nbgrader_config.py: filters, sanitize_html
    none = Config({"HTMLExporter": {"sanitize_html": False}})
    bleach = Config({"HTMLExporter": {"sanitize_html": True,
                                      "preprocessors": ["nbconvert.preprocessors.sanitize.SanitizeHTML"]}})
    from nbgrader.server_extensions.formgrader import handlers

    out = {"none": HTMLExporter(config=none), "bleach": HTMLExporter(config=bleach)}
    for version, module in modules.items():
        kit = copy.deepcopy(course)
        kit.HTMLExporter.filters = {"markdown2html": module.markdown2html, "clean_html": module.clean_html}
        out[f"export {version}"] = HTMLExporter(config=kit)
        formgrade = copy.deepcopy(kit)  # as nbgrader's formgrader sets up its exporter
        formgrade.HTMLExporter.template_name = "formgrade"
        formgrade.HTMLExporter.extra_template_basedirs = [handlers.template_path]
        out[f"formgrader {version}"] = HTMLExporter(config=formgrade)
        out[f"feedback {version}"] = module.SanitizedHTMLExporter(config=kit)
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
    out["200 HTML-table outputs (stress)"] = table_notebook()
    return out


FORMGRADE_RESOURCES = {"assignment_id": "hw6", "notebook_id": "nb", "submission_id": "s1", "index": 0, "total": 1,
                       "base_url": "", "student": "s", "last_name": "", "first_name": "", "notebook_path": "/autograded"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--old", default=OLD_DEFAULT, help="git commit of the sanitiser to compare with")
    parser.add_argument("--only", help="only notebooks whose name contains this")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        modules = {"old": load_old(args.old, "coursekit/sanitize.py", Path(folder)), "new": coursekit.sanitize}
        timers = {version: Timed(module) for version, module in modules.items()}
        ways = exporters(modules)
        print(f"| notebook | cells | none | bleach (first) | formgrader | feedback | in the sanitiser: export, "
              f"old ({args.old}) | new | formgrader, old | new | feedback, old | new |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        worst = {"old": 0.0, "new": 0.0}
        worst_export = {"old": 0.0, "new": 0.0}
        for name, nb in notebooks().items():
            if args.only and args.only not in name:
                continue
            times: dict[str, list[float]] = {way: [] for way in ways}
            inside: dict[str, list[float]] = {way: [] for way in ways if " " in way}
            for _ in range(args.rounds):
                for way, exporter in ways.items():  # interleaved: the same load on each
                    timer = timers[way.split()[-1]] if way in inside else None
                    if timer:
                        timer.seconds = 0.0
                    started = time.process_time()
                    resources = dict(FORMGRADE_RESOURCES) if way.startswith("formgrader") else {}
                    exporter.from_notebook_node(nbformat.from_dict(nb), resources=resources)
                    times[way].append(time.process_time() - started)
                    if timer:
                        inside[way].append(timer.seconds)
            med = {way: statistics.median(t) for way, t in times.items()}
            own = {way: statistics.median(t) for way, t in inside.items()}
            for version in worst:
                worst[version] = max(worst[version], own[f"formgrader {version}"], own[f"feedback {version}"])
                worst_export[version] = max(worst_export[version], own[f"export {version}"])
            print(f"| {name} | {len(nb.cells)} | {med['none']:.3f} s | {med['bleach']:.3f} s "
                  f"| {med['formgrader new']:.3f} s | {med['feedback new']:.3f} s "
                  f"| {own['export old']:.4f} s | {own['export new']:.4f} s "
                  f"| {own['formgrader old']:.4f} s | {own['formgrader new']:.4f} s "
                  f"| {own['feedback old']:.4f} s | {own['feedback new']:.4f} s |", flush=True)
    print(f"\nlargest CPU time in the sanitiser per notebook, formgrader view and feedback page: old "
          f"{worst['old']:.4f} s, new {worst['new']:.4f} s; nbconvert export: old {worst_export['old']:.4f} s, "
          f"new {worst_export['new']:.4f} s (load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
