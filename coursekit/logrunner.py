"""Runs INSIDE the sandbox for `coursekit grade-log` (copied into the sandbox's working folder).

Reads ``model.json`` (the log's source, hyperparameters and weights), ``x.npy`` and ``last_pos.npy``
(the canonical evaluation names, encoded by the trusted side; no labels), rebuilds the model with the
course copy of ``hw6utils/surnames.py`` (copied next to it as ``surnames.py``) and writes the arg-max
predictions to ``result.json``. Exit code 0 with a result, 3 when the student code or weights fail.
"""
import json
import sys
import traceback

RESULT = "result.json"


def write(result: dict) -> None:
    with open(RESULT, "w", encoding="utf-8") as out:
        json.dump(result, out)


def main() -> int:
    import numpy as np
    import torch

    torch.set_num_threads(1)
    sys.path.insert(0, ".")
    import surnames

    spec = json.load(open("model.json", encoding="utf-8"))
    x = torch.from_numpy(np.load("x.npy", allow_pickle=False))
    last_pos = torch.from_numpy(np.load("last_pos.npy", allow_pickle=False))
    try:
        model = surnames.rebuild_model(spec, n_categories=spec["n_categories"])
    except ValueError as exc:
        write({"ok": False, "stage": "weights", "error": str(exc)[:2000]})
        return 3
    except BaseException as exc:  # anything the student code raises while defining or building the model
        write({"ok": False, "stage": "build", "error": "".join(traceback.format_exception_only(exc))[-2000:]})
        return 3
    try:
        logits = surnames.predict_logits(model, x, last_pos)
        if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != (len(x), spec["n_categories"]):
            raise ValueError(f"forward returned shape {getattr(logits, 'shape', None)}, "
                             f"expected {(len(x), spec['n_categories'])}")
        if not torch.isfinite(logits).all():
            raise ValueError("forward returned NaN or inf")
    except BaseException as exc:
        write({"ok": False, "stage": "forward", "error": "".join(traceback.format_exception_only(exc))[-2000:]})
        return 3
    write({"ok": True, "predictions": logits.argmax(1).tolist()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
