"""Figures the homework text refers to, drawn with matplotlib (one function per figure).

Each function draws into a new figure (or the given axes) and returns the figure, so a notebook
cell shows it with ``plt.show()`` and a test can save it. They need nothing the student writes:
the notebooks show them before any exercise.
"""
from __future__ import annotations

from itertools import product
from typing import Sequence

import matplotlib.pyplot as plt
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch

INK = "#222222"
MUTED = "#8a8a8a"
ACCENT = "#c0392b"      # what the text asks you to look at
STEP_FILL = ("#eaf2fb", "#eef7ee", "#fbf3e6")


def _arrow(ax, start, end, colour=INK, width=1.3, rad=0.0, shrink=14, style="-|>", z=1):
    """An arrow between two points, stopping short of round nodes at both ends."""
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=12, color=colour, lw=width,
                                 shrinkA=shrink, shrinkB=shrink, connectionstyle=f"arc3,rad={rad}", zorder=z))


def _node(ax, xy, label, radius=0.33, face="white", edge=INK, text=INK, size=13, width=1.4):
    ax.add_patch(Circle(xy, radius, facecolor=face, edgecolor=edge, lw=width, zorder=3))
    ax.text(*xy, label, ha="center", va="center", fontsize=size, color=text, zorder=4)


def _box(ax, xy, w, h, label, face="white", edge=INK, text=INK, size=10, style="round,pad=0.02,rounding_size=0.08",
         width=1.2):
    x, y = xy
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle=style, facecolor=face, edgecolor=edge,
                                lw=width, zorder=3))
    ax.text(x, y, label, ha="center", va="center", fontsize=size, color=text, zorder=4)


def _blank(ax, xlim, ylim):
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.axis("off")


# --- Problem 1 ---------------------------------------------------------------------------------

def scalar_rnn_graph(ax=None):
    """The scalar linear RNN h_t = w (u_t + h_{t-1}) unrolled for three steps, as a computational graph.

    Nodes are the named intermediates p, q, r, s, t, y; the shared weight w enters on three edges
    (into q, s and y), drawn in red. Shaded bands mark the three time steps.
    """
    fig, ax = (plt.subplots(figsize=(10, 4.4)) if ax is None else (ax.figure, ax))
    _blank(ax, (-1.4, 9.2), (-2.45, 2.8))
    nodes = {"p": (0.0, 0.0), "q": (1.6, 0.0), "r": (3.2, 0.0), "s": (4.8, 0.0), "t": (6.4, 0.0), "y": (8.0, 0.0)}
    definitions = {"p": "$p = u_1$", "q": r"$q = w\,p$", "r": "$r = u_2 + q$", "s": r"$s = w\,r$",
                   "t": "$t = u_3 + s$", "y": r"$y = w\,t$"}
    for step, (first, last, state) in enumerate([("p", "q", "h_1 = q"), ("r", "s", "h_2 = s"),
                                                  ("t", "y", "h_3 = y")]):
        left, right = nodes[first][0] - 0.6, nodes[last][0] + 0.6
        ax.add_patch(FancyBboxPatch((left, -1.45), right - left, 2.3, boxstyle="round,pad=0,rounding_size=0.15",
                                    facecolor=STEP_FILL[step], edgecolor="none", zorder=0))
        ax.text(right - 0.1, -1.35, f"step {step + 1}:  ${state}$", ha="right", va="bottom",
                fontsize=10, color="#3b4b5c")
    order = list(nodes)
    for a, b in zip(order, order[1:]):
        _arrow(ax, nodes[a], nodes[b])
    inputs = ("p", "r", "t")
    for name, (x, y) in nodes.items():
        _node(ax, (x, y), f"${name}$")
        shift = 0.45 if name in inputs else 0.0  # clear of the input's arrow
        ax.text(x + shift, y - 0.48, definitions[name], ha="center", va="top", fontsize=9.5, color=INK)
    for i, target in enumerate(inputs, start=1):
        x = nodes[target][0]
        _node(ax, (x - 0.75, -2.0), f"$u_{i}$", radius=0.3, face="#f4f4f4", size=12)
        _arrow(ax, (x - 0.75, -2.0), (x, 0.0), shrink=13)
    weight = (4.0, 2.35)
    _node(ax, weight, "$w$", radius=0.3, face="#fdecea", edge=ACCENT, text=ACCENT, size=13, width=1.8)
    for use, target in enumerate(("q", "s", "y"), start=1):
        _arrow(ax, weight, nodes[target], colour=ACCENT, width=1.6, rad=0.12 if target == "y" else -0.12, shrink=13)
    ax.text(weight[0] + 0.45, weight[1] + 0.05, "one weight, used on three edges", ha="left", va="center",
            fontsize=9.5, color=ACCENT)
    ax.set_title(r"Problem 1: $h_t = w\,(u_t + h_{t-1})$, $h_0 = 0$, unrolled for three steps ($y = h_3$)",
                 fontsize=11.5)
    return fig


