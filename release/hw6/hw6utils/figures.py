"""Figures of the HW6 notebooks, drawn with matplotlib so that they travel with the assignment.

Each function draws one textbook-style diagram into a new figure and returns it; the notebooks call
them in locked cells next to the text that refers to them, before any student code is needed.
Only matplotlib's object API is used (no pyplot state), so the figures can also be saved as PNGs.
"""
from __future__ import annotations

import io

from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch

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


def _box(ax, x: float, y: float, text: str, color: str, width: float = 0.9, height: float = 0.6,
         fontsize: int = 12, edge: str = EDGE, style: str = "round,pad=0.02,rounding_size=0.12") -> None:
    ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height, boxstyle=style,
                                facecolor=color, edgecolor=edge, linewidth=1.2))
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, color=edge)


def _arrow(ax, start: tuple[float, float], end: tuple[float, float], color: str = EDGE, label: str = "",
           label_offset: tuple[float, float] = (0.0, 0.12), rad: float = 0.0, style: str = "-|>",
           dashed: bool = False, fontsize: int = 10) -> None:
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=13, color=color, linewidth=1.3,
                                 connectionstyle=f"arc3,rad={rad}", linestyle="--" if dashed else "-",
                                 shrinkA=0, shrinkB=0))
    if label:
        mid = ((start[0] + end[0]) / 2 + label_offset[0], (start[1] + end[1]) / 2 + label_offset[1])
        ax.text(*mid, label, ha="center", va="bottom", fontsize=fontsize, color=color)


# --- Problem 3 ---

def unrolled_rnn(steps: int = 4) -> Figure:
    """3a: an RNN layer unrolled in time, h_t = σ(W_h h_{t-1} + W_x x_t + b), starting from h_0 = 0."""
    figure, ax = _figure(9.0, 3.3, (-1.4, 2.0 * steps + 0.2), (-1.6, 1.75))
    _box(ax, 0.0, 0.5, "$h_0 = 0$", HIDDEN, width=1.1, edge=FADED)
    for t in range(1, steps + 1):
        x = 2.0 * t - 0.4
        label = f"$h_{{{t}}}$" if t < steps else "$h_T$"
        _box(ax, x, 0.5, label, HIDDEN)
        _box(ax, x, -0.8, f"$x_{{{t}}}$" if t < steps else "$x_T$", INPUT)
        _arrow(ax, (x, -0.5), (x, 0.2), label="$W_x$", label_offset=(0.28, -0.1))
        start = 0.55 if t == 1 else x - 2.0 + 0.45
        if t == steps and steps > 3:
            ax.text(x - 1.0, 0.5, "$\\cdots$", ha="center", va="center", fontsize=14)
            _arrow(ax, (x - 0.75, 0.5), (x - 0.45, 0.5), label="$W_h$", label_offset=(0.0, 0.08))
        else:
            _arrow(ax, (start, 0.5), (x - 0.45, 0.5), label="$W_h$", label_offset=(0.0, 0.08))
        _arrow(ax, (x, 0.8), (x, 1.3), color=FADED, style="-|>")
    ax.text(2.0 * steps - 0.4, 1.5, "all_h[:, t-1] = $h_t$,   last_h = $h_T$", ha="right", va="center",
            fontsize=10, color=FADED)
    ax.text(-1.3, -1.55, "$h_t = \\sigma(W_h\\, h_{t-1} + W_x\\, x_t + b)$: the same $W_h$, $W_x$, $b$ at every step",
            ha="left", va="bottom", fontsize=10)
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
            _box(ax, t, 0.0, f"$x_{{{sub}}}$", INPUT, width=0.7, height=0.5, fontsize=11)
            _box(ax, t, 1.2, f"$h_{{{sub}}}$", HIDDEN, width=0.7, height=0.5, fontsize=11)
            _arrow(ax, (t, 0.25), (t, 0.95))
            if t > 1:
                _arrow(ax, (t - 0.65, 1.2), (t - 0.35, 1.2))
            if last_only and not last:
                continue
            _box(ax, t, 2.4, f"$\\hat y_{{{sub}}}$", OUTPUT, width=0.7, height=0.5, fontsize=11)
            _arrow(ax, (t, 1.45), (t, 2.15))
            ax.add_patch(Circle((t, 3.5), 0.3, facecolor=LOSS, edgecolor=color, linewidth=1.2))
            ax.text(t, 3.5, f"$L_{{{sub}}}$" if not last_only else "$L$", ha="center", va="center", fontsize=10)
            _arrow(ax, (t, 2.65), (t, 3.2))
            ax.text(t + 0.36, 3.05, f"$y_{{{sub}}}$", ha="left", va="center", fontsize=9, color="#2a7a2a")
    figure.text(0.5, 0.02, "$y_t = (x_1 + \\dots + x_t)/t$, the running average; the error of the last-step "
                "task enters only at $t = T$ and must travel back through every step",
                ha="center", va="bottom", fontsize=10)
    return figure


