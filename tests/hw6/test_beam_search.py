"""Problem 2: hw6utils.beam (worked tree, random trees, plot) and the beam_search notebook's tests.

The reference must pass every test cell; common wrong beam searches must be rejected by the hidden
tests on their own (see tests/hw6/rejection.py, assert_rejected).
"""
from __future__ import annotations

import math
import re
from itertools import product

import pytest

from tests.hw6.rejection import (AlwaysEqual, LyingFloat, assert_accepted, assert_check_style, assert_rejected,
                                 assert_sabotage_rejected, reference_calls, visible_failure)

from hw6utils import beam  # noqa: E402

NB = "beam_search.ipynb"
CELLS = ["test_beam_search_worked_example", "test_beam_search_greedy_exhaustive",
         "test_beam_search_random_trees", "test_beam_search_ties"]


@pytest.fixture(autouse=True)
def close_figures():
    """The notebook's figure cells run with every reference namespace; do not let figures pile up."""
    yield
    import matplotlib.pyplot as plt
    plt.close("all")


# --- the trusted helper ---------------------------------------------------------------------

def all_sequences(f, T):
    vocab = sorted(f(()).keys())
    return sorted(((seq, beam.sequence_log_prob(f, seq)) for seq in product(vocab, repeat=T)),
                  key=lambda c: (-c[1], c[0]))


def test_worked_tree_keeps_the_spec_facts():
    f = beam.worked_next_log_probs
    beam.log_prob_sum_check(beam.WORKED_TREE)  # every node's probabilities sum to about 1
    assert f(()) == {"neural": -0.65, "network": -0.73}
    assert f(("neural",))["network"] == -0.6 and f(("neural",))["neural"] == -0.8
    assert f(("network",))["neural"] == -0.6
    assert f(("neural", "network"))["network"] == -0.6 and f(("network", "neural"))["network"] == -0.6
    assert f(("neural", "neural"))["neural"] == -0.01
    ranked = all_sequences(f, 3)
    assert ranked[0][0] == ("neural", "neural", "neural")
    assert ranked[0][1] == pytest.approx(-1.46)
    assert beam.sequence_log_prob(f, ("neural", "neural")) == pytest.approx(-1.45)
    # "neural neural" is third of the four length-2 prefixes, so k = 2 prunes it
    assert [seq for seq, _ in all_sequences(f, 2)][:3] == [("neural", "network"), ("network", "neural"),
                                                          ("neural", "neural")]


def test_tree_function_is_a_copy_and_names_missing_prefixes():
    tree = {(): {"a": -0.5}}
    f = beam.tree_function(tree)
    tree[()]["a"] = 0.0
    f(())["a"] = 1.0
    assert f(()) == {"a": -0.5}
    with pytest.raises(KeyError, match="'a'"):
        f(("a",))


def test_random_tree_is_seeded_normalised_and_shuffled():
    t1 = beam.random_tree(["a", "b", "c"], 3, seed=5)
    assert t1 == beam.random_tree(["a", "b", "c"], 3, seed=5)
    assert t1 != beam.random_tree(["a", "b", "c"], 3, seed=6)
    assert len(t1) == 1 + 3 + 9
    beam.log_prob_sum_check(t1, tol=1e-9)
    orders = {tuple(children) for children in t1.values()}
    assert len(orders) > 1, "dict orders should vary so code relying on them is exposed"
    with pytest.raises(ValueError, match="distinct"):
        beam.random_tree(["a", "a"], 2, seed=0)


def test_log_prob_sum_check_names_the_bad_node():
    with pytest.raises(ValueError, match=r"\('x',\)"):
        beam.log_prob_sum_check({(): {"x": math.log(0.5), "y": math.log(0.5)}, ("x",): {"x": -0.1, "y": -0.1}})


def _kept_paths(fig):
    """(start, end) of every thick (beam) line of a decoding-tree figure."""
    return {(tuple(line.get_xydata()[0]), tuple(line.get_xydata()[-1])) for line in fig.axes[0].lines
            if line.get_linewidth() > 2}


