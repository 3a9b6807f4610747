"""Figures the homework text refers to, drawn with matplotlib (one function per figure).

Each function draws a textbook-style diagram into a new figure and returns it; the notebooks show
them next to the text that refers to them, before any exercise, so they need nothing the student
writes. Problems 1, 2 and 4 draw with pyplot; Problem 3's figures use matplotlib's object API only
(no pyplot state) and ``show_figure`` displays them as PNGs.
"""
from __future__ import annotations

import io
from itertools import product

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
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

def scalar_rnn_graph(ax=None, edge_labels: bool = False):
    """Figure 1: the scalar linear RNN h_t = w (u_t + h_{t-1}) unrolled for three steps, as a graph.

    Nodes are the named intermediates p, q, r, s, t, y; the operation each node applies to the arrows
    coming into it is written beside it (a sum or a product), as in a computational graph. The
    shared weight w enters on three edges (into q, s and y), drawn in red. Shaded bands mark the three
    time steps. With ``edge_labels`` the three edges of w are named for question 1d, and only the
    right-most one carries its term (the homework gives that one).
    """
    fig, ax = (plt.subplots(figsize=(10, 4.4)) if ax is None else (ax.figure, ax))
    _blank(ax, (-1.4, 9.2), (-2.45, 2.8))
    nodes = {"p": (0.0, 0.0), "q": (1.6, 0.0), "r": (3.2, 0.0), "s": (4.8, 0.0), "t": (6.4, 0.0), "y": (8.0, 0.0)}
    operations = {"p": "copy", "q": r"$\times$", "r": "$+$", "s": r"$\times$", "t": "$+$", "y": r"$\times$"}
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
        ax.text(x + shift, y - 0.48, operations[name], ha="center", va="top", fontsize=11, color=INK)
    for i, target in enumerate(inputs, start=1):
        x = nodes[target][0]
        _node(ax, (x - 0.75, -2.0), f"$u_{i}$", radius=0.3, face="#f4f4f4", size=12)
        _arrow(ax, (x - 0.75, -2.0), (x, 0.0), shrink=13)
    weight = (4.0, 2.35)
    _node(ax, weight, "$w$", radius=0.3, face="#fdecea", edge=ACCENT, text=ACCENT, size=13, width=1.8)
    names = {"q": "left edge", "s": "middle edge", "y": "right-most edge: $t$"}
    for use, target in enumerate(("q", "s", "y"), start=1):
        rad = 0.12 if target == "y" else -0.12
        _arrow(ax, weight, nodes[target], colour=ACCENT, width=1.6, rad=rad, shrink=13)
        if edge_labels:
            x, y = (weight[0] + nodes[target][0]) / 2, (weight[1] + nodes[target][1]) / 2
            dx, dy = {"q": (-0.35, 0.15), "s": (0.3, -0.2), "y": (0.35, 0.15)}[target]
            ax.text(x + dx, y + dy, names[target], fontsize=9.5, color=ACCENT,
                    ha="right" if target == "q" else "left", va="center",
                    bbox=dict(boxstyle="round,pad=0.15", facecolor="white", edgecolor="none"))
    if not edge_labels:
        ax.text(weight[0] + 0.45, weight[1] + 0.05, "one weight, used on three edges", ha="left", va="center",
                fontsize=9.5, color=ACCENT)
    ax.text(-1.3, 2.6, r"$\times$: product of the arrows coming in" "\n" r"$+$: their sum", ha="left", va="top",
            fontsize=9, color=MUTED)
    ax.set_title(r"Figure 1: $h_t = w\,(u_t + h_{t-1})$, $h_0 = 0$, unrolled for three steps ($y = h_3$)",
                 fontsize=11.5)
    return fig


# --- Problem 2 ---------------------------------------------------------------------------------

TREE_SPACING = 2.6  # horizontal distance between the steps of a decoding tree
BEAM = "#2f6db5"    # the student's beams


