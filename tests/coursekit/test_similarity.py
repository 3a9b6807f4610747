"""coursekit similarity on a synthetic class built from the sample students (reads files only: fast).

The class: ``alice`` writes her own RNNLayer.forward; ``bob`` hands in alice's answer with renamed
variables, other and moved comments and other layout; ``carol`` writes a different one; ``dave`` copies
the instructor's solution everywhere except RNNLayer.forward (his own); ``untouched`` hands in the
release; ``erin`` and ``frank`` train Problem 4 honestly with the same seed and hyperparameters and get
the same weights; ``gina`` hands in alice's Problem 4 weights under another seed and learning rate;
erin's beam_search.ipynb and untouched's log are broken. Problem 3k: everyone's trained models equal
the reference's (the course fixes seed and recipe), dave's within float noise.
"""
from __future__ import annotations

import base64
import csv
import html
import json
import shutil
from pathlib import Path

import nbformat
import numpy as np
import pytest

from coursekit.cli import main as coursekit_main
from coursekit.course import Course
from coursekit.samples import build_samples
from coursekit.similarity import REFERENCE, DEFAULTS, similarity_report
from coursekit.similarity.code import CellIndex, Cell, normalise
from coursekit.similarity.weights import WeightFormats, models_from_records, read_submission_log
from coursekit.testing.courses import copy_course
from coursekit.similarity.overall import PairTotals
from coursekit.testing.similarity_class import LEVELS, ranked_pairs
from coursekit.testing.similarity_class import build_class as build_synthetic_class

REPO_ROOT = Path(__file__).resolve().parents[2]
ASSIGNMENT = "hw6"
RNN_CELL = "rnn_gradients: rnn_layer"
FORWARD_HEAD = '        """x: (B, T, input_size) -> all_h (B, T, H), last_h (B, H)."""\n'

ALICE_FORWARD = FORWARD_HEAD + '''\
        # loop over time, one step at a time
        B, T, _ = x.shape
        state = torch.zeros(B, self.hidden_size, dtype=x.dtype)
        states = []
        for step in range(T):
            pre = state @ self.W_h.T + x[:, step] @ self.W_x.T + self.b
            state = self.nonlinearity(pre)  # h_t
            states.append(state)
        self.store_h_for_grad(states)
        return torch.stack(states, dim=1), state
'''

BOB_FORWARD = FORWARD_HEAD + '''\
        n_batch, n_steps, _ = x.shape   # <script>alert("bob")</script>


        hcur = torch.zeros(n_batch, self.hidden_size, dtype=x.dtype)
        hs = []  # all hidden states
        for t in range(n_steps):
            # pre-activation
            z = hcur @ self.W_h.T + x[:, t] @ self.W_x.T + self.b
            hcur = self.nonlinearity(z)
            hs.append(hcur)
        self.store_h_for_grad(hs)
        return torch.stack(hs, dim=1), hcur
'''

CAROL_FORWARD = FORWARD_HEAD + '''\
        outputs = []
        hidden = x.new_zeros((x.shape[0], self.hidden_size))
        for xt in x.unbind(dim=1):
            hidden = self.nonlinearity(torch.addmm(self.b, hidden, self.W_h.t()) + xt.matmul(self.W_x.t()))
            outputs.append(hidden)
        self.store_h_for_grad(outputs)
        return torch.stack(outputs, 1), outputs[-1]
'''

DAVE_FORWARD = FORWARD_HEAD + '''\
        result = []
        h = None
        for i in range(x.size(1)):
            inp = torch.einsum("bi,hi->bh", x[:, i, :], self.W_x)
            if h is None:
                h = torch.tanh(inp + self.b) if self.nonlinearity is torch.tanh else self.nonlinearity(inp + self.b)
            else:
                h = self.nonlinearity(inp + torch.einsum("bj,hj->bh", h, self.W_h) + self.b)
            result.append(h)
        self.store_h_for_grad(result)
        return torch.stack(result, dim=1), result[-1]
'''


# --- building the class ------------------------------------------------------------------------------
def _set_answer(folder: Path, notebook: str, grade_id: str, forward_body: str) -> None:
    """Replace RNNLayer.forward (from its docstring on) in the student's answer cell."""
    path = folder / f"{notebook}.ipynb"
    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            head, _, _ = cell.source.partition(FORWARD_HEAD)
            cell.source = head + forward_body
    nbformat.write(nb, str(path))


