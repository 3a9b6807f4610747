"""Code similarity of answer cells: normalised tokens, winnowed k-gram fingerprints, an inverted index.

An answer is the student's cell minus the release's skeleton lines. Its tokens are normalised so that
comments, whitespace, strings and the names of local variables do not matter (builtins, attributes and
imported names stay: they say what the code does). Fingerprints are hashes of token k-grams selected by
winnowing (copydetect's implementation of Schleimer, Wilkerson and Aiken's algorithm, as MOSS uses);
with the ``per_statement`` setting, inside each statement only. Two answers made of the same statements,
in any order, are identical after normalising: all of each is shared.
Fingerprints of the release cell and fingerprints too common in the class never count. Only pairs that
share a fingerprint are ever looked at.
"""
from __future__ import annotations

import builtins
import hashlib
import io
import itertools
import keyword
import tokenize
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
from copydetect.utils import winnow

from coursekit.similarity.settings import SimilaritySettings

PLACEHOLDER = "V"
KEPT_NAMES = frozenset(dir(builtins)) | frozenset(keyword.kwlist) | frozenset(keyword.softkwlist)
_HASH_MASK = (1 << 52) - 1  # copydetect's winnow compares hashes as float64: keep them exact
_SKIPPED = {tokenize.COMMENT, tokenize.NL, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING,
            tokenize.ENDMARKER, tokenize.ERRORTOKEN}
_token_ids: dict[str, int] = {}


@dataclass(frozen=True)
class Token:
    text: str    # normalised text
    start: int   # character offsets in the cell source
    end: int


def _line_offsets(source: str) -> list[int]:
    offsets, total = [0], 0
    for line in source.splitlines(keepends=True):
        total += len(line)
        offsets.append(total)
    return offsets


def _raw_tokens(source: str, skeleton: frozenset[str] = frozenset()) -> list[tokenize.TokenInfo]:
    """Python tokens of a cell. Skeleton lines, IPython magics and shell lines are blanked first (same
    length, so offsets stay right, and never tokenized); a broken tail is dropped."""
    lines = [(" " * (len(line) - 1) + "\n" if line.strip() in skeleton or line.lstrip().startswith(("%", "!"))
              else line) for line in source.splitlines(keepends=True)]
    tokens: list[tokenize.TokenInfo] = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO("".join(lines)).readline):
            tokens.append(tok)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass  # unfinished code: what tokenized so far still counts
    return tokens


def _imports(tokens: list[tokenize.TokenInfo]) -> set[str]:
    names: set[str] = set()
    in_import = False
    for tok in tokens:
        if tok.type == tokenize.NEWLINE:
            in_import = False
        elif tok.type == tokenize.NAME:
            if tok.string in ("import", "from") and not in_import:
                in_import = True
            elif in_import:
                names.add(tok.string)
    return names


def imported_names(source: str) -> set[str]:
    """Every name in the import statements of ``source`` (modules and aliases: torch, nn, np, F ...)."""
    return _imports(_raw_tokens(source))


def normalise(source: str, skeleton: frozenset[str] = frozenset(), known: frozenset[str] = frozenset()
              ) -> list[Token]:
    """The answer's normalised tokens: skeleton lines, comments and layout dropped, local names -> V."""
    raw = _raw_tokens(source, skeleton)
    keep_names = KEPT_NAMES | known | _imports(raw)
    starts = _line_offsets(source)
    out: list[Token] = []
    previous = ""
    for tok in raw:
        if tok.type in _SKIPPED:
            continue
        row, col = tok.start
        if tok.type == tokenize.NAME:
            text = tok.string if (tok.string in keep_names or previous == ".") else PLACEHOLDER
        elif tok.type == tokenize.STRING:
            text = "S"
        elif tok.type == tokenize.NEWLINE:
            text = ";"
        else:
            text = tok.string
        previous = tok.string
        end_row, end_col = tok.end
        start = starts[row - 1] + col if row - 1 < len(starts) else len(source)
        end = starts[end_row - 1] + end_col if end_row - 1 < len(starts) else len(source)
        out.append(Token(text, start, max(start, end)))
    return out


