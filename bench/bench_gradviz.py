"""Benchmark the Problem 3d visualizer: one slider update (recompute + redraw) at T=10, H=16.

Run: .venv/bin/python bench/bench_gradviz.py [--repeats N]
Prints the median time of a full update (what a person waits for after moving a slider; wall clock
and process CPU time), of its two parts measured side by side in the same run (forward/backward only;
matplotlib render only), and the update's share of the 150 ms budget. Exits 1 if it is over budget. Uses small independent layers (coursekit/testing/tiny_layers.py),
or the notebook's reference layers with --notebook.
"""
from __future__ import annotations

import argparse
import statistics
import time

BUDGET_MS = 150.0


def timed(fn, repeats: int, clock=time.perf_counter) -> list[float]:
    samples = []
    for i in range(repeats):
        start = clock()
        fn(i)
        samples.append((clock() - start) * 1000.0)
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--notebook", action="store_true", help="use RNNLayer/LSTMLayer from rnn_gradients.ipynb")
    args = parser.parse_args(argv)

    import torch
    from tqdm import tqdm

    torch.set_num_threads(1)
    from coursekit.helpers import trusted_module
    from coursekit.testing.courses import helper_folder

    gradient_magnitudes = trusted_module(helper_folder(), "gradients").gradient_magnitudes
    GradientVisualizer = trusted_module(helper_folder(), "gradviz").GradientVisualizer

    if args.notebook:
        from coursekit.testing.notebooks import solution_namespace

        ns = solution_namespace("rnn_gradients.ipynb", until_grade_id="p3i_question", skip_grade_ids=("gradviz_show",))
        layers = {"RNNLayer": ns["RNNLayer"], "LSTMLayer": ns["LSTMLayer"]}
    else:
        from coursekit.testing.tiny_layers import TinyLSTMLayer, TinyRNNLayer

        layers = {"RNNLayer": TinyRNNLayer, "LSTMLayer": TinyLSTMLayer}

    viz = GradientVisualizer(layers, hidden_size=16, seq_len=10)
    values = [round(-5 + 10 * (i % 37) / 36, 2) for i in range(args.repeats)]
    rows = []
    for cell in tqdm(list(layers), desc="cells", unit="cell"):
        viz.layer.value = cell
        viz.update()  # warm-up
        factory = layers[cell]

        def full(i: int) -> None:
            viz.weight_scale.value = values[i] if viz.weight_scale.value != values[i] else values[i] + 0.01

        def compute_only(i: int) -> None:
            gradient_magnitudes(factory, weight_scale=values[i], seq_len=10, hidden_size=16)

        def render_only(_i: int) -> None:
            viz.plot.png()

        # interleave the three measurements so machine noise hits them alike
        t_full, t_cpu, t_compute, t_render = [], [], [], []
        for i in range(args.repeats):
            t_full += timed(lambda _j: full(i), 1)
            # the same update on the process CPU clock: less sensitive to other jobs on the machine
            t_cpu += timed(lambda _j: full((i + 1) % args.repeats), 1, clock=time.process_time)
            t_compute += timed(lambda _j: compute_only(i), 1)
            t_render += timed(lambda _j: render_only(i), 1)
        rows.append((cell, statistics.median(t_full), statistics.median(t_cpu), statistics.median(t_compute),
                     statistics.median(t_render)))

    print(f"\nslider update at T=10, H=16, {args.repeats} repeats each (median ms)")
    print(f"{'cell':<10} {'update':>8} {'upd cpu':>8} {'compute':>8} {'render':>8} {'render/update':>14} "
          f"{'update/budget':>14}")
    worst = 0.0
    for cell, full_ms, cpu_ms, compute_ms, render_ms in rows:
        worst = max(worst, full_ms / BUDGET_MS)
        print(f"{cell:<10} {full_ms:8.1f} {cpu_ms:8.1f} {compute_ms:8.1f} {render_ms:8.1f} "
              f"{render_ms / full_ms:14.2f} {full_ms / BUDGET_MS:14.2f}")
    print(f"worst update uses {100 * worst:.0f}% of the {BUDGET_MS:.0f} ms budget")
    viz.close()
    return 0 if worst < 1.0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
