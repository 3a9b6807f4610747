"""K1: the release gives away none of the answers of Problems 1, 2, 5 and 6 (issue 21).

Every give-away once found in the kit is searched for in everything a student can read: the release
notebooks' text (markdown and code), the text of the figures they draw (titles, labels, legends),
and the released helper package (docstrings and comments included). Text is normalised before the
search (no spaces, no multiplication signs or LaTeX spacing, Unicode minus as "-") so that another
spelling of the same give-away is caught too.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from coursekit.testing.notebooks import RELEASE_DIR, load  # noqa: E402

GIVEAWAYS = {
    "backprop_scalar_rnn": [
        "t = u_3 + s", "t = u3 + s", r"y = w\,t", "y = w t", "y = w*t", "y = w \\cdot t",  # 1a by its steps
        "w*(u3 + w*(u2 + w*u1))", "w*u3 + w**2*u2 + w**3*u1", "w u_3 + w^2 u_2 + w^3 u_1",  # 1a: y
        "u3 + w*u2 + w**2*u1", "u_3 + w u_2 + w^2 u_1",                                       # 1a: t
        "u3 + 2*w*u2 + 3*w**2*u1", "u_3 + 2 w u_2 + 3 w^2 u_1", "3w^2u_1",                   # 1b
        "dy_dq * w", "dy_dq*w", r"\frac{\partial y}{\partial q} \cdot w", "w**3", "w^3",      # 1c
        "p · ∂y/∂q", r"p \cdot \partial y/\partial q", "p*dy_dq", "p * dy_dq", r"p \cdot \frac{\partial y}{\partial q}",
        "r*dy_ds", "r * dy_ds", r"r \cdot \frac{\partial y}{\partial s}",                       # 1d edges
        "autograd_dy_dw", "autograd_partials", "autograd_edges", "autograd_total",            # oracles
    ],
    "beam_search": [
        "k ≥ M^{T−1}", r"k \ge M^{T-1}", "k >= M**(T-1)", "M^{T-1}", "M^(T-1)", "exhaustive search",  # 2d (added)
        "-1.46", "-1.45", "neural neural neural (", "most likely sequence: neural",            # 2d's answer
        "linear-time selection", "O(TkM", "O(T k M", "k^2 log k", "k^2 \\log k",                # 2e's answer
    ],
    "reading_and_survey": ["94", "341", "26 s", "26s", "baseline_gpus"],
    "convolutions": ["[2, -1, 3]", "[-1, 3, -2]", "[3, -3, 1]", "[0, 3, 1]"],
}


def normalised(text: str) -> str:
    text = re.sub(r"\\[,;:!]|\\ |\\cdot|\\times|·|×", "", text)
    text = text.replace("\u2212", "-").replace("≥", ">=").replace("\\ge", ">=").replace("\\geq", ">=")
    text = re.sub(r"[{}]", "", text)
    return re.sub(r"[\s*]", "", text).replace("**", "^")


def _release_texts(notebook: str) -> list[tuple[str, str]]:
    """(where, text) of every cell of a release notebook."""
    return [(f"{notebook}.ipynb cell {i}", cell.source)
            for i, cell in enumerate(load(RELEASE_DIR / f"{notebook}.ipynb").cells)]


def _helper_texts() -> list[tuple[str, str]]:
    """(where, text) of every released helper module (its whole source: docstrings and comments too)."""
    return [(str(path.relative_to(RELEASE_DIR)), path.read_text()) for path in sorted((RELEASE_DIR / "hw6utils").glob("*.py"))]


def _figure_texts() -> list[tuple[str, str]]:
    """(where, text) of every text artist of the figures Problems 1 and 2 draw, the beam plot with a
    right and a wrong beam search's history."""
    from coursekit.helpers import trusted_module

    # the release's copy, loaded by path under its own name (not the source copy tests import)
    beam, figures = (trusted_module(RELEASE_DIR / "hw6utils", name) for name in ("beam", "figures"))
    assert Path(figures.__file__).is_relative_to(RELEASE_DIR)
    history = [[(("neural",), -0.65), (("network",), -0.73)],
               [(("neural", "network"), -1.25), (("network", "neural"), -1.33)],
               [(("neural", "network", "network"), -1.85), (("network", "neural", "network"), -1.93)]]
    wrong = [[(("network",), -0.73)], [(("network", "network"), -1.53)], [(("network", "network", "neural"), -2.21)]]
    try:
        made = {"Figure 1": figures.scalar_rnn_graph(), "Figure 1 (1d)": figures.scalar_rnn_graph(edge_labels=True),
                "Figure 2": figures.decoding_tree(beam.worked_next_log_probs, 3),
                "Figure 2 with beams": figures.decoding_tree(beam.worked_next_log_probs, 3, beams=history),
                "Figure 2 with a wrong beam": figures.decoding_tree(beam.worked_next_log_probs, 3, beams=wrong)}
        texts = [(name, artist.get_text()) for name, fig in made.items() for artist in fig.findobj(Text)]
    finally:
        plt.close("all")
    return texts


