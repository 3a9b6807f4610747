"""Problem 3d: the numbers behind the written answers 3e/3f/3h (hw6utils.gradients running the
instructor-only reference measurement), and the widget (hw6utils.gradviz).

The numeric tests use small independent layers (coursekit/testing/tiny_layers.py) with the spec's
interface, and — once the notebook exists — the reference RNNLayer/LSTMLayer of rnn_gradients.ipynb. The
student's parts the visualizer runs (3b model, 3c data, 3d measurement) are the instructor's references.
"""
from __future__ import annotations

import base64
import gc
import json
import os
import subprocess
import sys

import nbformat
import numpy as np
import pytest
import torch

from coursekit.testing.notebooks import SOURCE_DIR as SOURCE
from coursekit.testing.tiny_layers import TinyLSTMLayer, TinyRegressionModel, TinyRNNLayer
from hw6grading.gradients import gradient_norms, max_abs_eigenvalue
from hw6grading.training import running_average_batch
from hw6utils import gradients, gradviz
from hw6utils.gradviz import GradientVisualizer as _GradientVisualizer


Readout = TinyRegressionModel  # the reference RecurrentRegressionModel (3b)


def _batch(seq_len, batch_size):
    return running_average_batch(seq_len, batch_size)


PARTS = {"model_class": Readout, "batch_fn": _batch, "measure": gradient_norms}
_NAMED = {"RecurrentRegressionModel": Readout, "generate_batch": _batch, "gradient_norms": gradient_norms}


def gradient_magnitudes(layer, **settings):
    return gradients.gradient_magnitudes(layer, **PARTS, **settings)


def GradientVisualizer(layers, **kwargs):  # noqa: N802 - the widget with the reference parts
    kwargs.setdefault("parts", PARTS)
    return _GradientVisualizer(layers, **kwargs)


def _max_abs_states(model, x, y, last_timestep_only=True):
    """A measurement of the largest |component| of h_t instead of its norm (for the bounds of 3f/3h)."""
    norms = gradient_norms(model, x, y, last_timestep_only)[1]
    states = torch.stack([h.detach() for h in model.recurrent_net.h_list], dim=1)
    return states.abs().amax(dim=(0, 2)).tolist(), norms


def h_max_abs(layer, **settings) -> np.ndarray:
    return gradients.gradient_magnitudes(layer, **dict(PARTS, measure=_max_abs_states), **settings).h_norms


def spectral_radius_of(layer_factory, weight_scale, seed, hidden_size=16):
    """Largest |eigenvalue| of W_h of the layer the visualizer builds (None without a single W_h)."""
    layer = gradients.build_layer(layer_factory, 1, hidden_size, "tanh")
    gradients.rescale_parameters(layer, weight_scale, 0.0, seed, hidden_size)
    weight = getattr(layer, "W_h", None)
    return None if weight is None else max_abs_eigenvalue(weight)

torch.set_num_threads(1)
NOTEBOOK = SOURCE / "rnn_gradients.ipynb"


def _reference_layers() -> list[tuple[str, type, type]]:
    layers = [("tiny", TinyRNNLayer, TinyLSTMLayer)]
    if NOTEBOOK.exists():
        from coursekit.testing.notebooks import solution_namespace

        try:  # reference cells up to and including 3h (LSTMLayer), without the widget cell
            ns = solution_namespace("rnn_gradients.ipynb", until_grade_id="p3i_question",
                                    skip_grade_ids=("gradviz_show",))
        except KeyError:
            ns = {}
        if "RNNLayer" in ns and "LSTMLayer" in ns:
            layers.append(("notebook", ns["RNNLayer"], ns["LSTMLayer"]))
    return layers


LAYERS = _reference_layers()
LAYER_IDS = [name for name, _, _ in LAYERS]


def per_step_factor(grad_norms: np.ndarray, skip_last: int = 4) -> float:
    """Geometric factor per step going backwards (from t to t-1), by a log-linear fit."""
    g = np.log(grad_norms[: len(grad_norms) - skip_last])
    steps_back = np.arange(len(grad_norms) - 1, skip_last - 1, -1)[: len(g)]
    slope = np.polyfit(steps_back, g, 1)[0]
    return float(np.exp(slope))


