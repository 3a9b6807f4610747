"""Problem 4 notebook: its tests pass on the reference, reject wrong code and fail on the release stubs;
the trusted pipeline (batches, grading bar, log round trip) behaves."""
from __future__ import annotations

import copy
import json
import re

import pytest
import torch
from torch import nn

from coursekit.testing.notebooks import (SOURCE_DIR, checks_module, helper_module, kernel_started_in, load,
                                         nbgrader_meta, reference_records, run_test_cell, runnable_source,
                                         solution_namespace, trusted_checks, trusted_judges, working_directory)
from coursekit.testing.notebooks import test_cell_records as cell_records  # (not a test)
from hw6grading import surnames as grading
from hw6grading.surnames import SpecClassifier
from tests.hw6.rejection import (AlwaysEqual, assert_accepted, assert_check_style, assert_rejected,
                                 assert_sabotage_rejected, reference_calls, visible_failure)
from tests.support.executed_sources import trained_p4

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
    with kernel_started_in(SOURCE_DIR):
        for cell in nb.cells:
            meta = nbgrader_meta(cell)
            if meta.get("grade_id") == "p4_hparams":
                break
            if cell.cell_type != "code" or (meta.get("grade") and not meta.get("solution")):
                continue
            source = pattern.sub(lambda m: f"{m.group(1)}# YOUR CODE HERE\n{m.group(1)}raise NotImplementedError()\n",
                                 cell.source + "\n")
            try:
                exec(compile(runnable_source(source), "<release>", "exec"), ns)
            except NotImplementedError:  # 4.3 encodes the data with the student's (unwritten) namesToBatch
                assert meta.get("grade_id") == "p4_data", meta.get("grade_id")
    return ns


def test_release_stubs_fail_every_unit_test():
    ns = release_stub_namespace()
    for grade_id in UNIT_TESTS:
        with pytest.raises(AssertionError) as failed:
            run_test_cell(NB, grade_id, dict(ns))
        assert isinstance(failed.value.__cause__, NotImplementedError), failed.value


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


def _one_based(ref):
    """The reference notebook with letterToIndex off by one ("a" -> 1), and namesToBatch built on it."""
    letters = ref["all_letters"]
    namespace = dict(ref, letterToIndex=lambda ch: letters.index(ch) + 1)
    source = [c for c in load(SOURCE_DIR / NB).cells if nbgrader_meta(c).get("grade_id") == "p4_encode"][0].source
    exec(compile(runnable_source(source), "<p4_encode>", "exec"), namespace)  # namesToBatch calls the wrong one
    return namespace


def test_one_based_letter_index_costs_only_its_own_cells(ref):
    """One bug costs once: the model tests build their batches with the course's encoder."""
    wrong = _one_based(ref)
    assert wrong["namesToBatch"](["a"])[0].tolist() == [[1]]
    bug = {k: wrong[k] for k in ("letterToIndex", "namesToBatch")}
    assert_rejected(NB, ["test_normalize", "test_encode"], ref, **bug)
    assert_accepted(NB, ["test_model_forward"], ref, **bug)


def test_one_based_letter_index_does_not_cost_the_structure_cell(ref):
    wrong = _one_based(ref)
    assert_accepted(NB, ["test_model_structure"], ref, **{k: wrong[k] for k in ("letterToIndex", "namesToBatch")})


def test_unit_test_cells_say_when_they_pass(ref, capsys):
    for grade_id in ("test_normalize", "test_encode", "test_model_structure", "test_model_forward"):
        source = [c for c in load(SOURCE_DIR / NB).cells if nbgrader_meta(c).get("grade_id") == grade_id][0].source
        with working_directory(SOURCE_DIR):
            exec(compile(runnable_source(source.split("### BEGIN HIDDEN TESTS")[0]), grade_id, "exec"), dict(ref))
        assert "visible tests passed" in capsys.readouterr().out, grade_id