def test_beam_plot_draws_the_students_beams_on_figure_2s_layout(reference):
    """The beams are drawn on the tree of Figure 2 itself (same orientation, same positions), with
    the scores the beam search returned, and nothing the student's beams do not contain is marked."""
    import matplotlib
    matplotlib.use("Agg")
    from hw6utils import figures
    _, history = reference["beam_search"](beam.worked_next_log_probs, 2, 3, return_history=True)
    plain = figures.decoding_tree(beam.worked_next_log_probs, 3)
    drawn = figures.decoding_tree(beam.worked_next_log_probs, 3, beams=history)
    offsets = lambda fig: [tuple(c.get_offsets()[0]) for c in fig.axes[0].collections]  # noqa: E731
    assert offsets(plain) == offsets(drawn) and len(offsets(drawn)) == 1 + 2 + 4 + 8
    top = max(offsets(drawn), key=lambda xy: xy[1] if xy[0] > 0 and xy[0] < 3 else -1e9)
    assert [t.get_text() for t in drawn.axes[0].texts if tuple(t.get_position()) == (top[0], top[1] + 0.22)] == \
        ["neural"]  # the decoder's first token on top, as in Figure 2
    assert len(_kept_paths(drawn)) == 2 * 3 and not _kept_paths(plain)
    blue = [c for c in drawn.axes[0].collections
            if matplotlib.colors.same_color(c.get_facecolors()[0], figures.BEAM)]
    assert len(blue) == 1 + 2 * 3  # the start and the two stored hypotheses of each step
    scores = {t.get_text() for t in drawn.axes[0].texts if t.get_color() == figures.BEAM}
    assert scores == {f"{s:.2f}".replace("-", "\u2212") for beam_ in history for _, s in beam_}
    labels = [t for t in drawn.axes[0].texts if t.get_text().startswith("\u2212")]  # edge labels and scores
    assert len(labels) == 14 + 6
    assert all(t.get_bbox_patch() is not None and t.get_zorder() > 2 for t in labels)  # on white, above the beams


def test_beam_plot_marks_only_what_the_student_returned():
    """A wrong beam is drawn as it is: no best path is marked from the helper's own search."""
    from hw6utils import figures
    wrong = [[(("network",), -0.73)], [(("network", "network"), -1.53)], [(("network", "network", "neural"), -2.21)]]
    fig = figures.decoding_tree(beam.worked_next_log_probs, 3, beams=wrong)
    scores = {t.get_text() for t in fig.axes[0].texts if t.get_color() == figures.BEAM}
    assert scores == {"\u22120.73", "\u22121.53", "\u22122.21"}
    assert len(_kept_paths(fig)) == 3
    assert not any("1.46" in t.get_text() for t in fig.axes[0].texts)
    with pytest.raises(ValueError, match="after step 1 holds \\['nowhere'\\]"):
        figures.decoding_tree(beam.worked_next_log_probs, 3, beams=[[(("nowhere",), -1.0)]])
    with pytest.raises(ValueError, match="too large"):
        figures.decoding_tree(beam.tree_function(beam.random_tree(["a", "b", "c"], 4, seed=0)), 4)


# --- the notebook's tests ---------------------------------------------------------------------

def test_reference_passes_every_test_cell(reference):
    assert_accepted(NB, CELLS, reference)


def test_test_cells_publish_checks_only():
    assert_check_style(NB)


def oracle_history(f, k, T):
    """Plain beam search: expand every hypothesis fully, sort everything, keep k (same tie rule)."""
    hyps, history = [((), 0.0)], []
    for _ in range(T):
        cands = [(p + (tok,), s + lp) for p, s in hyps for tok, lp in f(p).items()]
        hyps = sorted(cands, key=_rank)[:k]
        history.append(hyps)
    return history


def oracle_greedy(f, T):
    prefix, score = (), 0.0
    for _ in range(T):
        lps = f(prefix)
        tok = min(lps, key=lambda t: (-lps[t], t))
        prefix, score = prefix + (tok,), score + lps[tok]
    return [(prefix, score)]


def oracle_exhaustive(f, T, k):
    """Score every complete sequence (walking the whole tree, token sets may differ per node); the k best."""
    sequences = [()]
    for _ in range(T):
        sequences = [seq + (tok,) for seq in sequences for tok in f(seq)]
    return sorted(((seq, beam.sequence_log_prob(f, seq)) for seq in sequences), key=_rank)[:k]