def _surname_log_module():
    from coursekit.helpers import trusted_module

    return trusted_module(REPO_ROOT / "source/hw6/hw6utils", "surname_log")


def _log(weights: dict[str, np.ndarray], seed: int, lr: float) -> dict:
    """A submission log with the keys build_submission_log writes, weights encoded by its encode_tensor."""
    import torch
    surname_log = _surname_log_module()
    encoded = {name: surname_log.encode_tensor(torch.from_numpy(array)) for name, array in weights.items()}
    return {"format_version": 2, "last_name": "X", "history": {}, "model": [],
            "hparams": surname_log.hparams_dict(64, 1, 0.2, "lstm", torch.optim.Adam, lr, 512, 20, seed),
            "weights": encoded, "weights_sha256": surname_log.weights_sha256(encoded),
            "data": {"split_seed": 6}, "versions": {"python": "3.11.7", "torch": "2.13.0", "numpy": "2.4.6"}}


def _p4_weights(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"rnn.weight_ih_l0": rng.normal(size=(256, 58)).astype(np.float32),
            "rnn.weight_hh_l0": rng.normal(size=(256, 64)).astype(np.float32),
            "fc.weight": rng.normal(size=(18, 64)).astype(np.float32)}


def _record_array(array: np.ndarray) -> dict:
    return {"__array__": list(array.shape), "data": [float(x) for x in array.ravel()]}


def _training_records(noise: float, rng: np.random.Generator) -> dict[str, list[dict]]:
    """grade_id -> check records of the two training cells (one record per trained model, as after the
    lead's change), the models drawn from one fixed seed like the course's recipe, plus ``noise``."""
    by_cell = {}
    for kind, grade_id in (("rnn", "test_training_rnn"), ("lstm", "test_training_lstm")):
        records = [{"name": f"number of trained {kind.upper()} runs", "value": 4}]
        for num_layers in (1, 2):
            for last_only in (False, True):
                fixed = np.random.default_rng([num_layers, int(last_only), len(kind)])
                gates = 4 if kind == "lstm" else 1
                state = {f"net.layers.{i}.W_h": fixed.normal(size=(gates * 8, 8)) for i in range(num_layers)}
                state["readout.weight"] = fixed.normal(size=(1, 8))
                state = {k: v + noise * rng.normal(size=v.shape) for k, v in state.items()}
                records.append({"name": f"{kind}_{num_layers} model", "value": {
                    "model": kind, "num_layers": num_layers, "last_timestep_only": last_only,
                    "state_dict": {k: _record_array(v) for k, v in state.items()}, "seed": 0,
                    "recipe": {"steps": 1000 if kind == "rnn" else 500, "lr": 0.01, "hidden_size": 8}}})
        by_cell[grade_id] = records
    return by_cell


def _autograded_notebook(path: Path, by_cell: dict[str, list[dict]]) -> None:
    cells = []
    for grade_id, records in by_cell.items():
        cell = nbformat.v4.new_code_cell("check(...)")
        cell.metadata["nbgrader"] = {"grade": True, "grade_id": grade_id, "points": 2, "solution": False}
        cell.metadata["coursekit"] = {"records": records}
        cells.append(cell)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nbformat.v4.new_notebook(cells=cells), str(path))


