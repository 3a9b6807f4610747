"""Trusted helpers for Problem 2 (beam search): the decoder of Figure 2, random trees, sequence scores.

A decoder is modelled as a *next-token log-probability function*: it takes the prefix decoded so far
(a tuple of tokens, ``()`` at the start) and returns a dict ``{token: log_probability}`` with one entry
per vocabulary token. The notebook's ``beam_search`` works on any such function, so the same code runs
on the hand-made worked example, on random trees and (in principle) on a real RNN language model.
The trees are drawn by :func:`hw6utils.figures.decoding_tree` (with the student's beams, if given).
"""
from __future__ import annotations

import math
from itertools import product
from typing import Callable, Mapping, Sequence

import numpy as np

Prefix = tuple[str, ...]
NextLogProbs = Callable[[Prefix], Mapping[str, float]]
Hypothesis = tuple[Prefix, float]

#: The vocabulary of the worked example.
WORKED_VOCAB: tuple[str, ...] = ("neural", "network")

#: Length of the sequences decoded in the worked example.
WORKED_LENGTH = 3

#: The worked example's decoder, written out as a tree: prefix -> {next token: log-probability}.
#: The values given by the homework are kept exactly; the branches it leaves open are filled so that
#: each node's two probabilities sum to about 1 (e.g. exp(-0.6) + exp(-0.8) = 0.998,
#: exp(-0.01) + exp(-4.6) = 1.000, exp(-0.68) + exp(-0.7) = 1.003) without changing any fact
#: of the example that the homework asks about.
WORKED_TREE: dict[Prefix, dict[str, float]] = {
    (): {"neural": -0.65, "network": -0.73},
    ("neural",): {"network": -0.6, "neural": -0.8},
    ("network",): {"neural": -0.6, "network": -0.8},          # network: filled in
    ("neural", "network"): {"network": -0.6, "neural": -0.8},  # neural: filled in
    ("network", "neural"): {"network": -0.6, "neural": -0.8},  # neural: filled in
    ("neural", "neural"): {"neural": -0.01, "network": -4.6},  # network: filled in
    ("network", "network"): {"neural": -0.68, "network": -0.7},  # both filled in (no exact tie)
}


def tree_function(tree: Mapping[Prefix, Mapping[str, float]]) -> NextLogProbs:
    """Wrap a prefix -> {token: log-prob} table as a next-token function (a copy, so callers cannot edit it).

    Asking for a prefix that is not in the table raises a KeyError that names the prefix.
    """
    table = {tuple(prefix): dict(children) for prefix, children in tree.items()}

    def next_log_probs(prefix: Prefix) -> dict[str, float]:
        key = tuple(prefix)
        if key not in table:
            raise KeyError(f"the decoder tree has no entry for prefix {key!r} (decoded past its depth?)")
        return dict(table[key])

    return next_log_probs


def worked_next_log_probs(prefix: Prefix) -> dict[str, float]:
    """Next-token log-probabilities of the worked example (vocabulary {neural, network}, length 3)."""
    return tree_function(WORKED_TREE)(prefix)


def sequence_log_prob(next_log_probs: NextLogProbs, tokens: Sequence[str]) -> float:
    """Total log-probability of a whole sequence: the sum of its per-step log-probabilities."""
    total, prefix = 0.0, ()
    for token in tokens:
        total += next_log_probs(prefix)[token]
        prefix = prefix + (token,)
    return total


def random_tree(vocab: Sequence[str], depth: int, seed: int) -> dict[Prefix, dict[str, float]]:
    """A random decoder tree of the given depth: every node gets a random distribution over ``vocab``.

    Each node's probabilities sum to 1. Insertion order of every node's dict is shuffled, so code
    that relies on dict order (instead of the documented tie rule) is exposed. Seeded: same seed,
    same tree.
    """
    vocab = list(vocab)
    if len(set(vocab)) != len(vocab) or not vocab:
        raise ValueError(f"vocab must be non-empty with distinct tokens, got {vocab!r}")
    rng = np.random.default_rng(seed)
    tree: dict[Prefix, dict[str, float]] = {}
    for length in range(depth):
        for prefix in product(vocab, repeat=length):
            probs = rng.dirichlet(np.ones(len(vocab)))
            order = rng.permutation(len(vocab))
            tree[tuple(prefix)] = {vocab[i]: float(np.log(probs[i])) for i in order}
    return tree


def log_prob_sum_check(tree: Mapping[Prefix, Mapping[str, float]], tol: float = 0.02) -> None:
    """Raise ValueError naming the node unless every node's probabilities sum to 1 within ``tol``."""
    for prefix, children in tree.items():
        total = sum(math.exp(v) for v in children.values())
        if abs(total - 1.0) > tol:
            raise ValueError(f"node {prefix!r}: probabilities sum to {total:.3f}, not about 1")