def _token_id(text: str) -> int:
    found = _token_ids.get(text)
    if found is None:  # stable across runs and processes (unlike hash() of a str)
        found = _token_ids[text] = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=6).digest(), "big")
    return found


def kgram_hashes(tokens: list[Token], k: int) -> np.ndarray:
    """One 52-bit hash per k-gram of tokens (hash() of an int tuple is the same in every run)."""
    ids = [_token_id(t.text) for t in tokens]
    return np.array([hash(tuple(ids[i:i + k])) & _HASH_MASK for i in range(len(ids) - k + 1)], dtype=np.int64)


def statements(tokens: list[Token]) -> list[tuple[int, int]]:
    """Token ranges [start, end) of the logical statements (the ";" that ends each one left out)."""
    found, start = [], 0
    for number, token in enumerate(tokens + [Token(";", 0, 0)]):
        if token.text == ";":
            if number > start:
                found.append((start, number))
            start = number + 1
    return found


def _candidates(tokens: list[Token], settings: SimilaritySettings) -> list[tuple[np.ndarray, int, int]]:
    """Runs of candidate hashes to winnow, each with its first token and its k-gram length: one run across
    the whole answer (the default), or with ``per_statement`` each statement's own k-grams (a short
    statement hashed whole), which survive moving statements or rewriting the loop around them."""
    k = settings.kgram_tokens
    if not settings.per_statement:
        return [(kgram_hashes(tokens, k), 0, k)]
    runs = []
    for start, end in statements(tokens):
        part = tokens[start:end]
        if len(part) >= k:
            runs.append((kgram_hashes(part, k), start, k))
        elif len(part) >= settings.min_statement_tokens:
            runs.append((kgram_hashes(part, len(part)), start, len(part)))
    return runs


def candidate_hashes(tokens: list[Token], settings: SimilaritySettings) -> set[int]:
    """Every hash that could be a fingerprint (before winnowing): the release cell's never count."""
    return {value for hashes, _, _ in _candidates(tokens, settings) for value in hashes.tolist()}


def fingerprints(tokens: list[Token], settings: SimilaritySettings) -> dict[int, list[tuple[int, int]]]:
    """Winnowed fingerprints -> the token ranges [first, last] each one covers."""
    found: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for hashes, start, length in _candidates(tokens, settings):
        if len(hashes) == 0:
            continue
        selected, positions = winnow(hashes, settings.window, remove_duplicates=False)
        for value, position in zip(selected.tolist(), positions.tolist()):
            where = (start + position, start + position + length - 1)
            if where not in found[value]:
                found[value].append(where)
    return dict(found)


@dataclass
class Cell:
    """One answer cell of the release: what every student was given, and what the instructor wrote."""
    notebook: str
    grade_id: str
    release_source: str
    known_names: frozenset[str]
    settings: SimilaritySettings
    skeleton: frozenset[str] = field(init=False)
    boilerplate: set[int] = field(init=False)

    def __post_init__(self) -> None:
        self.skeleton = frozenset(line.strip() for line in self.release_source.splitlines() if line.strip())
        release_tokens = normalise(self.release_source, known=self.known_names)
        # every k-gram of the release cell, not only the winnowed ones: none of it is the student's
        self.boilerplate = candidate_hashes(release_tokens, self.settings)

    @property
    def label(self) -> str:
        return f"{self.notebook}: {self.grade_id}"

    def answer_tokens(self, source: str) -> list[Token]:
        return normalise(source, self.skeleton, self.known_names)


@dataclass
class Answer:
    owner: str
    source: str
    hashes: frozenset[int]   # fingerprints that can count (not skeleton, and after pairs(): not common)
    size: int = 0            # fingerprints of the answer's own code, common ones included
    digest: str = ""         # of the normalised statements, in any order: equal digests are answers identical
                             # after normalising (the same statements, perhaps reordered)

    def __post_init__(self) -> None:
        self.size = self.size or len(self.hashes)