def test_visible_failures_show_got_and_expected(ref):
    wrong = _one_based(ref)
    assert visible_failure(NB, "test_normalize", wrong) == 'letterToIndex("a"): got 1, expected 0'
    assert visible_failure(NB, "test_encode", wrong) == ('x for ["Ab", "c"]: got [[27, 2], [3, 57]], expected '
                                                     '[[26, 1], [2, 57]]; first difference at index [0, 0]: '
                                                     'got 27, expected 26 (tolerance 0.0001)')
    message = visible_failure(NB, "test_model_forward", dict(ref, RecurrentClassifier=LastColumn))
    assert message.startswith("rnn logits: got [[") and "expected [[0.48658, 0.806075, 0.118839]" in message


def test_student_visible_cells_carry_no_grader_mechanics():
    """Cells a student reads (everything outside hidden tests and solutions) do not talk about the grader's
    plumbing; the intro says where to put the data, not which instructor command to run."""
    nb = load(SOURCE_DIR / NB)
    for cell in nb.cells:
        grade_id = nbgrader_meta(cell).get("grade_id")
        visible = cell.source.split("### BEGIN HIDDEN TESTS")[0].split("### BEGIN SOLUTION")[0]
        for phrase in ("stderr", "importlib", "simplefilter", "coursekit", "fetch-data", "earlier version",
                       "HW6_DATA_MIRROR", r"\bCI\b"):
            assert not re.search(phrase, visible), (grade_id, phrase)
    intro = nb.cells[0].source
    assert "https://download.pytorch.org/tutorial/data.zip" in intro and "`data/names` next to this notebook" in intro


def test_rejects_encoding_with_zero_padding(ref):
    good = ref["namesToBatch"]

    def zero_pad(names):
        x, last = good(names)
        return torch.where(x == 57, torch.zeros_like(x), x), last
    assert_rejected(NB, ["test_encode"], ref, namesToBatch=zero_pad)


def test_rejects_encoding_with_length_instead_of_last_position(ref):
    good = ref["namesToBatch"]
    assert_rejected(NB, ["test_encode"], ref, namesToBatch=lambda names: (good(names)[0], good(names)[1] + 1))


class _Base(SpecClassifier):
    """The specified architecture; each subclass below gets one thing wrong."""


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


class Correct(SpecClassifier):
    """A correct model defined in a file, so that inspect.getsource works as it does in a notebook."""


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


def test_sabotaged_kernel_does_not_rescue_wrong_code(ref):
    """Patched numpy/torch comparisons (or a silenced check) do not turn wrong answers into passes."""
    assert_sabotage_rejected(NB, "test_model_forward", ref, RecurrentClassifier=LastColumn)
    assert_sabotage_rejected(NB, "test_model_structure", ref, RecurrentClassifier=NoDropout)
    assert_sabotage_rejected(NB, "test_encode", ref, namesToBatch=lambda names: (AlwaysEqual(), AlwaysEqual()))
    assert_sabotage_rejected(NB, "test_normalize", ref, unicodeToAscii=lambda s: AlwaysEqual())


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


# ---------------------------------------------------------------- the answers the hidden checks compare with
#
# Hidden checks compare a student's results with the reference's on the same inputs; here the reference's
# answers on exactly those inputs are verified against the trusted helpers (hw6utils.surnames) and a
# step-by-step re-implementation of the model, so "equal to the reference" means "right".

def _record(grade_id, name):
    [record] = [r for r in reference_records(NB, grade_id) if r["name"] == name]
    return record["value"]


def _array(plain):
    return torch.tensor([float(v) for v in plain["data"]], dtype=torch.float64).reshape(plain["__array__"])


def test_reference_normalization_answers(ref):
    calls = reference_calls(NB, "test_normalize", ref, "unicodeToAscii")
    assert len(calls) >= 300 + 13 + 2
    for call in calls:
        assert call.result == grading.unicode_to_ascii(call.args[0]), call.args
    assert _record("test_normalize", "examples") == [
        "Gro", "Marszaek", "AbdankKossovsky", "MaxaB", "Rafaj", "Lu", "Eluard", "To The First Page", "Nunez",
        "Zuraw", "De la fontaine", "See ", ""]
    assert _record("test_normalize", "every_letter_index") == list(range(57))


def test_reference_encoding_answers(ref):
    calls = reference_calls(NB, "test_encode", ref, "namesToBatch")
    assert len(calls) == 4
    for call in calls:
        x, last = grading.encode_names(call.args[0])
        assert torch.equal(call.result[0], x) and torch.equal(call.result[1], last)
        assert call.result[0].dtype == call.result[1].dtype == torch.long
    assert _record("test_encode", "batch_1")["x"]["data"] == [51, 7, 14, 20]