def assert_same_beam(got, want):
    assert [tuple(tokens) for tokens, _ in got] == [tokens for tokens, _ in want]
    assert [score for _, score in got] == pytest.approx([score for _, score in want], abs=1e-12)


def test_reference_agrees_with_brute_force_on_every_input_the_cells_use(reference):
    """The hidden checks compare with the reference's answers; here every one of them is verified
    against a full-sort beam search, and against greedy decoding (k = 1) / exhaustive search (k >= M^(T-1))."""
    import inspect
    signature = inspect.signature(reference["beam_search"])
    counts = {"calls": 0, "greedy": 0, "exhaustive": 0, "invalid": 0}
    for grade_id in CELLS:
        for call in reference_calls(NB, grade_id, reference, "beam_search"):
            bound = signature.bind(*call.args, **call.kwargs)
            bound.apply_defaults()
            f, k, T, with_history = (bound.arguments[name] for name in ("next_log_probs", "k", "T", "return_history"))
            if call.error is not None:  # the promised ValueError for k < 1 or T < 1
                assert isinstance(call.error, ValueError) and (k < 1 or T < 1), call
                counts["invalid"] += 1
                continue
            history = oracle_history(f, k, T)
            final = call.result
            if with_history:
                final, got_history = call.result
                assert len(got_history) == T
                for got, want in zip(got_history, history):
                    assert_same_beam(got, want)
            assert_same_beam(final, history[-1])
            if k == 1:
                assert_same_beam(final, oracle_greedy(f, T))
                counts["greedy"] += 1
            if k >= len(f(())) ** (T - 1):
                assert_same_beam(final, oracle_exhaustive(f, T, k))
                counts["exhaustive"] += 1
            counts["calls"] += 1
    assert counts["calls"] >= 90 and counts["greedy"] >= 10 and counts["exhaustive"] >= 10, counts
    assert counts["invalid"] == 5, counts


def test_reference_validates_arguments(reference):
    for k, T in ((0, 3), (2, 0)):
        with pytest.raises(ValueError):
            reference["beam_search"](beam.worked_next_log_probs, k, T)


def _rank(c):
    return (-c[1], c[0])


def per_hypothesis_top_k(next_log_probs, k, T, return_history=False):
    """Wrong: keeps each hypothesis's top-k continuations, then the first k overall, never re-ranking."""
    hyps, history = [((), 0.0)], []
    for _ in range(T):
        new = []
        for prefix, score in hyps:
            conts = [(prefix + (tok,), score + lp) for tok, lp in next_log_probs(prefix).items()]
            new.extend(sorted(conts, key=_rank)[:k])
        hyps = new[:k]
        history.append(hyps)
    return (hyps, history) if return_history else hyps


def greedy_as_beam(next_log_probs, k, T, return_history=False):
    """Wrong: greedy decoding whatever k is."""
    hyps, history = [((), 0.0)], []
    for _ in range(T):
        prefix, score = hyps[0]
        lps = next_log_probs(prefix)
        tok = min(lps, key=lambda t: (-lps[t], t))
        hyps = [(prefix + (tok,), score + lps[tok])]
        history.append(hyps)
    return (hyps, history) if return_history else hyps


def rank_by_last_step(next_log_probs, k, T, return_history=False):
    """Wrong: ranks candidates by the last token's log-prob instead of the total score."""
    hyps, history = [((), 0.0)], []
    for _ in range(T):
        cands = [(p + (tok,), s + lp, lp) for p, s in hyps for tok, lp in next_log_probs(p).items()]
        cands.sort(key=lambda c: (-c[2], c[0]))
        hyps = [(p, s) for p, s, _ in cands[:k]]
        history.append(hyps)
    return (hyps, history) if return_history else hyps


def ties_by_dict_order(next_log_probs, k, T, return_history=False):
    """Wrong: a stable sort on the score only, so ties follow the model's dict order."""
    hyps, history = [((), 0.0)], []
    for _ in range(T):
        cands = [(p + (tok,), s + lp) for p, s in hyps for tok, lp in next_log_probs(p).items()]
        cands.sort(key=lambda c: -c[1])
        hyps = cands[:k]
        history.append(hyps)
    return (hyps, history) if return_history else hyps


