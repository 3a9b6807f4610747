"""Gradient-magnitude visualizer for Problem 3d (recurrent nets: RNN and LSTM): the plot and the widget.

The numbers come from the student's own 3d measurement (``gradient_norms`` in the notebook: the norms of
every hidden state ``|h_t|`` and of every hidden-state gradient ``|dL/dh_t|``), run by
:func:`hw6utils.gradients.gradient_magnitudes` on a freshly built, rescaled layer; this module only shows
them. :class:`GradientVisualizer` puts ipywidgets controls around the measurement and
draws one matplotlib figure (rendered to PNG into an ``ipywidgets.Image``) that is redrawn in place on
every change. It needs no Colab calls and no ipympl, so it works in JupyterLab 4 and Notebook 7. Run
headless (nbconvert, nbgrader: ``NBGRADER_EXECUTION`` is set) it shows a static plot instead of
controls. The measurement lives apart so that tests and the grader need neither widgets nor plots.
"""
from __future__ import annotations

import base64
import html
import io
import math
import os
import threading
import time
from typing import Any, Callable, Mapping, Sequence, Union

import numpy as np
import torch

from .gradients import NONLINEARITIES, GradientStats, accepts_nonlinearity, gradient_magnitudes

NONLINEARITY_LABELS = {"none": "none (linear)", "tanh": "tanh", "relu": "ReLU"}

DEFAULTS: dict[str, Any] = {
    "weight_scale": 1.0,
    "bias_scale": 0.0,
    "nonlinearity": "tanh",
    "last_timestep_only": True,
    "seq_len": 10,
    "seed": 0,
}
"""Start values of the visualizer controls (the reset button returns to these)."""


# ----------------------------------------------------------------------------------------------
# Drawing (matplotlib object API only: no pyplot, so nothing is auto-displayed or piles up)
# ----------------------------------------------------------------------------------------------

def _positive(values: np.ndarray) -> np.ndarray:
    """Values safe for a log axis: zeros, negatives, inf and NaN become NaN (not drawn)."""
    out = np.asarray(values, dtype=np.float64).copy()
    out[~np.isfinite(out) | (out <= 0)] = np.nan
    return out


def _decade_label(value: float, _position: int) -> str:
    """'1e-3'-style label for a power of ten (cheap to draw, unlike mathtext)."""
    if value <= 0 or not np.isfinite(value):
        return ""
    exponent = math.log10(value)
    if abs(exponent - round(exponent)) > 1e-6:
        return ""
    exponent = int(round(exponent))
    return {0: "1", 1: "10"}.get(exponent, f"1e{exponent}")


def decade_limits(values: np.ndarray, margin: float = 3.0) -> tuple[float, float]:
    """Log-axis limits around positive ``values`` that start and end on powers of ten.

    A margin of ``margin`` on either side, then rounded outwards to whole decades: the axis always shows
    at least two labelled decade ticks, even when every value lies within one decade.
    """
    if not np.size(values):
        return 1e-8, 1.0
    low = math.floor(math.log10(float(np.min(values)) / margin))
    high = math.ceil(math.log10(float(np.max(values)) * margin))
    return 10.0 ** low, 10.0 ** max(high, low + 1)