def lstm_cell() -> Figure:
    """3h: one LSTM step, with the cell-state path c_{t-1} -> c_t along the top."""
    figure, ax = _figure(9.0, 4.9, (-1.3, 9.3), (-1.6, 4.5))
    # the cell: a rounded frame
    ax.add_patch(FancyBboxPatch((0.2, -0.6), 7.6, 4.3, boxstyle="round,pad=0.02,rounding_size=0.3",
                                facecolor="#fafafa", edgecolor=FADED, linewidth=1.0))
    # cell-state highway along the top
    c_y, h_y = 2.8, -1.2
    ax.text(-0.8, c_y, "$c_{t-1}$", ha="center", va="center", fontsize=13)
    ax.text(8.8, c_y, "$c_t$", ha="center", va="center", fontsize=13)
    ax.text(-0.8, 0.0, "$h_{t-1}$", ha="center", va="center", fontsize=13)
    ax.text(8.8, h_y, "$h_t$", ha="center", va="center", fontsize=13)
    ax.text(2.4, h_y - 0.05, "$x_t$", ha="center", va="center", fontsize=13)

    def op(x: float, y: float, symbol: str) -> None:
        ax.add_patch(Circle((x, y), 0.28, facecolor="white", edgecolor=EDGE, linewidth=1.2))
        ax.text(x, y, symbol, ha="center", va="center", fontsize=13)

    _arrow(ax, (-0.4, c_y), (2.22, c_y))
    op(2.5, c_y, "×")
    _arrow(ax, (2.78, c_y), (4.72, c_y))
    op(5.0, c_y, "+")
    _arrow(ax, (5.28, c_y), (8.4, c_y))
    ax.text(3.7, c_y + 0.2, "cell state: no weight matrix on this path", ha="center", va="bottom", fontsize=9,
            color=FADED)
    # gates: f, i, g, o read [h_{t-1}, x_t]
    gates = (("$f_t$", 1.5, "σ", "forget"), ("$i_t$", 3.5, "σ", "input"), ("$g_t$", 4.9, "tanh", "candidate"),
             ("$o_t$", 6.3, "σ", "output"))
    ax.plot([-0.4, 6.3], [0.0, 0.0], color=EDGE, linewidth=1.3)  # [h_{t-1}] bus
    ax.plot([2.4, 2.4], [h_y + 0.25, 0.0], color=EDGE, linewidth=1.3)  # x_t joins the bus
    for name, x, act, role in gates:
        _arrow(ax, (x, 0.0), (x, 0.6))
        _box(ax, x, 0.9, act, GATE, width=0.8, height=0.55, fontsize=11)
        ax.text(x + 0.45, 0.45, name, ha="left", va="center", fontsize=11)
        ax.text(x, 0.3 - 0.62, role, ha="center", va="center", fontsize=8, color=FADED)
    _arrow(ax, (1.5, 1.18), (1.5, 2.2), rad=0.0)
    _arrow(ax, (1.5, 2.2), (2.25, c_y - 0.12), rad=-0.3)  # f into ×
    op(4.2, 1.9, "×")  # i ∘ g
    _arrow(ax, (3.5, 1.18), (3.97, 1.76), rad=-0.2)
    _arrow(ax, (4.9, 1.18), (4.43, 1.76), rad=0.2)
    _arrow(ax, (4.38, 2.12), (4.86, c_y - 0.25), rad=-0.2)
    # output: h_t = tanh(c_t) ∘ o_t
    _box(ax, 7.3, 1.9, "tanh", GATE, width=0.8, height=0.5, fontsize=11)
    _arrow(ax, (7.3, c_y), (7.3, 2.15))
    op(7.3, 0.9, "×")
    _arrow(ax, (7.3, 1.65), (7.3, 1.18))
    _arrow(ax, (6.7, 0.9), (7.02, 0.9))
    ax.plot([7.3, 7.3], [0.62, h_y], color=EDGE, linewidth=1.3)
    _arrow(ax, (7.3, h_y), (8.4, h_y))
    ax.text(4.0, 4.15, "$c_t = f_t \\circ c_{t-1} + i_t \\circ g_t, \\qquad h_t = \\tanh(c_t) \\circ o_t$",
            ha="center", va="center", fontsize=11)
    return figure


def stacked_rnn(layers: int = 2, steps: int = 4) -> Figure:
    """3k: a stacked RNN; layer l+1 reads the hidden states of layer l, last_step_h stacks every layer's h_T."""
    figure, ax = _figure(9.0, 1.1 + 1.35 * layers, (-1.6, 2.0 * steps + 1.8), (-1.1, 1.35 * layers - 0.05))
    for t in range(1, steps + 1):
        x = 2.0 * t - 0.6
        sub = "T" if t == steps else str(t)
        _box(ax, x, -0.7, f"$x_{{{sub}}}$", INPUT)
        _arrow(ax, (x, -0.4), (x, 0.25))
        for layer in range(1, layers + 1):
            y = 1.35 * layer - 0.8
            last_layer = layer == layers
            _box(ax, x, y, f"$h^{{({layer})}}_{{{sub}}}$", OUTPUT if last_layer else HIDDEN)
            if not last_layer:
                _arrow(ax, (x, y + 0.3), (x, y + 1.05))
            if t > 1:
                _arrow(ax, (x - 1.55, y), (x - 0.45, y))
            if t == steps:
                ax.text(x + 0.65, y, f"$\\rightarrow$ last_step_h[{layer - 1}]", ha="left", va="center", fontsize=10)
    for layer in range(1, layers + 1):
        ax.text(-1.5, 1.35 * layer - 0.8, f"layer {layer}", ha="left", va="center", fontsize=10, color=FADED)
    top = 1.35 * layers - 0.8
    ax.text(2.0 * steps / 2 + 0.4, top + 0.5, "last_layer_h: the states of the last layer at every step",
            ha="center", va="center", fontsize=10, color="#2a7a2a")
    return figure
