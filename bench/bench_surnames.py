"""Problem 4 benchmark: the reference hyperparameters vs. the tutorial's one-name-at-a-time SGD recipe.

Both train on the course split (seeded random 80/20) on one CPU thread, side by side in one run, so the
ratio is meaningful even on a busy machine. Prints a table and the time-to-equal-accuracy ratio, and
times rebuilding the reference from its state dict plus evaluating it (in-process), and `coursekit grade-log`
on the reference's log.

    HW6_DATA_MIRROR=../shared/data/names .venv/bin/python bench/bench_surnames.py [--tutorial-cap 240]
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from coursekit.helpers import trusted_grading_module, trusted_module
from coursekit.testing.courses import grading_folder, helper_folder, home_course

REPO = home_course().root
surnames = trusted_module(helper_folder(), "surnames")
surname_log = trusted_module(helper_folder(), "surname_log")
grading = trusted_grading_module(grading_folder(), helper_folder(), "surnames")  # instructor-only reference code
load_names = trusted_module(helper_folder(), "surname_data").load_names

REFERENCE = dict(model_type="lstm", hidden_size=64, num_layers=1, dropout=0.2, optimizer_class=torch.optim.Adam,
                 lr=0.01, batch_size=512)


# The notebook's reference model is exactly the specified architecture, which the grading package defines.
RecurrentClassifier = grading.SpecClassifier


class TutorialRNN(nn.Module):
    """The tutorial's cell: one-hot letter and hidden state concatenated, two linear maps, log-softmax."""

    def __init__(self, n_letters: int, hidden: int, n_categories: int):
        super().__init__()
        self.hidden_size = hidden
        self.i2h = nn.Linear(n_letters + hidden, hidden)
        self.i2o = nn.Linear(n_letters + hidden, n_categories)

    def step(self, letter_onehot, h):
        combined = torch.cat([letter_onehot, h], dim=1)
        return torch.log_softmax(self.i2o(combined), dim=1), self.i2h(combined)

    def run(self, x, last_pos):
        """Log-probabilities after each name's last letter, for a padded batch (used for evaluation)."""
        onehot = torch.eye(surnames.N_LETTERS + 1)[x][:, :, :surnames.N_LETTERS]
        h = torch.zeros(len(x), self.hidden_size)
        outs = []
        for t in range(x.shape[1]):
            out, h = self.step(onehot[:, t], h)
            outs.append(out)
        return torch.stack(outs, 1)[torch.arange(len(x)), last_pos]


def train_reference(data, train_idx, eval_idx) -> dict:
    torch.manual_seed(0)
    model = RecurrentClassifier(surnames.VOCAB_SIZE, REFERENCE["hidden_size"], len(data.categories),
                                num_layers=REFERENCE["num_layers"], dropout=REFERENCE["dropout"],
                                model_type=REFERENCE["model_type"])
    start = time.perf_counter()
    history = surnames.train_classifier(model, data, train_idx, eval_idx, optimizer_class=REFERENCE["optimizer_class"],
                                        lr=REFERENCE["lr"], batch_size=REFERENCE["batch_size"],
                                        epochs=surnames.EPOCHS, seed=0, progress=False)
    total = time.perf_counter() - start
    curve = list(zip(history["seconds"], history["eval_accuracies"]))
    return {"model": model, "history": history, "seconds": total, "curve": curve}