def build_class(root: Path) -> Course:
    """The synthetic class of this module's docstring, in a new course folder under ``root``."""
    course = Course.open(copy_course(root, folders=("source", "release"), with_data=False))
    samples = build_samples(course, ASSIGNMENT)
    submitted = course.folder("submitted")
    for student in ("alice", "bob", "carol", "erin", "frank", "gina"):
        shutil.copytree(samples["untouched"], submitted / student / ASSIGNMENT)
    shutil.copytree(samples["reference"], submitted / "dave" / ASSIGNMENT)
    for sample in ("reference", "partial", "messy"):
        shutil.rmtree(submitted / sample)
    for student, forward in (("alice", ALICE_FORWARD), ("bob", BOB_FORWARD), ("carol", CAROL_FORWARD),
                             ("dave", DAVE_FORWARD)):
        _set_answer(submitted / student / ASSIGNMENT, "rnn_gradients", "rnn_layer", forward)
    broken = submitted / "erin" / ASSIGNMENT / "beam_search.ipynb"
    broken.write_text(broken.read_text()[:500])

    def write_log(student: str, log: dict) -> None:
        (submitted / student / ASSIGNMENT / "submission_log.json").write_text(json.dumps(log))

    (submitted / "untouched" / ASSIGNMENT / "submission_log.json").write_text('{"weights": {"w": 1}}')
    write_log("erin", _log(_p4_weights(1), seed=0, lr=0.01))
    write_log("frank", _log(_p4_weights(1), seed=0, lr=0.01))
    write_log("alice", _log(_p4_weights(2), seed=3, lr=0.01))
    write_log("gina", _log(_p4_weights(2), seed=7, lr=0.02))
    write_log("carol", _log(_p4_weights(4), seed=0, lr=0.01))
    write_log("dave", _log(_p4_weights(99), seed=0, lr=0.01))
    (root / "instructor_log.json").write_text(json.dumps(_log(_p4_weights(99), seed=0, lr=0.01)))

    rng = np.random.default_rng(0)
    for student in ("alice", "bob", "carol"):
        _autograded_notebook(course.folder("autograded", student, ASSIGNMENT, "rnn_gradients.ipynb"),
                             _training_records(0.0, rng))
    _autograded_notebook(course.folder("autograded", "dave", ASSIGNMENT, "rnn_gradients.ipynb"),
                         _training_records(1e-4, rng))
    _autograded_notebook(course.folder("autograded", "erin", ASSIGNMENT, "rnn_gradients.ipynb"),
                         _training_records(1.0, rng))  # a different run: far from everyone
    cache = root / ".coursekit" / "reference" / ASSIGNMENT
    cache.mkdir(parents=True)
    (cache / "rnn_gradients-0123abcd.json").write_text(json.dumps({"records": _training_records(0.0, rng), "seconds": 30.0}))
    return course


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    course = build_class(tmp_path_factory.mktemp("similarity") / "course")
    result = similarity_report(course, ASSIGNMENT, reference_log=course.root / "instructor_log.json",
                               progress=False)
    return course, result


def _owners(pair) -> set[str]:
    return {pair.first.owner, pair.second.owner}


# --- normalisation -----------------------------------------------------------------------------------
def test_normalisation_ignores_names_comments_layout_but_keeps_builtins_attributes_imports():
    first = "import numpy as np\ntotal = np.sum(values)  # add up\nprint(len(total))\n"
    second = "import numpy as np\n# the sum\nacc   =   np.sum( xs )\n\nprint(len(acc))\n"
    other_attribute = "import numpy as np\ntotal = np.mean(values)\nprint(len(total))\n"
    texts = lambda src: [t.text for t in normalise(src)]
    assert texts(first) == texts(second)
    assert "np" in texts(first) and "sum" in texts(first) and "len" in texts(first) and "V" in texts(first)
    assert texts(first) != texts(other_attribute)


def test_skeleton_lines_and_release_fingerprints_never_count():
    release = "def f(x):\n    \"\"\"Doc.\"\"\"\n    # YOUR CODE HERE\n    raise NotImplementedError()\n"
    cell = Cell("nb", "f", release, frozenset(), DEFAULTS)
    assert cell.answer_tokens(release) == []
    index = CellIndex(cell)
    for owner in ("a", "b", "c"):
        index.add(owner, release)
    assert index.answers == [] and index.skipped_short == 3 and index.pairs() == []


def test_code_most_of_the_class_writes_is_common_and_never_counts():
    release = "def f(xs):\n    # YOUR CODE HERE\n    raise NotImplementedError()\n"
    idiom = ("    total = 0\n    for x in xs:\n        total = total + abs(x) ** 2\n"
             "    return math.sqrt(total) / len(xs)\n")
    rare = "    out = sorted(xs, key=lambda v: (v % 7, -v))[::2]\n    return [min(o, 3) * 2 for o in out if o]\n"
    index = CellIndex(Cell("nb", "f", release, frozenset({"math"}), DEFAULTS))
    for number in range(DEFAULTS.common_min + 1):  # more than common_min students write the idiom
        index.add(f"idiom{number:02d}", "def f(xs):\n" + idiom)
    index.add("rare1", "def f(xs):\n" + rare)
    index.add("rare2", "def f(xs):\n" + rare.replace("out", "kept").replace("o ", "k ").replace("(o,", "(k,"))
    pairs = index.pairs()
    assert [_owners(p) for p in pairs] == [{"rare1", "rare2"}] and pairs[0].score == 1.0 and pairs[0].identical
    # too common to list as pairs, yet still shown as one group of identical answers
    assert index.identical_groups() == [[f"idiom{n:02d}" for n in range(DEFAULTS.common_min + 1)], ["rare1", "rare2"]]