# ---------------------------------------------------------------- numbers (3e, 3f, 3h)

@pytest.mark.parametrize("name,rnn,lstm", LAYERS, ids=LAYER_IDS)
@pytest.mark.parametrize("scale", [0.5, 0.8])
def test_linear_rnn_gradients_shrink_geometrically_below_one(name, rnn, lstm, scale):
    stats = gradient_magnitudes(rnn, weight_scale=scale, bias_scale=0.5, nonlinearity="none",
                                last_timestep_only=True, seq_len=30, hidden_size=16, seed=1)
    rho = spectral_radius_of(rnn, scale, 1)
    assert rho is not None and rho < 1
    assert stats.grad_norms[0] < stats.grad_norms[-1] * 1e-2
    # |dL/dh_t| ~ |W_h^(T-t)| decays by about rho per step backwards (3e)
    assert per_step_factor(stats.grad_norms) == pytest.approx(rho, rel=0.15)


@pytest.mark.parametrize("name,rnn,lstm", LAYERS, ids=LAYER_IDS)
@pytest.mark.parametrize("scale", [1.5, -2.0])
def test_linear_rnn_gradients_grow_above_one(name, rnn, lstm, scale):
    stats = gradient_magnitudes(rnn, weight_scale=scale, bias_scale=0.5, nonlinearity="none",
                                last_timestep_only=True, seq_len=30, hidden_size=16, seed=1)
    rho = spectral_radius_of(rnn, scale, 1)
    assert rho is not None and rho > 1
    assert stats.grad_norms[0] > stats.grad_norms[-1] * 1e2
    assert per_step_factor(stats.grad_norms) == pytest.approx(rho, rel=0.15)