@pytest.mark.parametrize("notebook", sorted(GIVEAWAYS))
def test_release_notebook_gives_nothing_away(notebook):
    found = [(where, giveaway) for where, text in _release_texts(notebook) for giveaway in GIVEAWAYS[notebook]
             if normalised(giveaway) in normalised(text)]
    assert not found, found


@pytest.mark.parametrize("notebook", sorted(GIVEAWAYS))
def test_released_helpers_give_nothing_away(notebook):
    # bare numbers are searched in their units below ("94" and "341" occur in checksums, "-1.45" is a
    # figure coordinate; "neural neural" at -1.45 is no answer by itself, while -1.46 is)
    searched = [g for g in GIVEAWAYS[notebook] if g not in ("94", "341", "-1.45")]
    found = [(where, giveaway) for where, text in _helper_texts() for giveaway in searched
             if normalised(giveaway) in normalised(text)]
    numbers = [(where, number) for where, text in _helper_texts() for number in ("94%", "94 %", "341 s", "341s")
               if number in text]
    assert not found and not numbers, found + numbers


def test_figures_give_nothing_away():
    texts = _figure_texts()
    assert len(texts) > 40  # the figures were really drawn and read
    everything = [giveaway for key in ("backprop_scalar_rnn", "beam_search") for giveaway in GIVEAWAYS[key]]
    found = [(where, giveaway) for where, text in texts for giveaway in everything
             if normalised(giveaway) in normalised(text)]
    assert not found, found
    # Figure 2's leaves name every sequence, but no total is attached to any sequence the beams did not store
    assert not any("1.46" in text or "1.45" in text for _, text in texts)


def test_the_search_finds_what_the_kit_once_said():
    """The normalisation catches the spellings the kit used before these give-aways were removed."""
    old = {"backprop_scalar_rnn": [r"$p = u_1$, $q = w\,p$, $r = u_2 + q$, $s = w\,r$, $t = u_3 + s$ and $y = w\,t$",
                                   r"e.g. $\partial y/\partial w_q = p \cdot \partial y/\partial q$",
                                   "(w * (u3 + w * (u2 + w * u1))).backward()", "def autograd_dy_dw(w, u1, u2, u3):"],
           "beam_search": [r"With $k \ge M^{T-1}$ nothing is ever pruned before the last step, so it is **exhaustive search**",
                           "(with sorting, and with a linear-time selection algorithm)"],
           "reading_and_survey": ["(which ranked models by the time needed to reach 94% test accuracy)",
                                  "baseline_gpus = None               # number of GPUs it trained on"]}
    for notebook, texts in old.items():
        for text in texts:
            assert any(normalised(g) in normalised(text) for g in GIVEAWAYS[notebook]), (notebook, text)
