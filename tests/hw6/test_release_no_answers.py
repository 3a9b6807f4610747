"""The release holds no answer of Problems 3 and 4 (issue 21): not in the released helper package, judged
by behaviour, and not in the text, figures, legends, captions or helper docstrings.

The behaviour scan imports the released ``hw6utils`` by path and calls every callable in its modules
(defined there or imported into them) on the graded functions' test inputs; none may reproduce a graded
function's reference output. A control run over the instructor-only ``hw6grading`` shows that the scan
finds implementations where there are some.
"""
from __future__ import annotations

import ast
import inspect
import math
import re
import signal
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterator

import numpy as np
import pytest
import torch
from torch import nn

from coursekit.course import Course
from coursekit.helpers import trusted_grading_package, trusted_package
from coursekit.testing.courses import grading_folder, helper_folder
from coursekit.testing.notebooks import RELEASE_DIR, SOURCE_DIR, load, nbgrader_meta, solution_namespace

RELEASED_HELPERS = RELEASE_DIR / "hw6utils"


# ---------------------------------------------------------------- the instructor-only package stays home

def test_grading_package_is_neither_released_nor_copied_for_the_kernel():
    from nbgrader import utils

    course = Course.load() if hasattr(Course, "load") else None  # noqa: F841 - the config is read below
    assert grading_folder().is_dir() and (grading_folder() / "__init__.py").is_file()
    assert not (RELEASE_DIR / grading_folder().name).exists()
    assert not list(RELEASE_DIR.rglob("hw6grading*"))
    config_text = (SOURCE_DIR.parents[1] / "nbgrader_config.py").read_text()
    ignore = re.search(r"c\.CourseDirectory\.ignore = (\[.*?\])", config_text, re.S).group(1)
    patterns = ast.literal_eval(ignore)
    assert grading_folder().name in patterns
    # what `nbgrader autograde` copies from source/ into autograded/<student>/ (the kernel's folder)
    copied = utils.find_all_files(str(SOURCE_DIR), patterns + ["*.ipynb"])
    assert copied and not [f for f in copied if grading_folder().name in Path(f).parts]
    assert [f for f in copied if Path(f).parts[-2] == "hw6utils"], "the helper package is still copied"


# ---------------------------------------------------------------- behaviour scan

def _filled(module: nn.Module, value: float) -> nn.Module:
    with torch.no_grad():
        for p in module.parameters():
            p.fill_(value)
    return module


def _pattern_filled(module: nn.Module) -> nn.Module:
    """The fill of the Problem 4 forward test: a pattern per sorted state-dict key."""
    with torch.no_grad():
        for i, (_, p) in enumerate(sorted(module.named_parameters())):
            n = torch.arange(p.numel(), dtype=torch.float32)
            p.copy_((0.5 * torch.sin(1.3 * n + i)).reshape(p.shape))
    return module


class _Probe(nn.Module):
    def __init__(self, standins: ModuleType) -> None:
        super().__init__()
        self.recurrent_net = standins.StandInLayer(1, 3)

    def forward(self, x):
        all_h = self.recurrent_net(x)[0]
        return 0.5 * all_h.sum(dim=-1, keepdim=True), all_h


X_SEQ = torch.tensor([[[1.0], [-2.0], [0.5], [3.0]], [[0.0], [1.0], [1.0], [-1.0]]])
Y_SEQ = torch.tensor([[[0.5], [0.0], [-0.5], [1.0]], [[1.0], [0.0], [0.0], [0.25]]])
PRED = torch.tensor([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]])
TARGET = torch.tensor([[-1.1, -1.2, -1.3], [-1.4, -1.5, -1.6]])
NAMES_BATCH = torch.tensor([[26, 1, 57, 57, 57], [28, 14, 18, 19, 0], [2, 57, 57, 57, 57]])
LAST_POS = torch.tensor([1, 4, 0])


class Graded:
    """One graded function or class: how to call a candidate on its test inputs, and the reference answer."""

    def __init__(self, name: str, call: Callable[[Callable[..., Any]], Any], reference: Any) -> None:
        self.name, self.call, self.reference = name, call, reference