def test_identical_copy_scores_full_even_when_part_of_it_is_common():
    release = "def f(xs):\n    # YOUR CODE HERE\n    raise NotImplementedError()\n"
    idiom = "    total = 0\n    for x in xs:\n        total = total + abs(x) ** 2\n"
    own = "    out = sorted(xs, key=lambda v: (v % 7, -v))[::2]\n    return [min(o, 3) * 2 for o in out if o]\n"
    index = CellIndex(Cell("nb", "f", release, frozenset(), DEFAULTS))
    for number in range(DEFAULTS.common_min + 1):
        index.add(f"idiom{number:02d}", "def f(xs):\n" + idiom + f"    return total * {number}\n")
    index.add("copy1", "def f(xs):\n" + idiom + own)
    index.add("copy2", "def f(xs):\n    # mine\n" + idiom.replace("total", "acc") + own)
    index.add("partly", "def f(xs):\n" + idiom + own.replace("min(o, 3) * 2", "o // 2 + max(o, 1) - 9"))
    by_owners = {frozenset(_owners(p)): p for p in index.pairs()}
    assert by_owners[frozenset({"copy1", "copy2"})].score == 1.0
    partly = by_owners[frozenset({"copy1", "partly"})]
    assert not partly.identical and partly.score < 0.9  # the common idiom dilutes what is shared


# --- the synthetic class -------------------------------------------------------------------------------
def test_renamed_copy_with_moved_comments_is_ranked_first(report):
    _, result = report
    pairs = result.cell_pairs[RNN_CELL]
    assert _owners(pairs[0]) == {"alice", "bob"}
    assert pairs[0].score > 0.9
    assert all(p.score < pairs[0].score for p in pairs[1:])
    honest = [p for p in pairs if "carol" in _owners(p) or "dave" in _owners(p)]
    assert all(p.score < 0.5 for p in honest), [(p.first.owner, p.second.owner, p.score) for p in honest]


def test_student_who_copies_the_reference_is_flagged_against_it(report):
    _, result = report
    copied = [label for label, pairs in result.cell_pairs.items()
              if pairs and _owners(pairs[0]) == {REFERENCE, "dave"} and pairs[0].score == 1.0]
    # every answer cell long enough to compare, except RNNLayer.forward, which dave wrote himself
    compared = [label for label, pairs in result.cell_pairs.items() if label != RNN_CELL and pairs]
    assert len(copied) >= 15 and set(copied) == set(compared)
    assert not any({REFERENCE, "dave"} == _owners(p) for p in result.cell_pairs[RNN_CELL])


def test_skeleton_shared_by_everyone_never_counts(report):
    _, result = report
    everyone = [p for pairs in result.cell_pairs.values() for p in pairs]
    assert not any("untouched" in _owners(p) for p in everyone)
    # alice, bob, carol, erin, frank and gina hand in the release everywhere but one cell: no pair there
    skeleton_only = {"alice", "bob", "carol", "erin", "frank", "gina"}
    assert not any(_owners(p) <= skeleton_only for label, pairs in result.cell_pairs.items()
                   if label != RNN_CELL for p in pairs)


def _group(result, slot_start: str, owner: str):
    found = [g for g in result.weight_groups if g.slot.startswith(slot_start) and owner in g.owners]
    assert len(found) == 1, result.weight_groups
    return found[0]


def test_honest_equal_weights_are_explained_by_seed_and_hyperparameters(report):
    _, result = report
    honest = _group(result, "Problem 4", "erin")
    assert honest.owners == ["erin", "frank"] and honest.exact
    assert honest.shared["hparams.seed"] == "0" and honest.shared["hparams.lr"] == "0.01"
    assert honest.shared["versions.torch"] == '"2.13.0"'
    assert "same seed and same hyperparameters" in honest.explanation(REFERENCE)