class GradientPlot:
    """One figure with two log-scale panels (|h_t| and |dL/dh_t|) whose artists are updated in place."""

    def __init__(self, width: float = 9.0, height: float = 3.9, dpi: int = 80) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullLocator

        self.dpi = dpi
        self.figure = Figure(figsize=(width, height), dpi=dpi)
        # fixed margins: constrained/tight layout would re-measure every label on each redraw
        self.figure.subplots_adjust(left=0.08, right=0.98, bottom=0.13, top=0.78, wspace=0.22)
        FigureCanvasAgg(self.figure)
        self.ax_h, self.ax_g = self.figure.subplots(1, 2)
        (self.h_line,) = self.ax_h.plot([], [], "o-", color="tab:blue", label="|h_t|")
        (self.g_line,) = self.ax_g.plot([], [], "o-", color="tab:red", label="|dL/dh_t|")
        for ax, title in ((self.ax_h, "hidden-state norm |h_t|"),
                          (self.ax_g, "gradient norm |dL/dh_t|  (flows from t = T backwards)")):
            ax.set_yscale("log")
            ax.set_xlabel("timestep t")
            ax.set_title(title, fontsize=10)
            ax.grid(True, which="major", alpha=0.3)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            # plain-text tick labels: the default log labels go through mathtext, which is slow
            ax.yaxis.set_major_formatter(FuncFormatter(_decade_label))
            ax.yaxis.set_major_locator(LogLocator(base=10.0, numticks=7))
            ax.yaxis.set_minor_locator(NullLocator())  # dozens of minor tick lines cost more than the data
        self.note = self.ax_g.text(0.02, 0.03, "", transform=self.ax_g.transAxes, fontsize=8, color="0.3")
        self._legend()
        self.suptitle = self.figure.suptitle("", fontsize=10)

    def _legend(self) -> None:
        self.ax_g.legend(handles=[self.g_line], labels=[self.g_line.get_label()], loc="upper left", fontsize=8)

    def update(self, stats: GradientStats) -> None:
        """Move the existing artists to the new data and rescale the axes."""
        t = stats.timesteps
        h, g = _positive(stats.h_norms), _positive(stats.grad_norms)
        self.h_line.set_data(t, h)
        self.g_line.set_data(t, g)
        self._legend()
        for ax, data in ((self.ax_h, h), (self.ax_g, g)):
            ax.set_xlim(0.5, len(t) + 0.5)
            finite = data[np.isfinite(data)]
            ax.set_ylim(*decade_limits(finite))
        problems = []
        if not stats.finite:
            problems.append("overflow: some values are inf/NaN (not drawn)")
        if np.any(stats.grad_norms == 0) or np.any(stats.h_norms == 0):
            problems.append("exact zeros (e.g. dead ReLUs) are not drawn on a log axis")
        self.note.set_text("; ".join(problems))
        s = stats.settings
        target = "last step only" if s.get("last_timestep_only") else "every step"
        parts = [str(s.get("layer"))]
        if s.get("layer") != "LSTMLayer":
            parts.append(NONLINEARITY_LABELS.get(s.get("nonlinearity"), str(s.get("nonlinearity"))))
        parts += [f"target: {target}", f"T = {s.get('seq_len')}", f"seed {s.get('seed')}"]
        second = f"weight scale {s.get('weight_scale'):.2f}, bias scale {s.get('bias_scale'):.2f}"
        self.suptitle.set_text("  ·  ".join(parts) + "\n" + second)

    def show_message(self, message: str) -> None:
        """Clear the data and show a message (e.g. the layer is not implemented yet)."""
        for line in (self.h_line, self.g_line):
            line.set_data([], [])
        self.note.set_text("")
        self.suptitle.set_text(message)

    def png(self) -> bytes:
        """Render the figure to PNG bytes."""
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png", dpi=self.dpi, pil_kwargs={"compress_level": 1})
        return buffer.getvalue()


def _describe_error(error: BaseException) -> str:
    if isinstance(error, LayerNotReady):
        return str(error)
    if isinstance(error, NotImplementedError):
        return ("This is not implemented yet (NotImplementedError): finish the layer, RecurrentRegressionModel, "
                "generate_batch, loss_fn and gradient_norms above, then move any control.")
    return f"Could not run the layer: {type(error).__name__}: {error}"


class LayerNotReady(LookupError):
    """A layer named in the visualizer is not defined (yet) in the notebook."""


LayerSpec = Union[Callable[..., torch.nn.Module], str]


def _normalize_layers(layers: Mapping[str, LayerSpec] | Sequence[str]) -> dict[str, LayerSpec]:
    if isinstance(layers, str):
        layers = [layers]
    if not isinstance(layers, Mapping):
        layers = {name: name for name in layers}
    if not layers:
        raise ValueError("the visualizer needs at least one layer, e.g. {'RNNLayer': RNNLayer}")
    return dict(layers)