def _class_call(ctor_args: tuple, fill: Callable[[nn.Module], nn.Module], forward_args: tuple,
                ctor_kwargs: dict | None = None) -> Callable[[Callable[..., Any]], Any]:
    def call(candidate: Callable[..., Any]) -> Any:
        built = candidate(*ctor_args, **(ctor_kwargs or {}))
        if not isinstance(built, nn.Module):
            return built
        return fill(built).eval()(*forward_args)
    return call


def _seeded(call: Callable[[Callable[..., Any]], Any]) -> Callable[[Callable[..., Any]], Any]:
    def seeded(candidate: Callable[..., Any]) -> Any:
        torch.manual_seed(0)
        return call(candidate)
    return seeded


@pytest.fixture(scope="module")
def graded() -> list[Graded]:
    """The graded functions of Problems 3 and 4 with their test inputs; reference answers from the source
    notebooks' solutions."""
    p3 = solution_namespace("rnn_gradients.ipynb", until_grade_id="p3k_training", skip_grade_ids=("gradviz_show",))
    p4 = solution_namespace("surname_classification.ipynb", until_grade_id="p4_hparams",
                            skip_grade_ids=("p4_data", "p4_model_figure"))
    standins = __import__("hw6utils.standins", fromlist=["StandInLayer"])
    items = [
        # sequences, not a single step: one step of any tanh layer looks like one step of an RNN
        Graded("RNNLayer", _class_call((1, 3), lambda m: _filled(m, 0.1), (X_SEQ,)), None),
        Graded("LSTMLayer", _class_call((1, 3), lambda m: _filled(m, 0.1), (X_SEQ,)), None),
        Graded("RNN", _class_call((1, 2, 2), lambda m: _filled(m, 0.1), (X_SEQ,)), None),
        Graded("LSTM", _class_call((1, 2, 2), lambda m: _filled(m, 0.1), (X_SEQ,)), None),
        Graded("generate_batch", _seeded(lambda f: f(3, 2)), None),
        Graded("loss_fn", lambda f: f(PRED, TARGET), None),
        Graded("loss_fn, last step", lambda f: f(PRED, TARGET, True), None),
        Graded("gradient_norms", lambda f: f(_Probe(standins), X_SEQ, Y_SEQ, True), None),
        Graded("unicodeToAscii", lambda f: f("Ślusàrski Éluard"), None),
        Graded("letterToIndex", lambda f: [f("'"), f("Z"), f("k")], None),
        Graded("namesToBatch", lambda f: f(["Ab", "Costa", "c", "Nuñez"]), None),
        Graded("RecurrentClassifier", _class_call((58, 4, 3), _pattern_filled, (NAMES_BATCH, LAST_POS),
                                                  {"model_type": "rnn"}), None),
    ]
    namespaces = {**p3, **p4}
    for item in items:
        function = namespaces[item.name.split(" ")[0].rstrip(",")]
        item.reference = _outputs(item.call(function))
        assert item.reference, item.name
    return items


def _outputs(value: Any) -> list[np.ndarray | str]:
    """Every tensor, array, number list or string inside a result, flattened (what could be an answer)."""
    found: list[np.ndarray | str] = []
    if isinstance(value, str):
        found.append(value)
    elif isinstance(value, torch.Tensor):
        found.append(value.detach().double().numpy())
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        found.append(np.asarray(float(value)))
    elif isinstance(value, (list, tuple)):
        try:
            plain = [v.detach() if isinstance(v, torch.Tensor) else v for v in value]
            found.append(np.asarray(plain, dtype=np.float64))
        except (TypeError, ValueError, RuntimeError):
            pass
        for item in value:
            found += _outputs(item)
    return found


def _same(a: np.ndarray | str, b: np.ndarray | str) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b and len(a) > 1
    if a.shape != b.shape or not bool(np.all(np.abs(a - b) < 1e-5)):
        return False
    return a.size > 1 or float(b) != round(float(b))  # one number counts only if it is not a small integer


def _reproduces(result: Any, reference: list[np.ndarray | str]) -> bool:
    """Whether a candidate's result holds the reference answer (its main value, not an incidental number)."""
    got = _outputs(result)
    return bool(got) and _same_first(got, reference)