def test_copied_weights_under_another_seed_are_worth_a_look(report):
    _, result = report
    copied = _group(result, "Problem 4", "gina")
    assert copied.owners == ["alice", "gina"]
    assert {"hparams.seed", "hparams.lr"} <= set(copied.training_differs)
    text = copied.explanation(REFERENCE)
    assert "worth a look" in text and "hparams.seed = 7" in text and "gina" in text


def test_weights_equal_to_the_reference(report):
    _, result = report
    problem4 = _group(result, "Problem 4", "dave")
    assert problem4.owners == ["dave", REFERENCE] and problem4.exact
    assert "equal to the instructor's reference" in problem4.explanation(REFERENCE)
    carol = _group(result, "Problem 4", "carol") if any(
        "carol" in g.owners for g in result.weight_groups if g.slot.startswith("Problem 4")) else None
    assert carol is None  # carol's own weights match nobody's
    training = [g for g in result.weight_groups if g.slot.startswith("3k")]
    assert len(training) == 8
    for group in training:  # the course fixes seed and recipe: equal to the reference, dave within noise
        assert set(group.owners) == {"alice", "bob", "carol", "dave", REFERENCE}
        assert not group.exact and 0 < group.max_distance < 1e-3 and group.min_cosine > 0.999
        assert "same seed and hyperparameters" in group.explanation(REFERENCE)


def test_unreadable_notebook_or_log_costs_one_line(report):
    _, result = report
    assert result.reasons == [
        "erin: beam_search.ipynb: skipped, not a readable notebook (NotJSONError)",
        "untouched: submission_log.json: malformed weights (a weight is not a tensor entry); weights skipped"]


def test_page_and_csv(report):
    course, result = report
    page = result.page.read_text()
    assert result.page == course.root / "reports" / "similarity" / "index.html"
    assert "ranks pairs of submissions for a person to look at. It accuses nobody" in page
    assert "data:image/png;base64," in page  # the heat map travels inside the page
    assert "src='http" not in page and 'src="http' not in page and "<script src" not in page
    assert '&lt;script&gt;alert("bob")&lt;/script&gt;' in page  # text, as the sanitiser writes it
    assert '<script>alert("bob")' not in page
    assert "<mark>" in page
    # cells with nothing similar are folded into one line, not a section each
    quiet = [label for label, pairs in result.cell_pairs.items() if not pairs]
    assert quiet and page.count('<details id="user-content-quiet-cells">') == 1
    assert f"{len(quiet)} answer cells with no similar pair" in page
    assert not any(f"<h3>{html.escape(label)}</h3>" in page for label in quiet)
    rows = list(csv.DictReader((result.page.parent / "pairs.csv").open()))
    code = [r for r in rows if r["kind"] == "code" and r["where"] == RNN_CELL]
    assert {code[0]["student_a"], code[0]["student_b"]} == {"alice", "bob"}
    weights = [r for r in rows if r["kind"] == "weights" and r["student_b"] == "gina"]
    assert weights and weights[0]["student_a"] == "alice" and "worth a look" in weights[0]["note"]


# --- readers -------------------------------------------------------------------------------------------
FORMATS = WeightFormats.of(REPO_ROOT / "source" / "hw6" / "hw6utils")


def test_record_reader_accepts_models_and_refuses_malformed_arrays():
    good = {"model": "rnn", "num_layers": 1, "last_timestep_only": False, "seed": 0, "recipe": {},
            "state_dict": {"W": {"__array__": [2, 2], "data": [1.0, 2.0, 3.0, 4.0]}}}
    models = models_from_records([{"name": "count", "value": 4}, {"name": "m", "value": good}], "s", FORMATS)
    assert len(models) == 1 and models[0].architecture == (("W", (2, 2)),)
    assert models[0].slot == "3k rnn, 1 layer(s), every step"
    bad = dict(good, state_dict={"W": {"__array__": [2, 2], "data": [1.0]}})
    with pytest.raises(ValueError, match="not a published array of finite numbers"):
        models_from_records([{"name": "m", "value": bad}], "s", FORMATS)
    nan = dict(good, state_dict={"W": {"__array__": [1], "data": ["nan"]}})
    with pytest.raises(ValueError, match="not a published array of finite numbers"):
        models_from_records([{"name": "m", "value": nan}], "s", FORMATS)