def _step_by_step_logits(sd, x, last_pos, model_type, num_layers):
    """The model written out from its state dict in float64 (PyTorch gate order i, f, g, o)."""
    sd = {k: v.double() for k, v in sd.items()}
    h = sd["embedding.weight"][x]
    B, L, _ = h.shape
    for layer in range(num_layers):
        w_ih, w_hh = sd[f"rnn.weight_ih_l{layer}"], sd[f"rnn.weight_hh_l{layer}"]
        b = sd[f"rnn.bias_ih_l{layer}"] + sd[f"rnn.bias_hh_l{layer}"]
        H = w_hh.shape[1]
        ht, ct, outs = torch.zeros(B, H, dtype=torch.float64), torch.zeros(B, H, dtype=torch.float64), []
        for t in range(L):
            z = h[:, t] @ w_ih.T + ht @ w_hh.T + b
            if model_type == "rnn":
                ht = torch.tanh(z)
            else:
                i, f, g, o = z.chunk(4, dim=1)
                ct = torch.sigmoid(f) * ct + torch.sigmoid(i) * torch.tanh(g)
                ht = torch.sigmoid(o) * torch.tanh(ct)
            outs.append(ht)
        h = torch.stack(outs, dim=1)
    return h[torch.arange(B), last_pos] @ sd["output.weight"].T + sd["output.bias"]


def _model_calls(ref, grade_id):
    """Every forward call of RecurrentClassifier during a test cell (record mode): (model, state, args, logits)."""
    calls, base = [], ref["RecurrentClassifier"]

    class Spy(base):
        def forward(self, x, last_pos):
            state = {k: v.detach().clone() for k, v in self.state_dict().items()}
            logits = base.forward(self, x, last_pos)
            calls.append((self, state, (x.clone(), last_pos.clone()), logits.detach().clone()))
            return logits

    records, error = cell_records(NB, grade_id, dict(ref, RecurrentClassifier=Spy))
    assert error is None, repr(error)
    assert records == list(reference_records(NB, grade_id)), "spying changed the records"
    return calls


def test_reference_logits_match_the_step_by_step_model(ref):
    checked = set()
    for grade_id in ("test_model_forward", "test_model_structure"):
        for model, state, (x, last_pos), logits in _model_calls(ref, grade_id):
            if model.training and model.dropout.p > 0:
                continue  # dropout active: random by design
            model_type = "lstm" if isinstance(model.rnn, nn.LSTM) else "rnn"
            want = _step_by_step_logits(state, x, last_pos, model_type, model.rnn.num_layers)
            torch.testing.assert_close(logits.double(), want, atol=1e-5, rtol=0)
            checked.add((grade_id, model_type, model.rnn.num_layers))
    assert {(t, n) for g, t, n in checked if g == "test_model_forward"} == {("rnn", 1), ("rnn", 2), ("lstm", 1), ("lstm", 2)}
    for model_type in ("rnn", "lstm"):
        for layers in (1, 2):
            value = _record("test_model_forward", f"logits_{model_type}_{layers}")
            logits = _array(value["logits"])
            torch.testing.assert_close(_array(value["other letters after the end"]), logits, atol=1e-5, rtol=0)
            torch.testing.assert_close(_array(value["longest name alone"]), logits[3:4], atol=1e-5, rtol=0)


def test_reference_structure_answers(ref):
    for model_type, gates in (("rnn", 1), ("lstm", 4)):
        for layers in (1, 3):
            value = _record("test_model_structure", f"structure_{model_type}_{layers}")
            want = {"embedding.weight": [58, 12], "output.weight": [18, 12], "output.bias": [18]}
            for layer in range(layers):
                want.update({f"rnn.weight_ih_l{layer}": [gates * 12, 12], f"rnn.weight_hh_l{layer}": [gates * 12, 12],
                             f"rnn.bias_ih_l{layer}": [gates * 12], f"rnn.bias_hh_l{layer}": [gates * 12]})
            assert value == {"shapes": want, "rnn class": model_type.upper(), "batch_first": True,
                             "logits shape": [4, 18]}
    assert _record("test_model_structure", "default_model_type") == "LSTM"
    dropout = _record("test_model_structure", "dropout_from_weights")
    assert grading.model_structure(dropout) == {
        "model type": "rnn", "layers": 1, "hidden size": 4, "logits shape": [3, 18],
        "eval output is the model's": True, "training outputs apply dropout": True}