def train_tutorial(data, train_idx, eval_idx, target: float, cap_seconds: float, eval_every: int = 5000) -> dict:
    torch.manual_seed(0)
    model = TutorialRNN(surnames.N_LETTERS, 128, len(data.categories))
    lr, loss_fn = 0.005, nn.NLLLoss()
    x_tr, last_tr, y_tr = data.subset(train_idx)
    x_ev, last_ev, y_ev = data.subset(eval_idx)
    eye = torch.eye(surnames.N_LETTERS)
    gen = torch.Generator().manual_seed(0)
    train_seconds, iterations, curve = 0.0, 0, []
    reached = None
    while train_seconds < cap_seconds:
        picks = torch.randint(0, len(train_idx), (eval_every,), generator=gen).tolist()
        t0 = time.perf_counter()
        for i in picks:   # one name at a time, plain SGD, as in the tutorial
            h = torch.zeros(1, 128)
            for t in range(int(last_tr[i]) + 1):
                out, h = model.step(eye[x_tr[i, t]].unsqueeze(0), h)
            loss = loss_fn(out, y_tr[i:i + 1])
            model.zero_grad()
            loss.backward()
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(p.grad, alpha=-lr)
        train_seconds += time.perf_counter() - t0
        iterations += eval_every
        with torch.no_grad():   # evaluation is not counted as training time
            acc = float((model.run(x_ev, last_ev).argmax(1) == y_ev).float().mean() * 100)
        curve.append((train_seconds, acc))
        if reached is None and acc >= target:
            reached = train_seconds
            break
    return {"seconds": train_seconds, "iterations": iterations, "curve": curve, "reached": reached}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tutorial-cap", type=float, default=240.0,
                        help="stop the tutorial recipe after this many seconds of training (default 240)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    names, checksum = load_names(progress=False)
    data = grading.course_data(names, checksum)
    train_idx, eval_idx = surnames.random_split(len(data))
    print(f"data {len(data)} names, train {len(train_idx)}, eval {len(eval_idx)}, torch {torch.__version__}, "
          f"1 thread")

    ref = train_reference(data, train_idx, eval_idx)
    final = ref["history"]["eval_accuracies"][-1]
    first80 = next((t for t, a in ref["curve"] if a >= 80.0), None)
    print(f"reference ({REFERENCE['model_type']} {REFERENCE['hidden_size']}, batch {REFERENCE['batch_size']}, "
          f"Adam lr {REFERENCE['lr']}): {ref['seconds']:.1f} s for 20 epochs, final eval accuracy {final:.2f}%, "
          f"first >= 80% after ~{first80:.1f} s" if first80 else "never reached 80%")

    print("reference curve: " + ", ".join(f"{t:.1f}s:{a:.1f}%" for t, a in ref["curve"]))
    target = 80.0
    tut = train_tutorial(data, train_idx, eval_idx, target=target, cap_seconds=args.tutorial_cap)
    best = max(a for _, a in tut["curve"])
    print("tutorial recipe (one name per step, SGD lr 0.005, hidden 128): "
          + ", ".join(f"{t:.0f}s:{a:.1f}%" for t, a in tut["curve"]))
    if tut["reached"] is not None and first80:
        ratio = f"{tut['reached'] / first80:.1f}x"
        print(f"time to {target:.0f}% eval accuracy: reference {first80:.1f} s, tutorial {tut['reached']:.1f} s "
              f"-> ratio {ratio}")
    else:
        ratio = f">= {tut['seconds'] / (first80 or ref['seconds']):.1f}x"
        print(f"tutorial recipe did not reach {target:.0f}% in {tut['seconds']:.0f} s of training "
              f"({tut['iterations']} names, best {best:.1f}%): ratio {ratio}")

    # time to equal accuracy at the best level both recipes reach (whole percent)
    level = float(min(math.floor(best), math.floor(max(a for _, a in ref["curve"]))))
    t_ref = next(t for t, a in ref["curve"] if a >= level)
    t_tut = next(t for t, a in tut["curve"] if a >= level)
    print(f"time to {level:.0f}% eval accuracy (best level both reach): reference {t_ref:.1f} s, tutorial "
          f"{t_tut:.1f} s -> ratio {t_tut / t_ref:.1f}x")

    # what grading the trained weights costs in-process (the notebook grader and grade-log both pay it)
    t0 = time.perf_counter()
    state = {key: value.detach().numpy() for key, value in ref["model"].state_dict().items()}
    rebuilt = grading.classifier_from_state_dict(state, len(data.categories))
    recomputed = grading.evaluation_accuracy(rebuilt, data)
    print(f"classifier_from_state_dict + evaluation_accuracy ({len(eval_idx)} names): "
          f"{time.perf_counter() - t0:.2f} s, accuracy {recomputed:.4f}% (logged {final:.4f}%)")

    # grade-log on the reference's log (no student code runs: the weights load into the specified model)
    with tempfile.TemporaryDirectory() as tmp:
        import inspect  # the class is defined in a file, so its source is available
        assert inspect.getsource(RecurrentClassifier.forward)
        hp = surname_log.hparams_dict(REFERENCE["hidden_size"], REFERENCE["num_layers"], REFERENCE["dropout"],
                                      REFERENCE["model_type"], REFERENCE["optimizer_class"], REFERENCE["lr"],
                                      REFERENCE["batch_size"], surnames.EPOCHS, 0)
        log = surname_log.build_submission_log(ref["model"], ref["history"], hp, "Bench", data)
        path = surname_log.write_submission_log(Path(tmp) / "submission_log.json", log)
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "coursekit", "--course-dir", str(REPO), "grade-log", str(path)],
                              capture_output=True, text=True, cwd=REPO)
        seconds = time.perf_counter() - t0
        result = json.loads(done.stdout) if done.returncode == 0 else {"error": done.stderr[-300:]}
        print(f"grade-log on the reference log: {seconds:.1f} s, exit {done.returncode}, "
              f"score {result.get('score')}/{result.get('max_score')}, accuracy {result.get('accuracy')}, "
              f"log size {path.stat().st_size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