def test_the_measurement_needs_neither_widgets_nor_matplotlib():
    """hw6utils.gradients computes the same numbers in a process where ipywidgets and matplotlib cannot be
    imported (as in a grader without a plotting stack)."""
    settings = dict(weight_scale=1.7, bias_scale=0.3, nonlinearity="relu", seq_len=12, seed=4,
                    last_timestep_only=False)
    script = (
        "import json, sys\n"
        "sys.modules['ipywidgets'] = None\n"
        "sys.modules['matplotlib'] = None\n"
        "from hw6utils.gradients import gradient_magnitudes\n"
        "from hw6grading.gradients import gradient_norms\n"
        "from hw6grading.training import running_average_batch\n"
        "from coursekit.testing.tiny_layers import TinyRegressionModel, TinyRNNLayer\n"
        "import torch\n"
        "torch.set_num_threads(1)\n"
        "stats = gradient_magnitudes(TinyRNNLayer, model_class=TinyRegressionModel, batch_fn=running_average_batch,\n"
        f"                           measure=gradient_norms, **{settings!r})\n"
        "for name in ('ipywidgets', 'matplotlib'):\n"
        "    try:\n"
        "        __import__(name)\n"
        "    except ImportError:\n"
        "        pass\n"
        "    else:\n"
        "        raise SystemExit(name + ' was importable')\n"
        "print(json.dumps({'grad_norms': stats.grad_norms.tolist(), 'h_norms': stats.h_norms.tolist()}))\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SOURCE.parents[1]), str(SOURCE), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    here = gradient_magnitudes(TinyRNNLayer, **settings)
    assert measured["grad_norms"] == here.grad_norms.tolist() and measured["h_norms"] == here.h_norms.tolist()
    assert len(measured["grad_norms"]) == 12 and all(g > 0 for g in measured["grad_norms"])


@pytest.mark.parametrize("name,rnn,lstm", LAYERS, ids=LAYER_IDS)
def test_eigenvalue_tracks_weight_scale_and_is_the_real_spectral_radius(name, rnn, lstm):
    small, large = spectral_radius_of(rnn, 0.5, 3), spectral_radius_of(rnn, -1.5, 3)
    # redrawn weights are the same up to the scale, so the spectral radius scales with |scale|
    assert large == pytest.approx(3 * small, rel=1e-5)
    layer = gradients.build_layer(rnn, 1, 16, "tanh")
    gradients.rescale_parameters(layer, 1.0, 0.0, 3, 16)
    eig = np.linalg.eigvals(layer.W_h.detach().double().numpy())
    assert small == pytest.approx(0.5 * np.abs(eig).max(), rel=1e-5)


@pytest.mark.parametrize("name,rnn,lstm", LAYERS, ids=LAYER_IDS)
@pytest.mark.parametrize("weight_scale,bias_scale", [(0.8, 0.5), (3.0, 2.0)])
def test_tanh_bounds_hidden_states_where_linear_does_not(name, rnn, lstm, weight_scale, bias_scale):
    common = dict(weight_scale=weight_scale, bias_scale=bias_scale, seq_len=20, seed=2)
    tanh = h_max_abs(rnn, nonlinearity="tanh", **common)
    linear = h_max_abs(rnn, nonlinearity="none", **common)
    # float32 tanh rounds to exactly 1.0 only when fully saturated
    assert np.all(tanh <= 1.0)
    if weight_scale < 1:
        assert np.all(tanh < 1.0)
    assert linear.max() > 1.0


@pytest.mark.parametrize("name,rnn,lstm", LAYERS, ids=LAYER_IDS)
def test_relu_hidden_states_blow_up_at_large_weight_scale(name, rnn, lstm):
    big = gradient_magnitudes(rnn, nonlinearity="relu", weight_scale=4.0, bias_scale=1.0, seq_len=20, seed=0)
    small = gradient_magnitudes(rnn, nonlinearity="relu", weight_scale=0.5, bias_scale=1.0, seq_len=20, seed=0)
    tanh = gradient_magnitudes(rnn, nonlinearity="tanh", weight_scale=4.0, bias_scale=1.0, seq_len=20, seed=0)
    assert big.h_norms[-1] > 1e6 * big.h_norms[0]
    assert big.h_norms[-1] > 1e6
    assert small.h_norms.max() < 20
    assert tanh.h_norms.max() <= np.sqrt(16)  # each of the 16 components is within [-1, 1]
    assert big.grad_norms[0] > big.grad_norms[-1]  # the gradients explode as well


@pytest.mark.parametrize("name,rnn,lstm", LAYERS, ids=LAYER_IDS)
@pytest.mark.parametrize("weight_scale", [0.5, 0.8])
def test_lstm_gradients_decay_more_slowly_than_rnn(name, rnn, lstm, weight_scale):
    for seed in range(4):
        common = dict(weight_scale=weight_scale, bias_scale=1.0, seq_len=20, seed=seed)
        r = gradient_magnitudes(rnn, nonlinearity="tanh", **common)
        l = gradient_magnitudes(lstm, **common)
        rnn_decay = r.grad_norms[0] / r.grad_norms[-1]
        lstm_decay = l.grad_norms[0] / l.grad_norms[-1]
        assert rnn_decay < 1e-2, "the RNN gradient should vanish at these settings"
        assert lstm_decay > 10 * rnn_decay, f"seed {seed}: LSTM {lstm_decay:.3g} vs RNN {rnn_decay:.3g}"
        # LSTM hidden outputs stay within +-1 (3h)
        assert np.all(h_max_abs(lstm, **common) <= 1.0)


def test_every_step_target_puts_large_gradient_near_each_target():
    last = gradient_magnitudes(TinyRNNLayer, weight_scale=0.5, last_timestep_only=True, seq_len=15)
    every = gradient_magnitudes(TinyRNNLayer, weight_scale=0.5, last_timestep_only=False, seq_len=15)
    assert every.grad_norms[0] > 100 * last.grad_norms[0]
    assert every.grad_norms.min() > 0


def test_same_settings_give_same_numbers_and_layout_does_not_matter():
    class Transposed(TinyRNNLayer):
        """Declares b first; uses h @ W_h (not W_h @ h)."""

        def __init__(self, input_size, hidden_size, nonlinearity=torch.tanh):
            torch.nn.Module.__init__(self)
            self.input_size, self.hidden_size, self.nonlinearity = input_size, hidden_size, nonlinearity
            self.b = torch.nn.Parameter(torch.zeros(hidden_size))
            self.W_x = torch.nn.Parameter(torch.zeros(input_size, hidden_size))
            self.W_h = torch.nn.Parameter(torch.zeros(hidden_size, hidden_size))

        def forward(self, x):
            h = torch.zeros(x.shape[0], self.hidden_size)
            hs = []
            for t in range(x.shape[1]):
                h = self.nonlinearity(h @ self.W_h + x[:, t] @ self.W_x + self.b)
                hs.append(h)
            self.store_h_for_grad(hs)
            return torch.stack(hs, 1), h

    a = gradient_magnitudes(TinyRNNLayer, weight_scale=1.3, bias_scale=0.7, seed=5)
    b = gradient_magnitudes(TinyRNNLayer, weight_scale=1.3, bias_scale=0.7, seed=5)
    c = gradient_magnitudes(Transposed, weight_scale=1.3, bias_scale=0.7, seed=5)
    np.testing.assert_array_equal(a.grad_norms, b.grad_norms)
    assert spectral_radius_of(Transposed, 1.3, 5) == pytest.approx(spectral_radius_of(TinyRNNLayer, 1.3, 5), rel=1e-6)
    assert c.h_norms[0] == pytest.approx(a.h_norms[0], rel=1e-5)  # first step has no recurrence


def test_bad_arguments_give_clear_errors():
    with pytest.raises(ValueError, match="nonlinearity"):
        gradient_magnitudes(TinyRNNLayer, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="positive"):
        gradient_magnitudes(TinyRNNLayer, seq_len=0)

    class NoStore(TinyRNNLayer):
        def store_h_for_grad(self, h_list):
            pass

    with pytest.raises((RuntimeError, ValueError, IndexError, AttributeError)):
        gradient_magnitudes(NoStore)  # no hidden states to measure: the widget shows the error


# ---------------------------------------------------------------- widget (headless)

class Unfinished(torch.nn.Module):
    def __init__(self, input_size, hidden_size, nonlinearity=torch.tanh):
        super().__init__()
        raise NotImplementedError()


@pytest.fixture
def viz():
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    widget = GradientVisualizer({"RNNLayer": TinyRNNLayer, "LSTMLayer": TinyLSTMLayer})
    yield widget
    assert plt.get_fignums() == before, "the visualizer must not create pyplot figures"
    widget.close()


def _line_data(widget):
    return (np.array(widget.plot.h_line.get_ydata(), dtype=float).copy(),
            np.array(widget.plot.g_line.get_ydata(), dtype=float).copy())


def test_widget_controls_and_ranges(viz):
    assert viz.weight_scale.min <= -5 and viz.weight_scale.max >= 5
    assert viz.bias_scale.min <= -5 and viz.bias_scale.max >= 5
    assert set(v for _, v in viz.nonlinearity.options) == {"none", "tanh", "relu"}
    assert set(v for _, v in viz.target.options) == {True, False}
    assert list(viz.layer.options) == ["RNNLayer", "LSTMLayer"]
    assert viz.image.value[:8] == b"\x89PNG\r\n\x1a\n"
    assert viz.stats is not None and viz.error is None


def test_moving_the_weight_slider_changes_the_plot_in_place(viz):
    figure, image = viz.plot.figure, viz.image
    png0, (h0, g0) = viz.image.value, _line_data(viz)
    viz.weight_scale.value = 2.5
    png1, (h1, g1) = viz.image.value, _line_data(viz)
    assert png1 != png0
    assert not np.allclose(g0, g1) and not np.allclose(h0, h1)
    assert "2.5" in viz.plot.suptitle.get_text()
    assert viz.plot.figure is figure and viz.image is image  # same objects, updated in place
    assert len(figure.axes) == 2 and len(viz.plot.ax_h.lines) == 1 and len(viz.plot.ax_g.lines) == 1


def test_every_control_triggers_a_redraw(viz):
    changes = [(viz.bias_scale, -3.0), (viz.nonlinearity, "relu"), (viz.target, False), (viz.seq_len, 25),
               (viz.seed, 7), (viz.layer, "LSTMLayer")]
    for control, value in changes:
        before = viz.image.value
        control.value = value
        assert viz.image.value != before, control.description
        assert viz.error is None
    assert len(viz.plot.h_line.get_xdata()) == 25
    assert viz.nonlinearity.disabled  # LSTM gates have fixed activations
    assert "LSTM" in viz.status.value and "eigenvalue" not in viz.status.value


def test_reset_restores_start_values_with_one_redraw(viz):
    start = viz.image.value
    viz.weight_scale.value, viz.nonlinearity.value, viz.seq_len.value = -4.0, "none", 40
    calls = []
    original = viz.update
    viz.update = lambda: calls.append(1) or original()
    viz.reset()
    assert len(calls) == 1
    assert viz.settings()["weight_scale"] == gradviz.DEFAULTS["weight_scale"]
    assert viz.settings()["seq_len"] == gradviz.DEFAULTS["seq_len"]
    assert viz.image.value == start


def test_background_redraws_coalesce_and_end_on_the_latest_settings():
    widget = GradientVisualizer({"RNNLayer": TinyRNNLayer}, background=True)
    start = widget.redraws
    values = [round(0.1 * k, 2) for k in range(1, 31)]  # a fast drag: 30 change events
    for value in values:
        widget.weight_scale.value = value
    widget.wait()
    assert widget.stats.settings["weight_scale"] == values[-1]
    assert 1 <= widget.redraws - start < len(values), "stale redraws were not skipped"
    reference = gradient_magnitudes(TinyRNNLayer, **{k: v for k, v in widget.settings().items() if k != "layer"})
    np.testing.assert_allclose(widget.stats.grad_norms, reference.grad_norms)
    widget.reset()
    widget.wait()
    assert widget.stats.settings["weight_scale"] == gradviz.DEFAULTS["weight_scale"]
    widget.close()


def test_extreme_settings_do_not_raise(viz):
    viz.nonlinearity.value = "relu"
    viz.seq_len.value = 60
    viz.weight_scale.value = 5.0
    viz.bias_scale.value = 5.0
    assert viz.error is None and viz.image.value
    viz.weight_scale.value = -5.0
    viz.bias_scale.value = -5.0  # dead ReLUs: zeros are not drawn on the log axis
    assert viz.error is None and viz.image.value


def test_unfinished_layer_shows_a_message_instead_of_raising():
    widget = GradientVisualizer({"RNNLayer": Unfinished, "LSTMLayer": TinyLSTMLayer})
    assert widget.stats is None and "not implemented" in widget.error
    assert "not implemented" in widget.status.value
    widget.weight_scale.value = 2.0  # still no exception
    widget.layer.value = "LSTMLayer"
    assert widget.error is None and widget.stats is not None
    widget.close()


def test_layers_given_by_name_are_looked_up_when_used():
    namespace = {"RNNLayer": TinyRNNLayer}
    widget = GradientVisualizer(["RNNLayer", "LSTMLayer"], namespace=namespace)
    assert widget.error is None
    widget.layer.value = "LSTMLayer"  # not written yet (3h comes later in the notebook)
    assert widget.stats is None and "LSTMLayer is not defined yet" in widget.error
    namespace["LSTMLayer"] = TinyLSTMLayer  # the student runs the 3h cell ...
    widget.seed.value = 1  # ... and moves any control
    assert widget.error is None and widget.stats is not None
    assert widget.nonlinearity.disabled
    widget.close()
    with pytest.raises(ValueError, match="namespace"):
        GradientVisualizer(["RNNLayer"])


def test_display_bundle_carries_a_static_png(viz):
    bundle = viz._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert isinstance(bundle["image/png"], str)  # base64 text, as in a notebook file
    assert base64.b64decode(bundle["image/png"]) == viz.image.value
    nbformat.v4.new_output("display_data", data=bundle)  # validates against the notebook schema


def test_headless_show_makes_a_static_plot(monkeypatch, capsys):
    import IPython.display

    shown = []
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj))
    assert gradviz.show_gradient_visualizer({"RNNLayer": TinyRNNLayer}, namespace=dict(_NAMED)) is None
    assert len(shown) == 1 and isinstance(shown[0], IPython.display.Image)
    assert shown[0].data[:8] == b"\x89PNG\r\n\x1a\n"
    assert "static plot" in capsys.readouterr().out

    shown.clear()
    assert gradviz.show_gradient_visualizer({"RNNLayer": Unfinished}, namespace=dict(_NAMED)) is None
    assert len(shown) == 1 and "not implemented" in capsys.readouterr().out