def _same_first(got: list, reference: list) -> bool:
    main = reference[0]
    return any(_same(candidate, main) for candidate in got)


class _Timeout(Exception):
    pass


def _with_alarm(seconds: int, call: Callable[[], Any]) -> Any:
    def stop(signum, frame):
        raise _Timeout()
    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        return call()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _callables(package: str, folder: Path) -> Iterator[tuple[str, Callable[..., Any]]]:
    """Every callable in every module of a package imported by path: defined there or imported into it."""
    import importlib

    for path in sorted(folder.glob("*.py")):
        name = package if path.stem == "__init__" else f"{package}.{path.stem}"
        module = importlib.import_module(name)
        for attr, value in list(vars(module).items()):
            if attr.startswith("__") or not callable(value) or isinstance(value, ModuleType):
                continue
            if getattr(value, "__module__", "") in ("builtins", "typing") or inspect.isbuiltin(value):
                continue
            yield f"{path.stem}.{attr}", value


def _hits(package: str, folder: Path, graded: list[Graded], tmp_path: Path, monkeypatch) -> list[str]:
    import warnings

    monkeypatch.chdir(tmp_path)  # a callable that writes files writes them here
    monkeypatch.setenv("MPLBACKEND", "Agg")
    hits = []
    for where, candidate in _callables(package, folder):
        for item in graded:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    result = _with_alarm(10, lambda: item.call(candidate))
                except BaseException as error:  # noqa: BLE001 - most callables do not take these inputs
                    if isinstance(error, (KeyboardInterrupt, SystemExit)):
                        raise
                    continue
            if _reproduces(result, item.reference):
                hits.append(f"{where} reproduces {item.name}")
    return hits


def test_no_released_callable_reproduces_a_graded_function(graded, tmp_path, monkeypatch):
    package = trusted_package(RELEASED_HELPERS)  # the release's copy, by path
    hits = _hits(package, RELEASED_HELPERS, graded, tmp_path, monkeypatch)
    assert not hits, hits


def test_the_scan_finds_the_instructor_implementations(graded, tmp_path, monkeypatch):
    """Control: the same scan over the instructor-only package finds its reference implementations."""
    package = trusted_grading_package(grading_folder(), helper_folder())
    hits = " ".join(_hits(package, grading_folder(), graded, tmp_path, monkeypatch))
    for expected in ("unicode_to_ascii reproduces unicodeToAscii", "encode_names reproduces namesToBatch",
                     "SpecClassifier reproduces RecurrentClassifier", "running_average_batch reproduces generate_batch",
                     "regression_loss reproduces loss_fn", "gradient_norms reproduces gradient_norms"):
        assert expected in hits, hits


# ---------------------------------------------------------------- no answer before the question (K1 scans)

def _release_text() -> str:
    parts = []
    for notebook in ("rnn_gradients", "surname_classification"):
        parts += [cell.source for cell in load(RELEASE_DIR / f"{notebook}.ipynb").cells]
    return "\n".join(parts)


def _docstrings_and_strings() -> str:
    """Every docstring, comment-free string literal and comment of the released helper modules."""
    parts = []
    for path in sorted(RELEASED_HELPERS.glob("*.py")):
        source = path.read_text()
        parts += [line.split("#", 1)[1] for line in source.splitlines() if "#" in line]
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                parts.append(node.value)
    return "\n".join(parts)


def _figure_texts(figure) -> str:
    """Every text a figure draws: titles, labels, legends, annotations and captions."""
    from matplotlib.text import Text

    return "\n".join(artist.get_text() for artist in figure.findobj(Text))


@pytest.fixture(scope="module")
def drawn() -> dict[str, str]:
    package = trusted_package(RELEASED_HELPERS)
    import importlib

    figures = importlib.import_module(f"{package}.figures")
    gradviz = importlib.import_module(f"{package}.gradviz")
    texts = {name: _figure_texts(getattr(figures, name)()) for name in
             ("unrolled_rnn", "prediction_kinds", "prediction_tasks", "many_to_one_graph", "lstm_cell", "stacked_rnn")}
    texts["many_to_one"] = _figure_texts(figures.many_to_one("Costa", padded_length=7))
    plot = gradviz.GradientPlot()
    texts["gradviz"] = _figure_texts(plot.figure)
    return texts