def _tree_positions(vocab, depth: int) -> dict[tuple[str, ...], float]:
    """Vertical position of every node: leaves evenly spaced top to bottom in ``vocab`` order (the
    first token on top), parents centred over their children."""
    positions: dict[tuple[str, ...], float] = {}
    for i, leaf in enumerate(product(vocab, repeat=depth)):
        positions[tuple(leaf)] = float(-i)
    for length in range(depth - 1, -1, -1):
        for prefix in product(vocab, repeat=length):
            children = [positions[tuple(prefix) + (token,)] for token in vocab]
            positions[tuple(prefix)] = sum(children) / len(children)
    return positions


def decoding_tree(next_log_probs, depth: int, ax=None, title: str | None = None, beams=None):
    """Figure 2: the decoder's tree of possible sequences; every node is named by its last token,
    every edge labelled with log P(token | prefix), the complete sequences written at the leaves.

    Without ``beams`` it shows only what the decoder gives (no totals, no beam): the problem, not its
    answer. ``beams`` is a beam search's history (``beams[t-1]`` = the list of ``(tokens, score)``
    kept after step ``t``): the paths of those hypotheses are drawn in blue with the scores *they*
    carry, and nothing else is marked. Tokens keep the order of the decoder's first answer (the first
    one on top), so the tree has the same orientation with and without beams. Labels sit on white
    so that no line crosses them.
    """
    vocab = list(next_log_probs(()).keys())
    n_leaves = len(vocab) ** depth
    if n_leaves > 64:
        raise ValueError(f"tree too large to draw: {n_leaves} leaves (at most 64)")
    fig, ax = (plt.subplots(figsize=(2.4 * depth + 3.6, max(3.4, 0.7 * n_leaves)))
               if ax is None else (ax.figure, ax))
    positions = _tree_positions(vocab, depth)
    label_box = dict(boxstyle="round,pad=0.12", facecolor="white", edgecolor="none")

    def place(node):
        return len(node) * TREE_SPACING, positions[node]

    for length in range(depth):
        for prefix in product(vocab, repeat=length):
            children = next_log_probs(tuple(prefix))
            for token in vocab:
                (x0, y0), (x1, y1) = place(tuple(prefix)), place(tuple(prefix) + (token,))
                ax.plot([x0, x1], [y0, y1], color=MUTED, lw=1.2, zorder=1)
                ax.text(x0 + 0.55 * (x1 - x0), y0 + 0.55 * (y1 - y0), f"{children[token]:.2f}".replace("-", "\u2212"),
                        fontsize=9.5, ha="center", va="center", color=INK, zorder=4, bbox=label_box)
    kept = _beam_nodes(beams, positions)
    for node, score in kept.items():
        (x0, y0), (x1, y1) = place(node[:-1]), place(node)
        ax.plot([x0, x1], [y0, y1], color=BEAM, lw=3.2, alpha=0.8, zorder=2, solid_capstyle="round")
    for node in positions:
        x, y = place(node)
        on_beam = node in kept or (not node and kept)
        ax.scatter([x], [y], s=70, c=BEAM if on_beam else "white", edgecolors=INK, linewidths=1.2, zorder=3)
        if len(node) == depth:
            ax.text(x + 0.25, y, " ".join(node), fontsize=9.5, va="center", color="#3b4b5c")
        elif node:
            ax.text(x, y + 0.22, node[-1], fontsize=9.5, ha="center", va="bottom", color="#3b4b5c", zorder=4,
                    bbox=label_box)
    for node, score in kept.items():
        x, y = place(node)
        ax.text(x, y - 0.2, f"{score:.2f}".replace("-", "\u2212"), fontsize=9, ha="center", va="top",
                color=BEAM, fontweight="bold", zorder=4, bbox=label_box)
    ax.text(-0.2, positions[()], "start", fontsize=9.5, ha="right", va="center", color=INK)
    ax.set_xticks([t * TREE_SPACING for t in range(depth + 1)])
    ax.set_xticklabels([""] + [f"step {t}" for t in range(1, depth + 1)], fontsize=9.5)
    ax.set_yticks([])
    ax.set_xlim(-1.0, depth * TREE_SPACING + 2.9)
    ax.set_ylim(min(positions.values()) - 0.6, max(positions.values()) + 0.6)
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.set_title(title or "Decoder tree: log P(next token | prefix) on every edge", fontsize=11)
    return fig