def test_unknown_initial_setting_is_rejected():
    with pytest.raises(TypeError, match="weigth_scale"):
        GradientVisualizer({"RNNLayer": TinyRNNLayer}, weigth_scale=2.0)


# ---------------------------------------------------------------- polish: legend, log ticks, no warnings

def _legend_labels(plot) -> list[str]:
    return [text.get_text() for text in plot.ax_g.get_legend().get_texts()]


def test_legend_and_titles_give_no_answer_away(viz):
    """No guide line, eigenvalue or ρ in what the widget draws or says (3e asks for that)."""
    for layer in ("RNNLayer", "LSTMLayer"):
        viz.layer.value = layer
        assert viz.error is None and _legend_labels(viz.plot) == ["|dL/dh_t|"]
        texts = [viz.plot.suptitle.get_text(), viz.status.value, viz.plot.note.get_text()]
        texts += [ax.get_title() for ax in (viz.plot.ax_h, viz.plot.ax_g)]
        assert not any(word in text for text in texts for word in ("eigenvalue", "ρ", "rho", "border"))


@pytest.mark.parametrize("values", [np.array([0.31, 0.35, 0.4]), np.array([2e-3, 3e-3]), np.array([1.0, 1.0]),
                                    np.array([1e-12, 5e3])])
def test_log_axis_limits_span_whole_decades(values):
    low, high = gradviz.decade_limits(values)
    assert low <= values.min() / 3 and high >= values.max() * 3
    assert np.log10(low) == int(np.log10(low)) and np.log10(high) == int(np.log10(high))
    assert np.log10(high) - np.log10(low) >= 2  # at least two labelled decade ticks, whatever the data