def test_log_reader_names_the_file_and_the_problem(tmp_path):
    path = tmp_path / "submission_log.json"
    path.write_text(json.dumps({"weights": {"w": {"shape": [3], "dtype": "float32",
                                                  "data": base64.b64encode(b"\0" * 8).decode()}}}))
    with pytest.raises(ValueError, match=r"submission_log.json: malformed weights \(8 bytes do not fit"):
        read_submission_log(path, "s", FORMATS)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="submission_log.json: not readable JSON"):
        read_submission_log(path, "s", FORMATS)


def test_command_line(report, capsys):
    course, _ = report
    out = course.root / "cli-report"
    assert coursekit_main(["--course-dir", str(course.root), "similarity", ASSIGNMENT, "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert f"report: {out / 'index.html'}" in printed.out and "accuses nobody" in printed.out
    assert "erin: beam_search.ipynb: skipped" in printed.err
    assert (out / "pairs.csv").is_file()
    missing = course.root / "nope.json"
    assert coursekit_main(["--course-dir", str(course.root), "similarity", "--reference-log", str(missing)]) == 2
    assert capsys.readouterr().err.strip() == f"coursekit: error: {missing}: no such file (--reference-log)"


# --- the synthetic class of independent styles with planted copies (coursekit/testing/similarity_class.py) --
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_planted_copy_ranks_above_every_honest_pair(seed):
    synthetic = build_synthetic_class(seed)
    _, _, pairs = ranked_pairs(synthetic)
    copies = {frozenset(pair): level for level, pair in synthetic.copies.items()}
    key = lambda p: frozenset((p.first, p.second))
    scores = {copies[key(p)]: p.score for p in pairs if key(p) in copies}
    best_honest = max(p.score for p in pairs if key(p) not in copies)
    assert set(scores) == set(LEVELS)
    assert min(scores.values()) > best_honest, (scores, best_honest)
    assert scores["reordered"] >= 2 * best_honest, (scores, best_honest)
    assert scores["verbatim"] > 0.5


def test_reordered_copy_is_identical_after_normalising():
    synthetic = build_synthetic_class(0)
    copier, source = synthetic.copies["reordered"]
    indexes, cell_pairs, _ = ranked_pairs(synthetic)
    copied = [p for pairs in cell_pairs.values() for p in pairs if _owners(p) == {copier, source}]
    assert len(copied) >= 3 and all(p.identical and p.score == 1.0 for p in copied[:3])


def test_headline_is_each_students_share_of_their_answered_code():
    synthetic = build_synthetic_class(0)
    copier, source = synthetic.copies["verbatim"]
    indexes, cell_pairs, _ = ranked_pairs(synthetic)
    copied = {p.cell.grade_id for pairs in cell_pairs.values() for p in pairs
              if _owners(p) == {copier, source} and p.identical}
    assert len(copied) == 3
    # the copier hands in the three copied answers only: all of the copier's code is shared
    synthetic.answers[copier] = {gid: text for gid, text in synthetic.answers[copier].items() if gid in copied}
    _, _, pairs = ranked_pairs(synthetic)
    [pair] = [p for p in pairs if {p.first, p.second} == {copier, source}]
    mine, theirs = ((pair.share_first, pair.share_second) if pair.first == copier
                    else (pair.share_second, pair.share_first))
    assert mine == 1.0 and 0.5 < theirs < 1.0  # the source wrote a fourth answer of their own
    assert pair.answers_shared == 3 and {pair.answers_first, pair.answers_second} == {3, 4}
    assert pair.largest is not None and pair.largest[1] == 1.0 and pair is pairs[0]


def test_kept_pairs_are_the_most_similar_ones():
    indexes, cell_pairs, every = ranked_pairs(build_synthetic_class(1))
    totals = PairTotals()
    for index in indexes:
        totals.add(index, cell_pairs[index.cell.label])
    kept = totals.pairs(limit=10)
    assert len(every) > 100
    assert [(p.first, p.second, p.score) for p in kept] == [(p.first, p.second, p.score) for p in every[:10]]