# --- Problem 2 ---------------------------------------------------------------------------------

def decoding_tree(next_log_probs, depth: int, ax=None, title: str | None = None):
    """The decoder's tree of possible sequences: every node named by its last token, every edge
    labelled with log P(token | prefix); the complete sequences are written at the leaves.

    Shows only what the decoder gives (no totals, no beam), so it is the problem, not its answer.
    Tokens keep the order of the decoder's first answer (the first one is drawn on top).
    """
    from .beam import _leaf_positions

    vocab = list(next_log_probs(()).keys())
    n_leaves = len(vocab) ** depth
    if n_leaves > 64:
        raise ValueError(f"tree too large to draw: {n_leaves} leaves (at most 64)")
    fig, ax = (plt.subplots(figsize=(2.4 * depth + 3.6, max(3.4, 0.7 * n_leaves)))
               if ax is None else (ax.figure, ax))
    positions = _leaf_positions(vocab, depth)
    spacing = 2.6
    for length in range(depth):
        for prefix in product(vocab, repeat=length):
            children = next_log_probs(tuple(prefix))
            for token in vocab:
                child = tuple(prefix) + (token,)
                x0, y0 = length * spacing, positions[tuple(prefix)]
                x1, y1 = (length + 1) * spacing, positions[child]
                ax.plot([x0, x1], [y0, y1], color=MUTED, lw=1.2, zorder=1)
                ax.text(x0 + 0.55 * (x1 - x0), y0 + 0.55 * (y1 - y0), f"{children[token]:.2f}".replace("-", "\u2212"),
                        fontsize=9.5, ha="center", va="center", color=INK, zorder=2,
                        bbox=dict(boxstyle="round,pad=0.12", facecolor="white", edgecolor="none"))
    for node, y in positions.items():
        x = len(node) * spacing
        ax.scatter([x], [y], s=70, c="white", edgecolors=INK, linewidths=1.2, zorder=3)
        if len(node) == depth:
            ax.text(x + 0.25, y, " ".join(node), fontsize=9.5, va="center", color="#3b4b5c")
        elif node:
            ax.text(x, y + 0.22, node[-1], fontsize=9.5, ha="center", va="bottom", color="#3b4b5c")
    ax.text(-0.2, positions[()], "start", fontsize=9.5, ha="right", va="center", color=INK)
    ax.set_xticks([t * spacing for t in range(depth + 1)])
    ax.set_xticklabels([""] + [f"step {t}" for t in range(1, depth + 1)], fontsize=9.5)
    ax.set_yticks([])
    ax.set_xlim(-1.0, depth * spacing + 2.9)
    ax.set_ylim(min(positions.values()) - 0.6, max(positions.values()) + 0.6)
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.set_title(title or "Decoder tree: log P(next token | prefix) on every edge", fontsize=11)
    return fig


