"""Every setting of the similarity report, with its one default (change them here or per run)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SimilaritySettings:
    # --- code (token k-grams, winnowed as MOSS does) ---
    kgram_tokens: int = 10          # a fingerprint covers this many normalised tokens (noise threshold)
    window: int = 4                 # winnowing window: any shared run of kgram_tokens + window - 1 tokens is found
    per_statement: bool = False     # True: k-grams stay inside one statement (survive reordering and loop rewrites,
                                    # but honest pairs share more: bench/bench_similarity_class.py)
    min_statement_tokens: int = 6   # (per_statement) a statement shorter than kgram_tokens but this long is one
                                    # fingerprint
    any_order: bool = True          # answers with the same statements in another order are identical (all shared)
    min_tokens: int = 25            # answers shorter than this (after removing skeleton code) are not compared
    common_share: float = 0.05      # a fingerprint in more than this share of submissions ...
    common_min: int = 10            # ... and in more than this many is common code and never counts
    min_code_score: float = 0.3     # pairs below this code similarity are not listed
    pairs_per_cell: int = 25        # most similar pairs shown per cell on the page (the CSV has all)
    student_pairs_kept: int = 5000  # most similar pairs of students kept for the page's table and heat map
    # --- trained weights ---
    near_distance: float = 0.05     # |a - b| / max(|a|, |b|) at most this: near-duplicate weights
    max_notebook_bytes: int = 64 * 2**20  # larger notebooks and logs are skipped with a reason
    max_answer_chars: int = 100_000       # and so are longer answer cells
    # --- page ---
    heatmap_students: int = 60      # the heat map shows the students of the most similar pairs, at most this many


DEFAULTS = SimilaritySettings()