def test_literal_batches_in_the_test_cells_are_the_reference_encoding():
    """The test cells feed hand-encoded batches (no encoder is imported); they are the reference's."""
    nb = load(SOURCE_DIR / NB)
    text = "\n".join(c.source for c in nb.cells if nbgrader_meta(c).get("grade"))
    assert "encode_names" not in text and "import surnames" not in text
    for names in (["Ab", "Costa", "Li"], ["Ab", "Costa", "c"], ["Ab", "Costa", "Li", "X"], ["Costa", "Nakamura", "Smith"]):
        x, last = grading.encode_names(names)
        assert str(x.tolist()) in text.replace("\n", "").replace("  ", " ") or all(
            str(row) in text for row in x.tolist()), names
        assert str(last.tolist()) in text, names


def _records_with_forged_dropout(ref, monkeypatch, forge) -> tuple[list, list]:
    """The structure cell's records for a model WITHOUT dropout, with a patched `check` (as a student's code
    could patch it in their kernel) that replaces what the dropout check publishes with ``forge(value)``."""
    checks = checks_module()
    original = checks.check

    def patched(name, value, *args, **kwargs):
        if name == "dropout_from_weights":
            value = forge(value)
        return original(name, value, *args, **kwargs)

    monkeypatch.setattr(checks, "check", patched)
    records, error = cell_records(NB, "test_model_structure", dict(ref, RecurrentClassifier=NoDropout))
    monkeypatch.setattr(checks, "check", original)
    assert error is None, repr(error)
    return list(reference_records(NB, "test_model_structure")), records


@pytest.mark.parametrize("forge", [
    lambda value: [torch.randn(3, 18), torch.randn(3, 18)],                       # the old "two outputs differ"
    lambda value: dict(value, train_outputs=[torch.randn(3, 18), torch.randn(3, 18)]),
    lambda value: dict(value, train_outputs=[value["eval_outputs"] + torch.randn(3, 18) * 1e-3] * 2),
], ids=["two_random_arrays", "random_training_outputs", "perturbed_eval_outputs"])
def test_patched_check_publishing_fake_dropout_earns_nothing(ref, monkeypatch, forge):
    """Issue 19 item 4: the grader rebuilds the model from its weights and recomputes the pre-dropout
    vector itself, so outputs the kernel makes up cannot pass for dropout."""
    from coursekit.verdicts import judge_cell

    reference, records = _records_with_forged_dropout(ref, monkeypatch, forge)
    reasons, fraction = judge_cell(reference, records, trusted_checks(), trusted_judges())
    assert fraction == 0.0 and any("dropout_from_weights" in reason for reason in reasons), reasons
    # the same judge gives the reference model (with dropout, nothing forged) full marks
    assert judge_cell(reference, cell_records(NB, "test_model_structure", dict(ref))[0], trusted_checks(),
                      trusted_judges()) == ([], 1.0)


# ---------------------------------------------------------------- the accuracy cell (needs one training run)