GIVEAWAYS = {  # issue 21, Problems 3 and 4
    "3d/3e: the quantity that decides": r"decides between vanishing and exploding",
    "3d/3e: the border": r"border between vanishing",
    "3d/3e: critical_weight_scale": r"critical_weight_scale",
    "3e: the eigenvalues named": r"eigenvalue",
    "3e: the dashed guide": r"ρ\^|\\rho\^|rho\^",
    "3f: leading question": r"large biases do to",
    "3i: only the direct path": r"only the direct path",
    "3i: the key condition": r"forget gates? (are )?close to 1",
    "3i/3j: the answer in a caption": r"no weight matrix on this path",
    "3j: a residual RNN with one W": r"residual RNN",
    "4a: added demands": r"at least two concrete|what would make them worse",
    "stale: 4.3 for the architecture": r"architecture of 4\.3",
    "stale: the lecture's example": r"worked example of the lecture",
}


@pytest.mark.parametrize("label", GIVEAWAYS)
def test_no_giveaway_in_text_figures_legends_captions_or_docstrings(label, drawn):
    pattern = re.compile(GIVEAWAYS[label], re.I)
    for where, text in {"notebook text": _release_text(), "helper docstrings and strings": _docstrings_and_strings(),
                        **{f"figure {name}": text for name, text in drawn.items()}}.items():
        match = pattern.search(text)
        assert not match, f"{label}: {match.group(0)!r} in the release's {where}"


def test_the_readme_points_at_the_cells_that_exist():
    """Issue 21.10's stale references: the README names the 4.3 cell as the one that finds the data."""
    from coursekit.testing.courses import home_course

    readme = " ".join((home_course().root / "README.md").read_text().split())
    assert "first code cell finds" not in readme
    assert "the code cell of section 4.3 finds `data/names`" in readme
    surnames = _release_text()
    assert "## 4.3 The data" in surnames and "## 4.4 The model" in surnames
    assert "architecture of 4.4" in surnames  # where the trained weights are loaded (not 4.3, the data)


def test_the_original_questions_are_asked():
    text = " ".join(_release_text().split())
    for question in ("under what conditions would you expect exploding or vanishing",
                     "Which activation results in more vanishing and exploding gradients? Why?",
                     "Explain why this change affects vanishing gradients",
                     r"\frac{\partial \mathcal{L}}{\partial C_{T-1}}",
                     r"h_{t+1} = \sigma(W_t h_t + b_t) + h_t",
                     "summed over several paths", r"\qquad (5)", "Include a screenshot",
                     "In what ways do you think this could be problematic in real-world applications?",
                     "many kinds of prediction problems"):
        assert question in text, question


def test_figures_use_the_homeworks_notation(drawn):
    assert "$C_t$" in drawn["lstm_cell"] and r"$\tilde C_t$" in drawn["lstm_cell"]
    assert not re.search(r"\$[cg]_\{?t", drawn["lstm_cell"]), drawn["lstm_cell"]
    # Problem 4's picture numbers hidden states as Problem 3 does: h_0 = 0, then h_1 at the first letter
    assert "h_0 = 0" in drawn["many_to_one"] and "$h_{1}$" in drawn["many_to_one"]
    assert "$h_{0}$" not in drawn["many_to_one"]
    for kind in ("one to one", "one to many", "many to one", "many to many"):
        assert kind in drawn["prediction_kinds"]


def test_lstm_caption_clears_the_cell():
    """The equations above the LSTM cell do not overlap its × and + circles (bounding boxes, in pixels)."""
    from matplotlib.patches import Circle

    package = trusted_package(RELEASED_HELPERS)
    import importlib

    figure = importlib.import_module(f"{package}.figures").lstm_cell()
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    [caption] = [t for t in figure.axes[0].texts if "C_t = f_t" in t.get_text()]
    box = caption.get_window_extent(renderer)
    circles = [c.get_window_extent(renderer) for c in figure.axes[0].patches if isinstance(c, Circle)]
    assert len(circles) >= 3 and not any(box.overlaps(circle) for circle in circles)
    assert math.isfinite(box.y0)
