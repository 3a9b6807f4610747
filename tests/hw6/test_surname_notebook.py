"""Problem 4 notebook: its tests pass on the reference, reject wrong code and fail on the release stubs;
the trusted pipeline (batches, grading bar, log round trip) behaves."""
from __future__ import annotations

import json
import os
import re

import pytest
import torch
from torch import nn

from _rejection import assert_accepted, assert_rejected
from notebook_cells import (SOURCE_DIR, load, nbgrader_meta, run_test_cell, runnable_source, solution_namespace,
                            working_directory)

NB = "surname_classification.ipynb"
UNIT_TESTS = ["test_normalize", "test_encode", "test_model_structure", "test_model_forward"]


@pytest.fixture(scope="module")
def ref():
    """Namespace of the reference cells up to (not including) the training."""
    return solution_namespace(NB, until_grade_id="p4_hparams")


def test_reference_passes_unit_tests(ref):
    for grade_id in UNIT_TESTS:
        run_test_cell(NB, grade_id, dict(ref))


def test_metadata_points_and_ids():
    nb = load(SOURCE_DIR / NB)
    metas = [nbgrader_meta(c) for c in nb.cells]
    ids = [m["grade_id"] for m in metas]
    assert len(ids) == len(set(ids)) and all(re.fullmatch(r"[a-z0-9_]+", i) for i in ids)
    points = {m["grade_id"]: m["points"] for m in metas if m.get("grade")}
    assert points == {"test_normalize": 2, "test_encode": 2, "test_model_structure": 3, "test_model_forward": 3,
                      "test_accuracy": 5, "p4a_misuse": 2}
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code")


def release_stub_namespace() -> dict:
    """Run the notebook as nbgrader releases it (solution regions replaced by NotImplementedError stubs)."""
    nb = load(SOURCE_DIR / NB)
    ns: dict = {"__name__": "__main__"}
    pattern = re.compile(r"^([ \t]*)### BEGIN SOLUTION\n.*?^[ \t]*### END SOLUTION\n?", re.M | re.S)
    with working_directory(SOURCE_DIR):
        import sys
        sys.path.insert(0, str(SOURCE_DIR))
        try:
            for cell in nb.cells:
                meta = nbgrader_meta(cell)
                if meta.get("grade_id") == "p4_hparams":
                    break
                if cell.cell_type != "code" or (meta.get("grade") and not meta.get("solution")):
                    continue
                source = pattern.sub(lambda m: f"{m.group(1)}# YOUR CODE HERE\n{m.group(1)}raise NotImplementedError()\n",
                                     cell.source + "\n")
                exec(compile(runnable_source(source), "<release>", "exec"), ns)
        finally:
            sys.path.remove(str(SOURCE_DIR))
    return ns


def test_release_stubs_fail_every_unit_test():
    ns = release_stub_namespace()
    for grade_id in UNIT_TESTS:
        with pytest.raises(NotImplementedError):
            run_test_cell(NB, grade_id, dict(ns))


# ---------------------------------------------------------------- wrong implementations
def test_rejects_normalization_without_nfd(ref):
    letters = ref["all_letters"]
    assert_rejected(NB, ["test_normalize"], ref, unicodeToAscii=lambda s: "".join(c for c in s if c in letters))


def test_rejects_normalization_that_keeps_other_characters(ref):
    import unicodedata
    assert_rejected(NB, ["test_normalize"], ref, unicodeToAscii=lambda s: "".join(
        c for c in unicodedata.normalize("NFD", s) if unicodedata.category(c) != "Mn"))


def test_rejects_letter_index_off_by_one(ref):
    letters = ref["all_letters"]
    assert_rejected(NB, ["test_normalize"], ref, letterToIndex=lambda ch: letters.index(ch) + 1)


def test_rejects_encoding_with_zero_padding(ref):
    good = ref["namesToBatch"]

    def zero_pad(names):
        x, last = good(names)
        return torch.where(x == 57, torch.zeros_like(x), x), last
    assert_rejected(NB, ["test_encode"], ref, namesToBatch=zero_pad)