@dataclass
class CodePair:
    cell: Cell
    first: Answer
    second: Answer
    shared: int

    @property
    def identical(self) -> bool:
        return self.first.digest == self.second.digest

    @property
    def share_first(self) -> float:
        return 1.0 if self.identical else self.shared / self.first.size

    @property
    def share_second(self) -> float:
        return 1.0 if self.identical else self.shared / self.second.size

    @property
    def score(self) -> float:
        """Mean of the two shares: 1.0 for copies, lower when one answer holds much of its own.
        Common code counts in each answer's size but never as shared, so it dilutes the score."""
        return (self.share_first + self.share_second) / 2


class CellIndex:
    """Inverted index of one cell's fingerprints over every answer to it."""

    def __init__(self, cell: Cell) -> None:
        self.cell, self.settings = cell, cell.settings
        self.answers: list[Answer] = []
        self.skipped_short = 0
        self.ignored: set[int] = set(cell.boilerplate)
        # after pairs(): every pair sharing anything -> how much of each of the two answers is shared
        self.shared: dict[tuple[str, str], tuple[int, int]] = {}

    def add(self, owner: str, source: str) -> None:
        tokens = self.cell.answer_tokens(source)
        if len(tokens) < self.settings.min_tokens:
            self.skipped_short += 1
            return
        hashes = frozenset(fingerprints(tokens, self.settings)) - self.cell.boilerplate
        if hashes:
            # the same statements in any order are the same answer
            lines = [" ".join(t.text for t in tokens[a:b]) for a, b in statements(tokens)]
            lines = sorted(lines) if self.settings.any_order else lines
            digest = hashlib.blake2b("\0".join(lines).encode(), digest_size=16).hexdigest()
            self.answers.append(Answer(owner, source, hashes, digest=digest))

    def pairs(self) -> list[CodePair]:
        """Pairs that share at least one fingerprint that is neither skeleton nor common code."""
        postings: dict[int, list[int]] = defaultdict(list)
        for number, answer in enumerate(self.answers):
            for value in answer.hashes:
                postings[value].append(number)
        limit = max(self.settings.common_min, self.settings.common_share * len(self.answers))
        shared: dict[tuple[int, int], int] = defaultdict(int)
        for value, holders in postings.items():
            if len(holders) > limit:
                self.ignored.add(value)
                continue
            for pair in itertools.combinations(holders, 2):
                shared[pair] += 1
        self.answers = [Answer(a.owner, a.source, a.hashes - self.ignored, a.size, a.digest) for a in self.answers]
        found = []
        self.shared = {}
        for (i, j), count in shared.items():
            first, second = self.answers[i], self.answers[j]
            if first.hashes and second.hashes:
                # identical after normalising: all of it is shared, common code included
                pair = CodePair(self.cell, first, second, first.size if first.digest == second.digest else count)
                self.shared[(first.owner, second.owner)] = ((first.size, second.size) if pair.identical
                                                            else (count, count))
                if pair.score >= self.settings.min_code_score:
                    found.append(pair)
        return sorted(found, key=lambda p: (-p.score, p.first.owner, p.second.owner))

    def identical_groups(self) -> list[list[str]]:
        """Owners of answers identical after normalising, two or more per group, largest first. Groups
        larger than the common-code limit never show up as pairs, so the page lists them apart."""
        by_digest: dict[str, list[str]] = defaultdict(list)
        for answer in self.answers:
            by_digest[answer.digest].append(answer.owner)
        return sorted((owners for owners in by_digest.values() if len(owners) >= 2), key=lambda o: (-len(o), o))

    def matching_spans(self, pair: CodePair) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Character spans of each answer covered by fingerprints the two share (for highlighting)."""
        common = None if pair.identical else pair.first.hashes & pair.second.hashes
        return (self._spans(pair.first.source, common), self._spans(pair.second.source, common))

    def _spans(self, source: str, common: frozenset[int] | None) -> list[tuple[int, int]]:
        """Spans of the fingerprints in ``common`` (None: all of them, skeleton aside)."""
        tokens = self.cell.answer_tokens(source)
        spans = []
        for value, ranges in fingerprints(tokens, self.settings).items():
            if common is None and value not in self.cell.boilerplate or common is not None and value in common:
                spans += [(tokens[first].start, tokens[last].end) for first, last in ranges]
        return merge_spans(spans)


def merge_spans(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