def unsorted_beam(next_log_probs, k, T, return_history=False):
    """Wrong: keeps the right k hypotheses but in generation order, not best first."""
    hyps, history = [((), 0.0)], []
    for _ in range(T):
        cands = [(p + (tok,), s + lp) for p, s in hyps for tok, lp in next_log_probs(p).items()]
        keep = set(c[0] for c in sorted(cands, key=_rank)[:k])
        hyps = [c for c in cands if c[0] in keep]
        history.append(hyps)
    return (hyps, history) if return_history else hyps


def drops_last_step(next_log_probs, k, T, return_history=False):
    """Wrong: prunes to k only after expanding, but forgets the final prune (returns k*M hypotheses)."""
    hyps, history = [((), 0.0)], []
    for step in range(T):
        cands = sorted(((p + (tok,), s + lp) for p, s in hyps for tok, lp in next_log_probs(p).items()), key=_rank)
        hyps = cands if step == T - 1 else cands[:k]
        history.append(hyps)
    return (hyps, history) if return_history else hyps


def test_rejects_per_hypothesis_top_k_without_reranking(reference):
    assert_rejected(NB, ["test_beam_search_worked_example", "test_beam_search_greedy_exhaustive",
                         "test_beam_search_random_trees"], reference, beam_search=per_hypothesis_top_k)


def test_rejects_greedy_decoding_submitted_as_beam_search(reference):
    assert_rejected(NB, ["test_beam_search_worked_example", "test_beam_search_greedy_exhaustive",
                         "test_beam_search_random_trees"], reference, beam_search=greedy_as_beam)


def test_rejects_ranking_by_last_token_only(reference):
    assert_rejected(NB, ["test_beam_search_worked_example", "test_beam_search_random_trees"], reference,
                    beam_search=rank_by_last_step)


def test_rejects_ties_broken_by_dict_order(reference):
    # correct except for ties: only the ties cell may reject it (the other trees have no exact ties)
    assert_accepted(NB, ["test_beam_search_worked_example", "test_beam_search_greedy_exhaustive",
                         "test_beam_search_random_trees"], reference, beam_search=ties_by_dict_order)
    assert_rejected(NB, ["test_beam_search_ties"], reference, beam_search=ties_by_dict_order)


def test_rejects_beam_not_sorted_best_first(reference):
    assert_rejected(NB, ["test_beam_search_worked_example", "test_beam_search_random_trees"], reference,
                    beam_search=unsorted_beam)


def test_rejects_missing_final_prune(reference):
    assert_rejected(NB, ["test_beam_search_worked_example", "test_beam_search_greedy_exhaustive",
                         "test_beam_search_random_trees"], reference, beam_search=drops_last_step)


def full_sort_beam(next_log_probs, k, T, return_history=False):
    """A correct alternative: expand everything and sort all k*M candidates (no heap)."""
    if k < 1 or T < 1:
        raise ValueError("k and T must be at least 1")
    return no_validation(next_log_probs, k, T, return_history)


def no_validation(next_log_probs, k, T, return_history=False):
    """Right beams, but k < 1 or T < 1 give an empty result instead of the promised ValueError."""
    hyps, history = [((), 0.0)], []
    for _ in range(T):
        cands = [(p + (tok,), s + lp) for p, s in hyps for tok, lp in next_log_probs(p).items()]
        hyps = sorted(cands, key=_rank)[:k]
        history.append(hyps)
    return (hyps, history) if return_history else hyps


def one_step_short(next_log_probs, k, T, return_history=False):
    """Wrong: an off-by-one loop runs T - 1 steps (sequences one token short)."""
    return no_validation(next_log_probs, k, T - 1, return_history)


def test_off_by_one_length_is_reported_as_a_length_problem(reference):
    """The ties cell names the length of the hypotheses, not their order, when the loop is one step short."""
    assert_rejected(NB, CELLS, reference, beam_search=one_step_short)
    message = visible_failure(NB, "test_beam_search_ties", dict(reference, beam_search=one_step_short))
    assert message.startswith("length of every hypothesis in the final beam (T=2): got [1, 1], expected [2, 2]")
    message = visible_failure(NB, "test_beam_search_random_trees", dict(reference, beam_search=one_step_short))
    assert message == "k=1: number of beams in the history (one per step, T=4): got 3, expected 4", message
    message = visible_failure(NB, "test_beam_search_greedy_exhaustive", dict(reference, beam_search=one_step_short))
    assert message.startswith("length of every hypothesis for T=3: got [2, 2], expected [3, 3]"), message