def test_rejects_encoding_with_length_instead_of_last_position(ref):
    good = ref["namesToBatch"]
    assert_rejected(NB, ["test_encode"], ref, namesToBatch=lambda names: (good(names)[0], good(names)[1] + 1))


class _Base(nn.Module):
    def __init__(self, vocab_size, rnn_size, n_categories, num_layers=1, dropout=0.0, model_type="lstm"):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, rnn_size)
        rnn = nn.LSTM if model_type == "lstm" else nn.RNN
        self.rnn = rnn(rnn_size, rnn_size, num_layers=num_layers, batch_first=True,
                       dropout=dropout if num_layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(rnn_size, n_categories)


class LastColumn(_Base):
    """Reads the output at the last column, i.e. after the padding."""
    def forward(self, x, last_pos):
        out, _ = self.rnn(self.embedding(x))
        return self.output(self.dropout(out[:, -1]))


class FinalHiddenState(_Base):
    """Uses the stack's final hidden state (after the padding too)."""
    def forward(self, x, last_pos):
        _, h = self.rnn(self.embedding(x))
        h = h[0] if isinstance(h, tuple) else h
        return self.output(self.dropout(h[-1]))


class ReluRNN(_Base):
    def __init__(self, vocab_size, rnn_size, n_categories, num_layers=1, dropout=0.0, model_type="lstm"):
        super().__init__(vocab_size, rnn_size, n_categories, num_layers, dropout, model_type)
        if model_type == "rnn":
            self.rnn = nn.RNN(rnn_size, rnn_size, num_layers=num_layers, batch_first=True, nonlinearity="relu")

    def forward(self, x, last_pos):
        out, _ = self.rnn(self.embedding(x))
        return self.output(self.dropout(out[torch.arange(len(x)), last_pos]))


class Correct(_Base):
    """A correct model defined in a file, so that inspect.getsource works as it does in a notebook."""
    def forward(self, x, last_pos):
        out, _ = self.rnn(self.embedding(x))
        return self.output(self.dropout(out[torch.arange(len(x)), last_pos]))


class NoDropout(_Base):
    def forward(self, x, last_pos):
        out, _ = self.rnn(self.embedding(x))
        return self.output(out[torch.arange(len(x)), last_pos])


class AlwaysLSTM(_Base):
    def __init__(self, vocab_size, rnn_size, n_categories, num_layers=1, dropout=0.0, model_type="lstm"):
        super().__init__(vocab_size, rnn_size, n_categories, num_layers, dropout, "lstm")

    def forward(self, x, last_pos):
        out, _ = self.rnn(self.embedding(x))
        return self.output(self.dropout(out[torch.arange(len(x)), last_pos]))


class OtherNames(nn.Module):
    def __init__(self, vocab_size, rnn_size, n_categories, num_layers=1, dropout=0.0, model_type="lstm"):
        super().__init__()
        self.emb = nn.Embedding(vocab_size, rnn_size)
        self.rnn = (nn.LSTM if model_type == "lstm" else nn.RNN)(rnn_size, rnn_size, num_layers, batch_first=True)
        self.fc = nn.Linear(rnn_size, n_categories)

    def forward(self, x, last_pos):
        out, _ = self.rnn(self.emb(x))
        return self.fc(out[torch.arange(len(x)), last_pos])


def test_rejects_reading_after_the_padding(ref):
    assert_rejected(NB, ["test_model_forward"], ref, RecurrentClassifier=LastColumn)
    assert_rejected(NB, ["test_model_forward"], ref, RecurrentClassifier=FinalHiddenState)


def test_rejects_relu_rnn(ref):
    assert_rejected(NB, ["test_model_forward"], ref, RecurrentClassifier=ReluRNN)


def test_rejects_missing_dropout(ref):
    assert_rejected(NB, ["test_model_structure"], ref, RecurrentClassifier=NoDropout)


def test_rejects_ignoring_model_type(ref):
    assert_rejected(NB, ["test_model_structure"], ref, RecurrentClassifier=AlwaysLSTM)


def test_rejects_other_attribute_names(ref):
    assert_rejected(NB, ["test_model_structure"], ref, RecurrentClassifier=OtherNames)


def test_accepts_packed_sequence_model(ref):
    """A different but correct layout (packed sequences) passes: the tests check behaviour, not code."""
    class Packed(_Base):
        def forward(self, x, last_pos):
            packed = nn.utils.rnn.pack_padded_sequence(self.embedding(x), (last_pos + 1).cpu(), batch_first=True,
                                                       enforce_sorted=False)
            _, h = self.rnn(packed)
            h = h[0] if isinstance(h, tuple) else h
            return self.output(self.dropout(h[-1]))
    assert_accepted(NB, ["test_model_structure", "test_model_forward"], ref, RecurrentClassifier=Packed)


# ---------------------------------------------------------------- trusted pipeline
def test_batches_never_empty_for_any_batch_size(ref):
    surnames = ref["surnames"]
    gen = torch.Generator().manual_seed(0)
    lengths = torch.randint(0, 15, (1024,))
    for n in (1, 511, 512, 1024):
        for bs in (1, 7, 64, 256, 512, 1024, 5000):
            for chunks in (list(surnames.batches(n, bs, gen)), surnames.bucketed_batches(lengths[:n], bs, gen)):
                assert len(chunks) == -(-n // bs), (n, bs)
                assert all(len(c) > 0 for c in chunks)
                assert sorted(torch.cat(chunks).tolist()) == list(range(n))


def test_accuracy_points_are_linear_from_70_to_80(ref):
    points = ref["surnames"].accuracy_points
    assert [points(a, 5) for a in (50, 70, 72.5, 75, 80, 95)] == [0, 0, 1.25, 2.5, 5, 5]


def test_splits(ref):
    surnames, data = ref["surnames"], ref["data"]
    train, evaluation = surnames.random_split(len(data))
    assert len(evaluation) == round(0.2 * len(data)) and not set(train.tolist()) & set(evaluation.tolist())
    assert torch.equal(evaluation, surnames.random_split(len(data))[1])   # seeded
    g_train, g_eval = surnames.grouped_split(data.names)
    norm = [surnames.unicode_to_ascii(n) for n in data.names]
    assert not {norm[i] for i in g_train.tolist()} & {norm[i] for i in g_eval.tolist()}
    assert len(g_train) + len(g_eval) == len(data)
    assert ref["categories"] == sorted(ref["categories"]) and ref["categories"][0] == "Arabic"


def test_training_and_log_round_trip(ref, tmp_path):
    """A short training run of the reference model: history sizes, log schema, exact rebuild from the log."""
    import jsonschema
    from pathlib import Path
    surnames, data = ref["surnames"], ref["data"]
    torch.manual_seed(0)
    model = Correct(58, 16, 18, model_type="rnn")
    sub = torch.arange(0, len(data), 20)
    history = surnames.train_classifier(model, data, sub[:800], sub[800:], batch_size=100, epochs=2, progress=False)
    assert len(history["train_losses"]) == 2 * 8 and len(history["eval_accuracies"]) == 2
    hp = surnames.hparams_dict(16, 1, 0.0, "rnn", torch.optim.Adam, 1e-3, 100, 2, 0)
    log = json.loads(surnames.write_submission_log(tmp_path / "log.json",
                     surnames.build_submission_log(model, history, hp, "Tester", data)).read_text())
    schema = json.loads((Path(__file__).resolve().parents[2] / "coursekit" / "submission_log.schema.json").read_text())
    jsonschema.validate(log, schema)
    assert [k for k, _ in log["model"]] == list(model.state_dict())
    rebuilt = surnames.rebuild_model(log)
    x, last, _ = data.subset(sub[800:])
    assert torch.equal(surnames.predict_logits(rebuilt, x, last), surnames.predict_logits(model, x, last))
    assert log["data"]["sha256"] == data.checksum and log["versions"]["torch"] == torch.__version__