@pytest.fixture(scope="module")
def trained(monkeypatch_module, tmp_path_factory):
    """The reference after its training cell (the grouped-split run and the log export are skipped).

    The notebook's own cells build the model; ``train_classifier`` then hands back the weights and history
    of the session's kernel run of the source notebook (tests/support/executed_sources.py) instead of
    training again.
    """
    saved = trained_p4(tmp_path_factory)

    def trained_in_the_kernel_run(model, *args, **kwargs):
        model.load_state_dict(saved["state"])
        return copy.deepcopy(saved["history"])

    monkeypatch_module.setenv("NBGRADER_EXECUTION", "autograde")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(helper_module("surnames"), "train_classifier", trained_in_the_kernel_run)
        return solution_namespace(NB, until_grade_id="test_accuracy", skip_grade_ids=("p4_grouped", "p4_log"))


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.mark.slow
def test_accuracy_cell_gives_partial_credit_from_the_judge(trained, monkeypatch):
    from coursekit.verdicts import judge_cell
    from coursekit.testing.notebooks import checks_module as _checks_module

    checks = _checks_module()
    reference, error = cell_records(NB, "test_accuracy", dict(trained))
    assert error is None, repr(error)
    [bar] = [r for r in reference if r.get("partial")]
    assert bar["partial"] == [70.0, 80.0] and bar["judge"] == "surnames.graded_accuracy"
    assert checks.resolve_judge(bar["judge"])(bar["value"]) >= 80.0, "the reference must earn full points"
    assert judge_cell(reference, reference, checks) == ([], 1.0)

    def judged(ns):
        records, _ = cell_records(NB, "test_accuracy", ns)
        return judge_cell(reference, records, checks)

    # an untrained model of the same kind: accuracy far below the bar, so no points
    torch.manual_seed(0)
    untrained = trained["RecurrentClassifier"](58, 64, 18, model_type="lstm")
    reasons, fraction = judged(dict(trained, model=untrained, history=dict(
        trained["history"], eval_accuracies=trained["history"]["eval_accuracies"][:-1] + [
            trained["surnames"].accuracy(untrained, *trained["data"].subset(trained["eval_idx"]))])))
    assert reasons == [] and fraction == 0.0
    # a reported accuracy that the model does not reach fails the cell
    reasons, _ = judged(dict(trained, history=dict(trained["history"], eval_accuracies=trained["history"][
        "eval_accuracies"][:-1] + [99.0])))
    assert reasons and "recomputed minus reported" in reasons[0]
    # too few epochs fail it too
    reasons, _ = judged(dict(trained, history=dict(trained["history"],
                                                    eval_accuracies=trained["history"]["eval_accuracies"][:5])))
    assert reasons

    # and the style rules of every test cell (the accuracy cell's records come from this one training run)
    from tests.hw6 import rejection as _rejection
    whole_of = _rejection.reference_records
    monkeypatch.setattr(_rejection, "reference_records",
                        lambda nb, gid: tuple(reference) if gid == "test_accuracy" else whole_of(nb, gid))
    assert_check_style(NB)


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
    g_train, g_eval = surnames.grouped_split(data.names, grading.unicode_to_ascii)
    norm = [grading.unicode_to_ascii(n) for n in data.names]
    assert not {norm[i] for i in g_train.tolist()} & {norm[i] for i in g_eval.tolist()}
    assert len(g_train) + len(g_eval) == len(data)
    assert ref["categories"] == sorted(ref["categories"]) and ref["categories"][0] == "Arabic"


def test_training_and_log_round_trip(ref, tmp_path):
    """A short training run of the reference model: history sizes, log schema, exact rebuild from the log."""
    import jsonschema
    from pathlib import Path
    surnames, surname_log, data = ref["surnames"], ref["surname_log"], ref["data"]
    torch.manual_seed(0)
    model = Correct(58, 16, 18, model_type="rnn")
    sub = torch.arange(0, len(data), 20)
    history = surnames.train_classifier(model, data, sub[:800], sub[800:], batch_size=100, epochs=2, progress=False)
    assert len(history["train_losses"]) == 2 * 8 and len(history["eval_accuracies"]) == 2
    hp = surname_log.hparams_dict(16, 1, 0.0, "rnn", torch.optim.Adam, 1e-3, 100, 2, 0)
    log = json.loads(surname_log.write_submission_log(tmp_path / "log.json",
                     surname_log.build_submission_log(model, history, hp, "Tester", data)).read_text())
    schema = json.loads((Path(__file__).resolve().parents[2] / "coursekit" / "submission_log.schema.json").read_text())
    jsonschema.validate(log, schema)
    assert [k for k, _ in log["model"]] == list(model.state_dict())
    rebuilt = grading.rebuild_model(log)
    x, last, _ = data.subset(sub[800:])
    assert torch.equal(surnames.predict_logits(rebuilt, x, last), surnames.predict_logits(model, x, last))
    assert log["data"]["sha256"] == data.checksum and log["versions"]["torch"] == torch.__version__