def test_off_by_one_feedback_names_the_length_first(reference):
    """As the grader judges it and feedback shows it, the ties cell of a one-step-short search names the
    length check first; the order check only follows from it."""
    from nbformat.v4 import new_code_cell

    from coursekit.feedback import failed_checks
    from coursekit.testing.notebooks import reference_records, test_cell_records, trusted_checks, trusted_judges
    from coursekit.verdicts import judge_cell_named, verdict_outputs

    grade_id = "test_beam_search_ties"
    records, _ = test_cell_records(NB, grade_id, dict(reference, beam_search=one_step_short))
    ref = list(reference_records(NB, grade_id))
    reasons, named, _ = judge_cell_named(ref, records, trusted_checks(), trusted_judges())
    cell = new_code_cell("")
    cell.outputs = verdict_outputs(reasons, len(ref))
    cell.metadata["coursekit"] = {"failed_checks": named}
    shown = failed_checks(cell)
    assert shown[0] == "length of every hypothesis in the final beam (T=2) failed", shown
    assert reasons[0].startswith("length of every hypothesis in the final beam (T=2): ") and "got [1, 1]" in reasons[0]


def test_accepts_a_different_correct_implementation(reference):
    assert_accepted(NB, CELLS, reference, beam_search=full_sort_beam)


def test_skipping_the_promised_value_error_costs_the_ties_cell_only(reference):
    assert_accepted(NB, ["test_beam_search_worked_example", "test_beam_search_greedy_exhaustive",
                         "test_beam_search_random_trees"], reference, beam_search=no_validation)
    assert_rejected(NB, ["test_beam_search_ties"], reference, beam_search=no_validation)


def never_prunes(next_log_probs, k, T, return_history=False):
    """Wrong: keeps every extension, best first (no cut to k)."""
    return no_validation(next_log_probs, 10 ** 6, T, return_history)


def test_visible_failures_say_what_was_kept_and_what_was_expected(reference):
    assert visible_failure(NB, "test_beam_search_worked_example", dict(reference, beam_search=never_prunes)) == \
        "number of sequences kept after step 2: got 4, expected 2"
    message = visible_failure(NB, "test_beam_search_worked_example", dict(reference, beam_search=per_hypothesis_top_k))
    assert message == ("after step 2: pruned extensions that score higher than a kept sequence: got 1 item, "
                       "expected 0: got [['network', 'neural']], expected []"), message
    message = visible_failure(NB, "test_beam_search_random_trees", dict(reference, beam_search=unsorted_beam))
    assert re.match(r"k=2, step 1: sorted best first: got \[-[0-9.]+, -[0-9.]+\], expected \[", message), message
    message = visible_failure(NB, "test_beam_search_ties", dict(reference, beam_search=no_validation))
    assert message == "beam_search(worked_next_log_probs, k=0, T=3): got 'no error', expected 'ValueError'"


def lying_greedy(next_log_probs, k, T, return_history=False):
    """Wrong (greedy whatever k is), with scores that claim to equal anything."""
    final, history = greedy_as_beam(next_log_probs, k, T, return_history=True)
    history = [[(tokens, LyingFloat(score)) for tokens, score in beam] for beam in history]
    return (history[-1], history) if return_history else history[-1]


def always_equal_beam(next_log_probs, k, T, return_history=False):
    """Wrong: hypotheses that are equal to whatever they are compared with."""
    beam = [(AlwaysEqual(), AlwaysEqual())] * k
    return (beam, [beam] * T) if return_history else beam


def test_sabotaged_kernel_does_not_help_a_wrong_answer(reference):
    for grade_id in CELLS:
        assert_sabotage_rejected(NB, grade_id, reference, beam_search=lying_greedy)
        assert_sabotage_rejected(NB, grade_id, reference, beam_search=always_equal_beam)