# --- Problem 4 ---------------------------------------------------------------------------------

def many_to_one(name: str = "Costa", padded_length: int = 7, ax=None):
    """Many-to-one prediction: an RNN reads a padded surname letter by letter; the classifier uses
    only the output at the last real letter (``last_pos``), not the outputs over the padding."""
    from .surnames import encode_names

    if not 1 <= len(name) <= padded_length:
        raise ValueError(f"name {name!r} must have 1 to {padded_length} letters")
    x, _ = encode_names([name])
    indices = x[0].tolist() + [57] * (padded_length - len(name))
    tokens = list(name) + ["pad"] * (padded_length - len(name))
    last = len(name) - 1
    fig, ax = (plt.subplots(figsize=(10.5, 6.2)) if ax is None else (ax.figure, ax))
    _blank(ax, (-1.8, padded_length + 0.2), (-0.9, 6.1))
    rows = {"token": 0.0, "embedding": 1.3, "rnn": 2.7, "head": 4.35, "out": 5.55}
    for label, y in (("x[b, i]", rows["token"]), ("embedding", rows["embedding"]), ("RNN", rows["rnn"])):
        ax.text(-1.75, y, label, ha="left", va="center", fontsize=9.5, color="#3b4b5c")
    for i, (token, index) in enumerate(zip(tokens, indices)):
        padding = i > last
        edge, text, face = (MUTED, MUTED, "#f4f4f4") if padding else (INK, INK, "white")
        _box(ax, (i, rows["token"]), 0.8, 0.75, f"{token}\n{index}", face=face, edge=edge, text=text, size=9.5)
        ax.text(i, rows["token"] - 0.55, f"i = {i}", ha="center", va="top", fontsize=8, color=MUTED)
        _box(ax, (i, rows["embedding"]), 0.8, 0.55, "", face="#eef7ee" if not padding else "#f4f4f4", edge=edge)
        _arrow(ax, (i, rows["token"] + 0.38), (i, rows["embedding"] - 0.28), colour=edge, shrink=0)
        _box(ax, (i, rows["rnn"]), 0.8, 0.8, f"$h_{{{i}}}$", face="#eaf2fb" if not padding else "#f4f4f4",
             edge=ACCENT if i == last else edge, text=text, size=11, width=2.0 if i == last else 1.2)
        _arrow(ax, (i, rows["embedding"] + 0.28), (i, rows["rnn"] - 0.4), colour=edge, shrink=0)
        if i > 0:
            _arrow(ax, (i - 0.6, rows["rnn"]), (i - 0.4, rows["rnn"]), colour=MUTED if padding else INK, shrink=0)
        if padding:
            ax.text(i, rows["rnn"] + 0.5, "not used", ha="center", va="bottom", fontsize=8, color=MUTED)
    ax.text(-0.95, rows["rnn"], "0", ha="right", va="center", fontsize=10, color=INK)
    _arrow(ax, (-0.88, rows["rnn"]), (-0.4, rows["rnn"]), shrink=0)
    _box(ax, (last, rows["head"]), 2.6, 0.75, "dropout, then linear", face="#fdecea", edge=ACCENT, size=10)
    _arrow(ax, (last, rows["rnn"] + 0.4), (last, rows["head"] - 0.38), colour=ACCENT, width=1.8, shrink=0)
    _box(ax, (last, rows["out"]), 3.8, 0.7, "18 logits, one per language", size=10)
    _arrow(ax, (last, rows["head"] + 0.38), (last, rows["out"] - 0.35), shrink=0)
    ax.text(last - 0.15, (rows["rnn"] + rows["head"]) / 2, f"output at last_pos = {last}\n(the last real letter)",
            ha="right", va="center", fontsize=9.5, color=ACCENT)
    ax.set_title(f'Problem 4: many-to-one prediction for "{name}" in a batch padded to length {padded_length}',
                 fontsize=11.5)
    return fig
