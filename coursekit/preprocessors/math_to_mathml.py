"""MathToMathML: LaTeX math in Markdown cells becomes MathML, so feedback pages show it offline.

nbconvert's pages load MathJax from a CDN; a student reading feedback without network (or behind a
filter) would see raw ``$\\frac{a}{b}$``. Browsers render MathML natively, so converting at export time
(with latex2mathml) makes the page self-contained. Code spans and fenced code are left alone; math that
does not convert stays as it was.
"""
from __future__ import annotations

import re
from typing import Any

from latex2mathml.converter import convert
from nbformat import NotebookNode
from nbgrader.preprocessors import NbGraderPreprocessor

CODE = re.compile(r"(```.*?```|~~~.*?~~~|`[^`\n]*`)", re.S)
MATH = re.compile(r"\$\$(.+?)\$\$|(?<![\\$])\$(?!\s)([^$\n]+?)(?<!\s)\$(?!\d)", re.S)


def _mathml(match: re.Match[str]) -> str:
    display, inline = match.group(1), match.group(2)
    try:
        return convert(display.strip(), display="block") if display is not None else convert(inline)
    except Exception:  # latex2mathml does not know every macro: keep the source
        return match.group(0)


def math_to_mathml(markdown: str) -> str:
    """``markdown`` with its $...$ and $$...$$ math replaced by MathML (code untouched)."""
    parts = CODE.split(markdown)
    return "".join(part if i % 2 else MATH.sub(_mathml, part) for i, part in enumerate(parts))


class MathToMathML(NbGraderPreprocessor):
    """Replace LaTeX math in Markdown cells with MathML (for pages read offline)."""

    def preprocess_cell(self, cell: NotebookNode, resources: dict[str, Any], index: int
                        ) -> tuple[NotebookNode, dict[str, Any]]:
        if cell.cell_type == "markdown":
            cell.source = math_to_mathml(cell.source)
        return cell, resources