@pytest.mark.parametrize("settings", [dict(), dict(layer="LSTMLayer"), dict(weight_scale=0.05, bias_scale=0.0),
                                      dict(nonlinearity="none", weight_scale=1.0)])
def test_both_axes_show_at_least_two_labelled_ticks(settings):
    png, stats, error = gradviz.static_plot({"RNNLayer": TinyRNNLayer, "LSTMLayer": TinyLSTMLayer}, parts=PARTS, **settings)
    assert error is None and png[:8] == b"\x89PNG\r\n\x1a\n"
    plot = gradviz.GradientPlot()
    plot.update(stats)
    plot.png()
    for ax in (plot.ax_h, plot.ax_g):
        low, high = ax.get_ylim()
        ticks = [t for t in ax.yaxis.get_major_locator().tick_values(low, high) if low <= t <= high]
        labels = [gradviz._decade_label(t, 0) for t in ticks]
        assert len([label for label in labels if label]) >= 2, (settings, ax.get_title(), ticks)


def test_drawing_writes_no_warnings(recwarn):
    """Neither the plot nor the unfinished-layer message makes matplotlib warn (e.g. a legend without handles)."""
    gc.collect()  # what earlier tests of this worker left for the collector warns now, not while drawing
    recwarn.clear()

    class Unfinished(TinyRNNLayer):
        def forward(self, x):
            raise NotImplementedError()

    gradviz.static_plot({"RNNLayer": Unfinished}, parts=PARTS)
    gradviz.static_plot({"RNNLayer": TinyRNNLayer, "LSTMLayer": TinyLSTMLayer}, parts=PARTS, layer="LSTMLayer")
    assert not [str(w.message) for w in recwarn.list]