def _beam_nodes(beams, positions) -> dict[tuple[str, ...], float]:
    """node -> the score a beam gave it, for every hypothesis in ``beams`` (a beam search's history).

    Raises ValueError naming a hypothesis that is not a node of the tree (so a wrong beam is not
    silently drawn as something else)."""
    kept: dict[tuple[str, ...], float] = {}
    for step, beam in enumerate(beams or [], start=1):
        for tokens, score in beam:
            node = tuple(tokens)
            if node not in positions or not node:
                raise ValueError(f"the beam after step {step} holds {list(node)}, which is not a node of this tree")
            kept[node] = float(score)
    return kept


# --- Problem 4 ---------------------------------------------------------------------------------

def many_to_one(name: str = "Costa", padded_length: int = 7, ax=None):
    """Many-to-one prediction: an RNN reads a padded surname letter by letter; the classifier uses
    only the output at the last real letter (``last_pos``), not the outputs over the padding. Hidden
    states are numbered as in Problem 3: ``h_0 = 0`` is the initial state, ``h_{i+1}`` is read at
    position ``i``. ``name`` must be plain ASCII letters (it is drawn, not normalized)."""
    from .surnames import ALL_LETTERS, PAD_INDEX

    if not 1 <= len(name) <= padded_length or not all(ch in ALL_LETTERS for ch in name):
        raise ValueError(f"name {name!r} must have 1 to {padded_length} plain letters")
    indices = [ALL_LETTERS.find(ch) for ch in name] + [PAD_INDEX] * (padded_length - len(name))
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
        _box(ax, (i, rows["rnn"]), 0.8, 0.8, f"$h_{{{i + 1}}}$", face="#eaf2fb" if not padding else "#f4f4f4",
             edge=ACCENT if i == last else edge, text=text, size=11, width=2.0 if i == last else 1.2)
        _arrow(ax, (i, rows["embedding"] + 0.28), (i, rows["rnn"] - 0.4), colour=edge, shrink=0)
        if i > 0:
            _arrow(ax, (i - 0.6, rows["rnn"]), (i - 0.4, rows["rnn"]), colour=MUTED if padding else INK, shrink=0)
        if padding:
            ax.text(i, rows["rnn"] + 0.5, "not used", ha="center", va="bottom", fontsize=8, color=MUTED)
    ax.text(-0.95, rows["rnn"], "$h_0 = 0$", ha="right", va="center", fontsize=10, color=INK)
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


# --- Problem 3 ---------------------------------------------------------------------------------

# One palette for every diagram: inputs, hidden states, outputs/targets and the loss.
INPUT = "#dbe9f6"
HIDDEN = "#fde3c8"
OUTPUT = "#d9f0d3"
LOSS = "#f4cccc"
GATE = "#e8dff5"
EDGE = "#333333"
FADED = "#9a9a9a"


def show_figure(figure: Figure) -> None:
    """Display ``figure`` in the notebook as a PNG (any frontend, exported pages, headless runs)."""
    from IPython.display import Image, display

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=figure.dpi)
    display(Image(data=buffer.getvalue(), format="png"))


