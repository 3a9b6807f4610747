"""hw6utils.figures: the figures the homework text refers to, drawn before any exercise."""
from __future__ import annotations

import os
import re

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.patches import FancyArrowPatch  # noqa: E402

from coursekit.testing.notebooks import SOURCE_DIR, load, nbgrader_meta  # noqa: E402

from hw6utils import beam, figures  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def test_scalar_rnn_graph_names_every_intermediate_and_the_three_uses_of_w(tmp_path):
    fig = figures.scalar_rnn_graph()
    labels = texts(fig)
    for name in "pqrsty":
        assert f"${name}$" in labels
    # each node shows its operation, not its equation (t and y in terms of their inputs are 1a's answers)
    assert labels.count(r"$\times$") == 3 and labels.count("$+$") == 2 and "copy" in labels
    assert not [label for label in labels if re.search(r"\$[pqrsty] =", label)]
    assert {"$u_1$", "$u_2$", "$u_3$", "$w$"} <= set(labels)
    arrows = [p for p in fig.axes[0].patches if isinstance(p, FancyArrowPatch)]
    red = [a for a in arrows if matplotlib.colors.same_color(a.get_edgecolor(), figures.ACCENT)]
    assert len(red) == 3 and len(arrows) == 5 + 3 + 3  # chain, inputs, uses of w
    fig.savefig(tmp_path / "graph.png")  # renders without error


def test_scalar_rnn_graph_for_1d_names_the_edges_and_gives_only_the_right_most_term():
    labels = texts(figures.scalar_rnn_graph(edge_labels=True))
    assert "left edge" in labels and "middle edge" in labels and "right-most edge: $t$" in labels
    assert not any("partial" in label or "dy_d" in label for label in labels)


def test_decoding_tree_shows_the_decoder_not_the_answer(tmp_path):
    fig = figures.decoding_tree(beam.worked_next_log_probs, 3)
    labels = texts(fig)
    edge_labels = [t for t in labels if t.startswith("\u2212")]
    assert len(edge_labels) == 2 + 4 + 8
    assert sorted(edge_labels) == sorted(f"{v:.2f}".replace("-", "\u2212") for children in beam.WORKED_TREE.values()
                                         for v in children.values())
    assert "neural neural neural" in labels
    for total in ("-1.25", "\u22121.25", "-1.46", "\u22121.46", "-1.85", "\u22121.85"):  # no sums, no beam
        assert total not in labels
    assert not any(ax.collections and "blue" in str(c.get_facecolors()) for ax in fig.axes for c in ax.collections)
    fig.savefig(tmp_path / "tree.png")


def test_decoding_tree_refuses_large_trees():
    with pytest.raises(ValueError, match="too large"):
        figures.decoding_tree(beam.tree_function(beam.random_tree(["a", "b", "c"], 4, seed=0)), 4)


def test_many_to_one_reads_at_the_last_real_letter(tmp_path):
    fig = figures.many_to_one("Costa", padded_length=7)
    labels = texts(fig)
    assert "C\n28" in labels and "a\n0" in labels and labels.count("pad\n57") == 2
    assert labels.count("not used") == 2
    assert any("last_pos = 4" in t for t in labels)
    fig.savefig(tmp_path / "many_to_one.png")
    with pytest.raises(ValueError):
        figures.many_to_one("Abdank-Kossovsky", padded_length=5)


@pytest.mark.parametrize("notebook, call", [("backprop_scalar_rnn.ipynb", "scalar_rnn_graph("),
                                            ("beam_search.ipynb", "decoding_tree("),
                                            ("surname_classification.ipynb", "many_to_one(")])
def test_each_figure_is_shown_before_the_first_exercise(notebook, call):
    cells = load(SOURCE_DIR / notebook).cells
    first_answer = next(i for i, c in enumerate(cells) if nbgrader_meta(c).get("solution") and c.cell_type == "code")
    shown = [i for i, c in enumerate(cells) if c.cell_type == "code" and call in c.source]
    assert shown and shown[0] < first_answer, (notebook, shown, first_answer)


def _bound_and_read(source: str) -> tuple[set[str], set[str]]:
    """(names a cell binds, names it reads) from its code (IPython magics left out)."""
    import ast

    tree = ast.parse("\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))))
    bound, read = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (bound if isinstance(node.ctx, ast.Store) else read).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
    return bound, read


@pytest.mark.parametrize("notebook", ["backprop_scalar_rnn", "beam_search", "convolutions", "rnn_gradients",
                                      "surname_classification"])
def test_figure_cells_define_nothing_later_cells_read(notebook):
    """The grader leaves figure cells out (coursekit/optional.py): that is only safe if no later cell reads a
    name a figure cell binds without binding it itself first."""
    from coursekit.optional import marks_figure

    cells = [c for c in load(SOURCE_DIR / f"{notebook}.ipynb").cells if c.cell_type == "code"]
    figures = [i for i, c in enumerate(cells) if marks_figure(c)]
    assert figures and all(not nbgrader_meta(cells[i]).get("grade") for i in figures)
    for i in figures:
        bound, _ = _bound_and_read(cells[i].source)
        for later in cells[i + 1:]:
            if marks_figure(later):
                continue
            later_bound, later_read = _bound_and_read(later.source)
            assert not (bound & later_read) - later_bound, (nbgrader_meta(cells[i])["grade_id"],
                                                            nbgrader_meta(later).get("grade_id"))