def resolve_layer(spec: LayerSpec, namespace: Mapping[str, Any] | None) -> Callable[..., torch.nn.Module]:
    """A layer class, or the class a name refers to in ``namespace`` *now* (late binding).

    Late binding lets the 3d visualizer offer ``LSTMLayer`` before the student has written it (3h):
    once its cell has run, the same widget picks it up.
    """
    if not isinstance(spec, str):
        return spec
    if namespace is None:
        raise ValueError(f"layer {spec!r} is given by name: pass namespace=globals() to look it up")
    factory = namespace.get(spec)
    if factory is None:
        raise LayerNotReady(f"{spec} is not defined yet: write it and run its cell, then move any control.")
    return factory


STUDENT_PARTS = {"model_class": "RecurrentRegressionModel", "batch_fn": "generate_batch",
                 "measure": "gradient_norms"}
"""What the visualizer runs besides the layer, by argument of ``gradient_magnitudes``: the student's 3b
model, 3c data and 3d measurement (``loss_fn`` is called by the measurement itself)."""


def resolve_parts(namespace: Mapping[str, Any] | None, parts: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The student's model class, batch function and measurement: given in ``parts``, else looked up by
    name in ``namespace`` now (late binding, like the layers)."""
    given = dict(parts or {})
    return {arg: given[arg] if arg in given else resolve_layer(name, namespace) for arg, name in STUDENT_PARTS.items()}


def headless() -> bool:
    """True when the notebook is executed without a person (nbgrader) or outside a Jupyter kernel."""
    if os.environ.get("NBGRADER_EXECUTION"):
        return True
    try:
        from IPython import get_ipython
    except ImportError:
        return True
    shell = get_ipython()
    return shell is None or not hasattr(shell, "kernel")


# ----------------------------------------------------------------------------------------------
# The widget
# ----------------------------------------------------------------------------------------------

def _widget_base() -> type:
    import ipywidgets

    return ipywidgets.VBox


class GradientVisualizer(_widget_base()):  # type: ignore[misc]
    """ipywidgets controls + one in-place-updated plot of ``|h_t|`` and ``|dL/dh_t|``.

    ``layers`` maps a display name to a layer class, e.g. ``{"RNNLayer": RNNLayer, "LSTMLayer":
    LSTMLayer}``, or lists names to look up in ``namespace`` (the notebook's ``globals()``) each time
    they are used, so a layer written later in the notebook appears without re-running this cell. The
    student's model, data and measurement are looked up the same way (:data:`STUDENT_PARTS`). Every
    control change recomputes with :func:`gradient_magnitudes` and re-renders
    the same figure into the same ``ipywidgets.Image``. When displayed, the widget also offers a
    static PNG so that saved or headless-executed notebooks still show the plot.
    """

    def __init__(self, layers: Mapping[str, LayerSpec] | Sequence[str], *,
                 namespace: Mapping[str, Any] | None = None, parts: Mapping[str, Any] | None = None,
                 hidden_size: int = 16, max_seq_len: int = 60, background: bool = False, **initial: Any) -> None:
        import ipywidgets as w

        unknown = set(initial) - set(DEFAULTS) - {"layer"}
        if unknown:
            raise TypeError(f"unknown settings {sorted(unknown)}; allowed: {sorted(DEFAULTS)} and 'layer'")
        self.layers = _normalize_layers(layers)
        self.namespace = namespace
        self.parts = parts
        self.hidden_size = hidden_size
        self.defaults = {**DEFAULTS, "layer": next(iter(self.layers))}
        self.defaults.update(initial)
        d = self.defaults
        style = {"description_width": "110px"}
        slider = dict(min=-5.0, max=5.0, step=0.05, readout_format=".2f", continuous_update=True,
                      style=style, layout=w.Layout(width="380px"))
        self.weight_scale = w.FloatSlider(value=d["weight_scale"], description="weight scale", **slider)
        self.bias_scale = w.FloatSlider(value=d["bias_scale"], description="bias scale", **slider)
        self.nonlinearity = w.Dropdown(options=[(NONLINEARITY_LABELS[k], k) for k in NONLINEARITIES],
                                       value=d["nonlinearity"], description="nonlinearity", style=style)
        self.target = w.Dropdown(options=[("every step", False), ("last step only", True)],
                                 value=d["last_timestep_only"], description="target", style=style)
        self.layer = w.Dropdown(options=list(self.layers), value=d["layer"], description="recurrent cell",
                                style=style)
        self.seq_len = w.IntSlider(value=d["seq_len"], min=2, max=max(max_seq_len, d["seq_len"]),
                                   description="sequence length", continuous_update=False, style=style,
                                   layout=w.Layout(width="380px"))
        self.seed = w.BoundedIntText(value=d["seed"], min=0, max=1_000_000, description="seed", style=style,
                                     layout=w.Layout(width="220px"))
        self.reset_button = w.Button(description="reset", icon="undo", tooltip="back to the start values")
        self.status = w.HTML()
        self.image = w.Image(format="png")
        self.image.add_class("gradviz-plot")
        self.plot = GradientPlot()
        self.stats: GradientStats | None = None
        self.error: str | None = None
        self._updating = False
        # background=True: redraws run in one worker thread that always draws the *latest* settings, so
        # a fast slider drag (dozens of change events) cannot pile up a backlog of stale redraws.
        self.background = background
        self.redraws = 0
        self._render_lock = threading.Lock()
        self._queue_lock = threading.Lock()
        self._pending = False
        self._worker: threading.Thread | None = None

        self.controls = [self.weight_scale, self.bias_scale, self.nonlinearity, self.target, self.layer,
                         self.seq_len, self.seed]
        for control in self.controls:
            control.observe(self._on_change, names="value")
        self.reset_button.on_click(lambda _button: self.reset())
        left = w.VBox([self.weight_scale, self.bias_scale, self.seq_len, self.seed])
        right = w.VBox([self.layer, self.nonlinearity, self.target, self.reset_button])
        super().__init__([w.HBox([left, right]), self.status, self.image])
        self.add_class("gradviz")
        self.update()

    # -- state ------------------------------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        """Current control values as keyword arguments of :func:`gradient_magnitudes` (plus layer)."""
        return dict(layer=self.layer.value, weight_scale=float(self.weight_scale.value),
                    bias_scale=float(self.bias_scale.value), nonlinearity=self.nonlinearity.value,
                    last_timestep_only=bool(self.target.value), seq_len=int(self.seq_len.value),
                    seed=int(self.seed.value))

    def compute(self) -> GradientStats:
        """Run :func:`gradient_magnitudes` for the current controls (raises what the layer raises)."""
        settings = self.settings()
        factory = resolve_layer(self.layers[settings.pop("layer")], self.namespace)
        return gradient_magnitudes(factory, hidden_size=self.hidden_size, **resolve_parts(self.namespace, self.parts),
                                   **settings)

    def update(self) -> GradientStats | None:
        """Recompute and redraw now; errors from the student's layer are shown, never raised."""
        with self._render_lock:
            self.redraws += 1
            return self._update_locked()

    def _update_locked(self) -> GradientStats | None:
        try:
            is_lstm = not accepts_nonlinearity(resolve_layer(self.layers[self.layer.value], self.namespace))
        except LookupError:
            is_lstm = False
        self.nonlinearity.disabled = is_lstm
        try:
            self.stats = self.compute()
            self.error = None
        except Exception as error:  # noqa: BLE001 - any failure of student code becomes a message
            self.stats = None
            self.error = _describe_error(error)
        if self.stats is None:
            self.plot.show_message(self.error or "")
            self.status.value = f"<b style='color:#b00'>{html.escape(self.error or '')}</b>"
        else:
            self.plot.update(self.stats)
            self.status.value = self._status_html(self.stats, is_lstm)
        self.image.value = self.plot.png()
        return self.stats

    def _status_html(self, stats: GradientStats, is_lstm: bool) -> str:
        note = "LSTM: the gates have fixed activations, so the nonlinearity control does not apply" if is_lstm else ""
        g = stats.grad_norms
        if len(g) > 1 and np.isfinite(g[0]) and np.isfinite(g[-1]) and g[-1] > 0:
            ratio = f"|dL/dh_1| / |dL/dh_T| = {g[0] / g[-1]:.3g}"
            note = f"{note} &nbsp;|&nbsp; {ratio}" if note else ratio
        return note

    def _on_change(self, _change: Mapping[str, Any]) -> None:
        if not self._updating:
            self.request_update()

    def request_update(self) -> None:
        """Redraw now (default), or let the background worker redraw with the latest settings."""
        if not self.background:
            self.update()
            return
        with self._queue_lock:
            self._pending = True
            if self._worker is None:
                self._worker = threading.Thread(target=self._drain, name="gradviz-redraw", daemon=True)
                self._worker.start()

    def _drain(self) -> None:
        while True:
            with self._queue_lock:
                if not self._pending:
                    self._worker = None
                    return
                self._pending = False
            self.update()

    def wait(self, timeout: float = 30.0) -> None:
        """Block until pending background redraws are done (for tests and scripts)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._queue_lock:
                worker = self._worker
            if worker is None:
                return
            worker.join(timeout=0.05)
        raise TimeoutError("the visualizer did not finish redrawing")

    def reset(self) -> None:
        """Put every control back to its start value and redraw once."""
        self._updating = True
        try:
            d = self.defaults
            self.layer.value = d["layer"]
            self.weight_scale.value = d["weight_scale"]
            self.bias_scale.value = d["bias_scale"]
            self.nonlinearity.value = d["nonlinearity"]
            self.target.value = d["last_timestep_only"]
            self.seq_len.value = d["seq_len"]
            self.seed.value = d["seed"]
        finally:
            self._updating = False
        self.request_update()

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        """Widget view plus a static PNG, so saved/headless notebooks still show the current plot."""
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is None:
            return None
        bundle = dict(bundle)
        # mime bundles carry binary data as base64 text (raw bytes would not survive the JSON message)
        bundle["image/png"] = base64.b64encode(self.image.value).decode("ascii")
        return bundle


def static_plot(layers: Mapping[str, LayerSpec] | Sequence[str], *, namespace: Mapping[str, Any] | None = None,
                parts: Mapping[str, Any] | None = None, hidden_size: int = 16, **settings: Any) -> tuple[bytes, GradientStats | None, str | None]:
    """PNG, stats and error message for one setting, without any widget (used when headless)."""
    layers = _normalize_layers(layers)
    name = settings.pop("layer", next(iter(layers)))
    merged = {**DEFAULTS, **settings}
    plot = GradientPlot()
    try:
        factory = resolve_layer(layers[name], namespace)
        stats = gradient_magnitudes(factory, hidden_size=hidden_size, **resolve_parts(namespace, parts), **merged)
    except Exception as error:  # noqa: BLE001 - student code may be unfinished
        message = _describe_error(error)
        plot.show_message(message)
        return plot.png(), None, message
    plot.update(stats)
    return plot.png(), stats, None


def show_gradient_visualizer(layers: Mapping[str, LayerSpec] | Sequence[str] = ("RNNLayer", "LSTMLayer"), *,
                             namespace: Mapping[str, Any] | None = None, hidden_size: int = 16,
                             **initial: Any) -> GradientVisualizer | None:
    """Display the interactive visualizer, or a static plot when nobody is watching.

    Headless (``NBGRADER_EXECUTION`` set, or no Jupyter kernel) it displays one PNG for the start
    settings and a one-line summary, and returns None; it never raises because of the student's
    layer.
    """
    from IPython.display import Image, display

    if headless():
        png, stats, error = static_plot(layers, namespace=namespace, hidden_size=hidden_size, **initial)
        display(Image(data=png, format="png"))
        if error:
            print(error)
        else:
            print("static plot (headless run)")
        return None
    visualizer = GradientVisualizer(layers, namespace=namespace, hidden_size=hidden_size, background=True, **initial)
    display(visualizer)
    return visualizer