def _figure(width: float, height: float, xlim: tuple[float, float], ylim: tuple[float, float]):
    """A figure with one axis-free panel in data units (1 unit = one box spacing)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    ax = figure.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.axis("off")
    return figure, ax


def _rnn_box(ax, x: float, y: float, text: str, color: str, width: float = 0.9, height: float = 0.6,
         fontsize: int = 12, edge: str = EDGE, style: str = "round,pad=0.02,rounding_size=0.12") -> None:
    ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height, boxstyle=style,
                                facecolor=color, edgecolor=edge, linewidth=1.2))
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, color=edge)


def _rnn_arrow(ax, start: tuple[float, float], end: tuple[float, float], color: str = EDGE, label: str = "",
           label_offset: tuple[float, float] = (0.0, 0.12), rad: float = 0.0, style: str = "-|>",
           dashed: bool = False, fontsize: int = 10) -> None:
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=13, color=color, linewidth=1.3,
                                 connectionstyle=f"arc3,rad={rad}", linestyle="--" if dashed else "-",
                                 shrinkA=0, shrinkB=0))
    if label:
        mid = ((start[0] + end[0]) / 2 + label_offset[0], (start[1] + end[1]) / 2 + label_offset[1])
        ax.text(*mid, label, ha="center", va="bottom", fontsize=fontsize, color=color)



def unrolled_rnn(steps: int = 4) -> Figure:
    """3a: an RNN layer unrolled in time, h_t = σ(W_h h_{t-1} + W_x x_t + b), starting from h_0 = 0."""
    figure, ax = _figure(9.0, 3.3, (-1.4, 2.0 * steps + 0.2), (-1.6, 1.75))
    _rnn_box(ax, 0.0, 0.5, "$h_0 = 0$", HIDDEN, width=1.1, edge=FADED)
    for t in range(1, steps + 1):
        x = 2.0 * t - 0.4
        label = f"$h_{{{t}}}$" if t < steps else "$h_T$"
        _rnn_box(ax, x, 0.5, label, HIDDEN)
        _rnn_box(ax, x, -0.8, f"$x_{{{t}}}$" if t < steps else "$x_T$", INPUT)
        _rnn_arrow(ax, (x, -0.5), (x, 0.2), label="$W_x$", label_offset=(0.28, -0.1))
        start = 0.55 if t == 1 else x - 2.0 + 0.45
        if t == steps and steps > 3:
            ax.text(x - 1.0, 0.5, "$\\cdots$", ha="center", va="center", fontsize=14)
            _rnn_arrow(ax, (x - 0.75, 0.5), (x - 0.45, 0.5), label="$W_h$", label_offset=(0.0, 0.08))
        else:
            _rnn_arrow(ax, (start, 0.5), (x - 0.45, 0.5), label="$W_h$", label_offset=(0.0, 0.08))
        _rnn_arrow(ax, (x, 0.8), (x, 1.3), color=FADED, style="-|>")
    ax.text(2.0 * steps - 0.4, 1.5, "all_h[:, t-1] = $h_t$,   last_h = $h_T$", ha="right", va="center",
            fontsize=10, color=FADED)
    ax.text(-1.3, -1.55, "$h_t = \\sigma(W_h\\, h_{t-1} + W_x\\, x_t + b)$: the same $W_h$, $W_x$, $b$ at every step",
            ha="left", va="bottom", fontsize=10)
    return figure


def many_to_one_graph(steps: int = 4) -> Figure:
    """3d (the homework's Figure 4): the computational graph of a many-to-one RNN. The same weight matrix
    W enters every step, so it reaches the loss along several paths, one through each hidden state."""
    figure, ax = _figure(9.5, 3.4, (-0.9, 2.0 * steps + 2.9), (-1.75, 1.75))
    ax.text(-0.55, 0.0, "$h_0$", ha="center", va="center", fontsize=12)
    for t in range(1, steps + 1):
        sub = "T" if t == steps else str(t)
        x = 2.0 * t - 1.0
        _rnn_box(ax, x, 0.0, "$f_W$", GATE, width=0.8, height=0.55, fontsize=11)
        _rnn_arrow(ax, (x - 0.7 if t > 1 else -0.3, 0.0), (x - 0.42, 0.0))
        _rnn_box(ax, x + 1.0, 0.0, f"$h_{{{sub}}}$", HIDDEN, width=0.6, height=0.5, fontsize=11)
        _rnn_arrow(ax, (x + 0.42, 0.0), (x + 0.68, 0.0))
        _rnn_box(ax, x, 1.3, f"$x_{{{sub}}}$", INPUT, width=0.6, height=0.45, fontsize=11)
        _rnn_arrow(ax, (x, 1.07), (x, 0.3))
        _rnn_arrow(ax, (0.9, -1.35), (x, -0.3), color=FADED, rad=0.0)
    _rnn_box(ax, 0.9, -1.35, "$W$", "#ffffff", width=0.6, height=0.45, fontsize=12)
    last = 2.0 * steps
    _rnn_arrow(ax, (last + 0.32, 0.0), (last + 0.95, 0.0))
    _rnn_box(ax, last + 1.3, 0.0, "$\\hat y$", OUTPUT, width=0.6, height=0.5, fontsize=11)
    _rnn_arrow(ax, (last + 1.3, 0.25), (last + 1.3, 0.95))
    ax.add_patch(Circle((last + 1.3, 1.25), 0.3, facecolor=LOSS, edgecolor=EDGE, linewidth=1.2))
    ax.text(last + 1.3, 1.25, "$L$", ha="center", va="center", fontsize=11)
    ax.text(last + 1.75, 1.25, "$y$", ha="left", va="center", fontsize=10, color="#2a7a2a")
    return figure


def prediction_kinds() -> Figure:
    """3c: the kinds of prediction problems an RNN can solve (one to one, one to many, many to one, many to
    many with a delay, many to many aligned), as in the homework's figure: inputs below, outputs above."""
    kinds = (("one to one", [1], [1]), ("one to many", [1], [1, 2, 3]), ("many to one", [1, 2, 3], [3]),
             ("many to many", [1, 2, 3], [3, 4, 5]), ("many to many (aligned)", [1, 2, 3], [1, 2, 3]))
    figure = Figure(figsize=(11.0, 3.0), dpi=100)
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    widths = [max(inputs + outputs) for _, inputs, outputs in kinds]
    left = 0.01
    for (title, inputs, outputs), width in zip(kinds, widths):
        share = 0.98 * (width + 0.6) / sum(w + 0.6 for w in widths)
        ax = figure.add_axes((left, 0.02, share, 0.82))
        left += share
        ax.set_xlim(0.3, width + 0.9)
        ax.set_ylim(-0.5, 3.0)
        ax.axis("off")
        ax.set_title(title, fontsize=10)
        for t in range(1, width + 1):
            _rnn_box(ax, t, 1.2, "", HIDDEN, width=0.55, height=0.45)
            if t > 1:
                _rnn_arrow(ax, (t - 0.72, 1.2), (t - 0.28, 1.2))
            if t in inputs:
                _rnn_box(ax, t, 0.0, "", INPUT, width=0.55, height=0.45)
                _rnn_arrow(ax, (t, 0.23), (t, 0.97))
            if t in outputs:
                _rnn_box(ax, t, 2.4, "", OUTPUT, width=0.55, height=0.45)
                _rnn_arrow(ax, (t, 1.43), (t, 2.17))
    figure.text(0.99, 0.01, "blue: inputs, orange: hidden states, green: outputs", ha="right", va="bottom",
                fontsize=8, color=FADED)
    return figure


def prediction_tasks(steps: int = 5) -> Figure:
    """3c: the two running-average tasks, a prediction at every step versus only at the last step."""
    figure = Figure(figsize=(10.0, 3.4), dpi=100)
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    titles = ("every step: $L = \\frac{1}{T}\\sum_t (\\hat y_t - y_t)^2$",
              "last step only (many-to-one): $L = (\\hat y_T - y_T)^2$")
    for panel, (title, last_only) in enumerate(zip(titles, (False, True))):
        ax = figure.add_axes((0.01 + 0.5 * panel, 0.1, 0.48, 0.78))
        ax.set_xlim(0.1, steps + 0.9)
        ax.set_ylim(-0.55, 4.1)
        ax.set_aspect("equal")
        ax.axis("off")
        ax.set_title(title, fontsize=11)
        for t in range(1, steps + 1):
            last = t == steps
            sub = "T" if last else str(t)
            color = EDGE if (last or not last_only) else FADED
            _rnn_box(ax, t, 0.0, f"$x_{{{sub}}}$", INPUT, width=0.7, height=0.5, fontsize=11)
            _rnn_box(ax, t, 1.2, f"$h_{{{sub}}}$", HIDDEN, width=0.7, height=0.5, fontsize=11)
            _rnn_arrow(ax, (t, 0.25), (t, 0.95))
            if t > 1:
                _rnn_arrow(ax, (t - 0.65, 1.2), (t - 0.35, 1.2))
            if last_only and not last:
                continue
            _rnn_box(ax, t, 2.4, f"$\\hat y_{{{sub}}}$", OUTPUT, width=0.7, height=0.5, fontsize=11)
            _rnn_arrow(ax, (t, 1.45), (t, 2.15))
            ax.add_patch(Circle((t, 3.5), 0.3, facecolor=LOSS, edgecolor=color, linewidth=1.2))
            ax.text(t, 3.5, f"$L_{{{sub}}}$" if not last_only else "$L$", ha="center", va="center", fontsize=10)
            _rnn_arrow(ax, (t, 2.65), (t, 3.2))
            ax.text(t + 0.36, 3.05, f"$y_{{{sub}}}$", ha="left", va="center", fontsize=9, color="#2a7a2a")
    figure.text(0.5, 0.02, "$y_t = (x_1 + \\dots + x_t)/t$, the running average; the error of the last-step "
                "task enters only at $t = T$ and must travel back through every step",
                ha="center", va="bottom", fontsize=10)
    return figure


def lstm_cell() -> Figure:
    """3h: one LSTM step, with the cell state C_{t-1} -> C_t along the top (notation of the homework:
    C_t the cell state, C~_t the candidate values). The equations sit above the cell, clear of it."""
    figure, ax = _figure(9.0, 5.3, (-1.3, 9.3), (-1.6, 4.9))
    # the cell: a rounded frame
    ax.add_patch(FancyBboxPatch((0.2, -0.6), 7.6, 4.3, boxstyle="round,pad=0.02,rounding_size=0.3",
                                facecolor="#fafafa", edgecolor=FADED, linewidth=1.0))
    # cell-state highway along the top
    c_y, h_y = 2.8, -1.2
    ax.text(-0.8, c_y, "$C_{t-1}$", ha="center", va="center", fontsize=13)
    ax.text(8.8, c_y, "$C_t$", ha="center", va="center", fontsize=13)
    ax.text(-0.8, 0.0, "$h_{t-1}$", ha="center", va="center", fontsize=13)
    ax.text(8.8, h_y, "$h_t$", ha="center", va="center", fontsize=13)
    ax.text(2.4, h_y - 0.05, "$x_t$", ha="center", va="center", fontsize=13)

    def op(x: float, y: float, symbol: str) -> None:
        ax.add_patch(Circle((x, y), 0.28, facecolor="white", edgecolor=EDGE, linewidth=1.2))
        ax.text(x, y, symbol, ha="center", va="center", fontsize=13)

    _rnn_arrow(ax, (-0.4, c_y), (2.22, c_y))
    op(2.5, c_y, "×")
    _rnn_arrow(ax, (2.78, c_y), (4.72, c_y))
    op(5.0, c_y, "+")
    _rnn_arrow(ax, (5.28, c_y), (8.4, c_y))
    # gates: f, i, g, o read [h_{t-1}, x_t]
    gates = (("$f_t$", 1.5, "σ", "forget"), ("$i_t$", 3.5, "σ", "input"), ("$\\tilde C_t$", 4.9, "tanh", "candidate"),
             ("$o_t$", 6.3, "σ", "output"))
    ax.plot([-0.4, 6.3], [0.0, 0.0], color=EDGE, linewidth=1.3)  # [h_{t-1}] bus
    ax.plot([2.4, 2.4], [h_y + 0.25, 0.0], color=EDGE, linewidth=1.3)  # x_t joins the bus
    for name, x, act, role in gates:
        _rnn_arrow(ax, (x, 0.0), (x, 0.6))
        _rnn_box(ax, x, 0.9, act, GATE, width=0.8, height=0.55, fontsize=11)
        ax.text(x + 0.45, 0.45, name, ha="left", va="center", fontsize=11)
        ax.text(x, 0.3 - 0.62, role, ha="center", va="center", fontsize=8, color=FADED)
    _rnn_arrow(ax, (1.5, 1.18), (1.5, 2.2), rad=0.0)
    _rnn_arrow(ax, (1.5, 2.2), (2.25, c_y - 0.12), rad=-0.3)  # f into ×
    op(4.2, 1.9, "×")  # i ∘ C~
    _rnn_arrow(ax, (3.5, 1.18), (3.97, 1.76), rad=-0.2)
    _rnn_arrow(ax, (4.9, 1.18), (4.43, 1.76), rad=0.2)
    _rnn_arrow(ax, (4.38, 2.12), (4.86, c_y - 0.25), rad=-0.2)
    # output: h_t = tanh(C_t) ∘ o_t
    _rnn_box(ax, 7.3, 1.9, "tanh", GATE, width=0.8, height=0.5, fontsize=11)
    _rnn_arrow(ax, (7.3, c_y), (7.3, 2.15))
    op(7.3, 0.9, "×")
    _rnn_arrow(ax, (7.3, 1.65), (7.3, 1.18))
    _rnn_arrow(ax, (6.7, 0.9), (7.02, 0.9))
    ax.plot([7.3, 7.3], [0.62, h_y], color=EDGE, linewidth=1.3)
    _rnn_arrow(ax, (7.3, h_y), (8.4, h_y))
    ax.text(4.0, 4.45, "$C_t = f_t \\circ C_{t-1} + i_t \\circ \\tilde C_t, \\qquad h_t = \\tanh(C_t) \\circ o_t$",
            ha="center", va="center", fontsize=11)
    return figure


def stacked_rnn(layers: int = 2, steps: int = 4) -> Figure:
    """3k: a stacked RNN; layer l+1 reads the hidden states of layer l, last_step_h stacks every layer's h_T."""
    figure, ax = _figure(9.0, 1.1 + 1.35 * layers, (-1.6, 2.0 * steps + 1.8), (-1.1, 1.35 * layers - 0.05))
    for t in range(1, steps + 1):
        x = 2.0 * t - 0.6
        sub = "T" if t == steps else str(t)
        _rnn_box(ax, x, -0.7, f"$x_{{{sub}}}$", INPUT)
        _rnn_arrow(ax, (x, -0.4), (x, 0.25))
        for layer in range(1, layers + 1):
            y = 1.35 * layer - 0.8
            last_layer = layer == layers
            _rnn_box(ax, x, y, f"$h^{{({layer})}}_{{{sub}}}$", OUTPUT if last_layer else HIDDEN)
            if not last_layer:
                _rnn_arrow(ax, (x, y + 0.3), (x, y + 1.05))
            if t > 1:
                _rnn_arrow(ax, (x - 1.55, y), (x - 0.45, y))
            if t == steps:
                ax.text(x + 0.65, y, f"$\\rightarrow$ last_step_h[{layer - 1}]", ha="left", va="center", fontsize=10)
    for layer in range(1, layers + 1):
        ax.text(-1.5, 1.35 * layer - 0.8, f"layer {layer}", ha="left", va="center", fontsize=10, color=FADED)
    top = 1.35 * layers - 0.8
    ax.text(2.0 * steps / 2 + 0.4, top + 0.5, "last_layer_h: the states of the last layer at every step",
            ha="center", va="center", fontsize=10, color="#2a7a2a")
    return figure
