"""A synthetic class for the similarity report: independent answers in different styles, and planted copies.

Four answer cells (an RNN forward pass, a softmax loss, a beam-search step, a moving average). Each
answer is built from steps; every step has several independent ways of writing it, and every honest
student picks their own way for each step, their own loop style (``for`` or ``while``), their own
order of the independent set-up statements, their own names, comments, extra checks and habits (``.t()``
or ``.T``, ``torch.`` or ``th.``, a trailing ``.float()`` on a value ...). Six copiers
each take two answers of one honest student and hide the copy at one level:

* ``verbatim``: the same answer, other comments;
* ``renamed``: other local names;
* ``reordered``: renamed, and the independent statements in another order;
* ``loop``: renamed, and the loop rewritten (``for`` <-> ``while``);
* ``dead code``: renamed, with statements that compute nothing used;
* ``helper``: renamed, with the loop body moved into a helper function.

The rest of each copier's answers is their own. Everything is a pure function of the seed.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from coursekit.similarity.code import Cell, CellIndex
from coursekit.similarity.overall import StudentPair, student_pairs
from coursekit.similarity.settings import DEFAULTS, SimilaritySettings

LEVELS = ("verbatim", "renamed", "reordered", "loop", "dead code", "helper")
NAMES = {  # placeholder -> the names students use for it
    "T": ["T", "steps", "n_steps", "seq_len", "length"], "h": ["h", "state", "hidden", "h_t", "cur"],
    "hs": ["hs", "states", "outputs", "all_h", "history"], "Wh": ["Wh", "W_hT", "rec", "U", "whh"],
    "t": ["t", "step", "k", "i", "pos"], "xt": ["xt", "x_t", "inp", "frame", "u"],
    "a": ["a", "pre", "z", "act_in", "lin"], "out": ["out", "result", "stacked", "res", "ys"],
    "N": ["N", "n", "batch", "rows", "count"], "total": ["total", "loss", "acc", "running", "s"],
    "m": ["m", "mx", "shift", "row_max", "peak"], "i": ["i", "r", "idx", "j", "row_i"],
    "row": ["row", "shifted", "z_i", "logits", "v"], "lse": ["lse", "log_norm", "norm", "logz", "c"],
    "B": ["B", "n_beams", "beams", "nb", "width"], "V": ["V", "vocab", "n_words", "nv", "size"],
    "cands": ["cands", "candidates", "pool", "options", "found"], "tot": ["tot", "cand", "sc", "joint", "sum_"],
    "top": ["top", "best", "vals", "tops", "hi"], "idx": ["idx", "ids", "words", "where", "arg"],
    "s": ["s", "score", "val", "p", "q"], "w": ["w", "word", "tok", "wid", "o"],
    "avg": ["avg", "ema", "mean", "smooth", "cur_avg"], "beta": ["beta", "keep", "decay", "one_minus", "b1"],
    "helper": ["step_fn", "one_step", "update", "advance", "cell"], "loss": ["loss", "val", "res", "mean_loss", "l"],
}


@dataclass
class Task:
    grade_id: str
    signature: str
    prelude: list[list[str]]     # independent statements (any order); each: its alternatives
    count: str                   # how many times the loop runs
    counter: str                 # the loop variable's placeholder
    state: str                   # what the loop body updates (passed through a helper)
    body: list[list[str]]        # in order
    epilogue: list[list[str]]

    @property
    def release(self) -> str:
        return f"{self.signature}\n    # YOUR CODE HERE\n    raise NotImplementedError()\n"


TASKS = [
    Task("rnn_forward", "def rnn_forward(x, W_h, W_x, b, h0):",
         [["{T} = x.shape[1]", "{T} = x.size(1)", "_, {T}, _ = x.shape"],
          ["{h} = h0", "{h} = h0.clone()", "{h} = h0 + 0"],
          ["{hs} = []", "{hs} = list()"],
          ["{Wh} = W_h.T", "{Wh} = W_h.t()", "{Wh} = W_h.transpose(0, 1)"]],
         "{T}", "t", "h",
         [["{xt} = x[:, {t}]", "{xt} = x[:, {t}, :]", "{xt} = x.select(1, {t})"],
          ["{a} = {h} @ {Wh} + {xt} @ W_x.T + b", "{a} = torch.matmul({h}, {Wh}) + torch.matmul({xt}, W_x.T) + b",
           "{a} = b + {xt} @ W_x.t() + {h} @ {Wh}", "{a} = torch.addmm(b, {h}, {Wh}) + {xt} @ W_x.T"],
          ["{h} = torch.tanh({a})", "{h} = {a}.tanh()"],
          ["{hs}.append({h})", "{hs} = {hs} + [{h}]", "{hs} += [{h}]"]],
         [["return torch.stack({hs}, dim=1), {h}", "{out} = torch.stack({hs}, 1)\nreturn {out}, {h}",
           "return torch.stack({hs}).transpose(0, 1), {h}"]]),
    Task("softmax_loss", "def softmax_loss(scores, y):",
         [["{N} = scores.shape[0]", "{N} = len(scores)", "{N} = scores.size(0)"],
          ["{total} = 0.0", "{total} = torch.tensor(0.0)", "{total} = 0"],
          ["{m} = scores.max(dim=1, keepdim=True).values", "{m} = torch.max(scores, 1, keepdim=True)[0]",
           "{m} = scores.amax(1, keepdim=True)"]],
         "{N}", "i", "total",
         [["{row} = scores[{i}] - {m}[{i}]", "{row} = scores[{i}, :] - {m}[{i}, 0]",
           "{row} = torch.sub(scores[{i}], {m}[{i}])"],
          ["{lse} = torch.log(torch.exp({row}).sum())", "{lse} = {row}.exp().sum().log()",
           "{lse} = torch.logsumexp({row}, dim=0)"],
          ["{total} = {total} + {lse} - {row}[y[{i}]]", "{total} += {lse} - {row}[y[{i}]]",
           "{total} -= {row}[y[{i}]] - {lse}"]],
         [["return {total} / {N}", "{loss} = {total} / float({N})\nreturn {loss}",
           "return torch.as_tensor({total}) / {N}"]]),
    Task("beam_step", "def beam_step(log_probs, scores, k):",
         [["{B}, {V} = log_probs.shape", "{B} = log_probs.shape[0]\n{V} = log_probs.shape[1]",
           "{B}, {V} = log_probs.size()"],
          ["{cands} = []", "{cands} = list()"]],
         "{B}", "t", "cands",
         [["{tot} = scores[{t}] + log_probs[{t}]", "{tot} = log_probs[{t}] + scores[{t}]",
           "{tot} = torch.add(log_probs[{t}], scores[{t}])"],
          ["{top}, {idx} = torch.topk({tot}, k)", "{top}, {idx} = {tot}.topk(k)",
           "{top}, {idx} = {tot}.sort(descending=True)\n{top}, {idx} = {top}[:k], {idx}[:k]"],
          ["{cands}.extend(({s}.item(), {t}, {w}.item()) for {s}, {w} in zip({top}, {idx}))",
           "for {s}, {w} in zip({top}.tolist(), {idx}.tolist()):\n    {cands}.append(({s}, {t}, {w}))",
           "{cands} += [(float({s}), {t}, int({w})) for {s}, {w} in zip({top}, {idx})]"]],
         [["{cands}.sort(key=lambda c: -c[0])\nreturn {cands}[:k]", "return sorted({cands}, reverse=True)[:k]",
           "return heapq.nlargest(k, {cands})"]]),
    Task("moving_average", "def moving_average(xs, alpha):",
         [["{out} = []", "{out} = list()"],
          ["{avg} = xs[0]", "{avg} = float(xs[0])", "{avg} = xs[0] * 1.0"],
          ["{beta} = 1 - alpha", "{beta} = 1.0 - alpha", "{beta} = -alpha + 1"]],
         "len(xs)", "i", "avg",
         [["{avg} = alpha * xs[{i}] + {beta} * {avg}", "{avg} = {beta} * {avg} + alpha * xs[{i}]",
           "{avg} += alpha * (xs[{i}] - {avg})"],
          ["{out}.append({avg})", "{out} += [{avg}]", "{out}.insert(len({out}), {avg})"]],
         [["return {out}", "return list({out})", "return np.array({out})"]]),
]
EXTRAS = ["assert len(str({n})) >= 0", "print('step', {n}, len(str(locals())))", "debug_level = {n} * 2 - {n}",
          "limit = max({n}, 1) + min({n}, 2)", "checks = [{n}, {n} + 1, 'ok']"]
DEAD = ["unused = [0] * 3", "if False:\n    print('never')", "spare = {cache}\nspare = None", "tmp = len(str(k)) * 0"]
TWEAKS = [  # habits a student has or has not, each applied to all of their code
    (r"\.T\b", ".t()"), (r"dim=(\d)", r"\1"), (r"\btorch\.", "th."), (r" \+ b\b", " + b.view(1, -1)"),
    (r"(?<![.\w])float\(", "1.0 * ("), (r"\blen\((\w+)\)", r"\1.__len__()"), (r"\.item\(\)", ".tolist()"),
    (r"\bxs\[", "list(xs)["), (r"\bscores\[", "scores.detach()["), (r"\blog_probs\[", "log_probs.detach()["),
    (r"\.sum\(\)", ".sum(0)"), (r"\.shape\[(\d)\]", r".size(\1)"), (r"\balpha\b", "float(alpha)"),
    (r"\bk\)", "int(k))"), (r"\.append\(", ".insert(len(str()) - 1 + 1, "), (r"\bx\[", "x.float()["),
    (r"\bW_x\b", "W_x.float()"), (r"\bh0\b", "h0.detach()"), (r"\by\[", "y.long()["),
    (r"\bscores\b(?!\[)", "scores.float()"),
]
SUFFIXES = [".clone()", ".contiguous()", " * 1", ".float()", ".detach()", " + 0.0", ".squeeze()", ".double()"]
COMMENTS = ["# my own implementation", "# loop over time", "# compute step by step", "# TODO tidy up", ""]


@dataclass
class Style:
    """How one student writes one answer."""
    choices: list[int]          # alternative per prelude, body and epilogue step
    order: list[int]            # order of the prelude steps
    loop: str                   # "for" or "while"
    names: dict[str, str]
    comment: str
    extras: list[str] = field(default_factory=list)
    tweaks: list[int] = field(default_factory=list)
    suffixes: list[int] = field(default_factory=list)  # per step: -1, or the SUFFIXES its value ends with
    dead: bool = False
    helper: bool = False


def _style(task: Task, rng: random.Random) -> Style:
    steps = task.prelude + task.body + task.epilogue
    order = list(range(len(task.prelude)))
    rng.shuffle(order)
    return Style([rng.randrange(len(s)) for s in steps], order, rng.choice(["for", "while"]),
                 {key: rng.choice(values) for key, values in NAMES.items()}, rng.choice(COMMENTS),
                 [e.replace("{n}", str(rng.randrange(100))) for e in rng.sample(EXTRAS, rng.randrange(3))],
                 [n for n in range(len(TWEAKS)) if rng.random() < 0.5],
                 [rng.randrange(len(SUFFIXES)) if rng.random() < 0.4 else -1 for _ in steps])


def _lines(text: str, indent: str, names: dict[str, str]) -> list[str]:
    return [indent + line for line in text.format(**names).split("\n")]


def _with_suffix(text: str, suffix: int) -> str:
    """A one-line assignment whose value ends with SUFFIXES[suffix] (a habit of the writer)."""
    if suffix < 0 or "\n" in text or " = " not in text or text.startswith(("return", "for")):
        return text
    target, value = text.split(" = ", 1)
    return f"{target} = ({value}){SUFFIXES[suffix]}"


def write_answer(task: Task, style: Style) -> str:
    """The answer's source for this style."""
    n = style.names
    chosen = [_with_suffix(step[c], s) for step, c, s in
              zip(task.prelude + task.body + task.epilogue, style.choices, style.suffixes)]
    prelude, body = chosen[:len(task.prelude)], chosen[len(task.prelude):len(task.prelude) + len(task.body)]
    epilogue = chosen[len(task.prelude) + len(task.body):]
    lines = [task.signature] + ([f"    {style.comment}"] if style.comment else [])
    for i in style.order:
        lines += _lines(prelude[i], "    ", n)
    lines += [f"    {e}" for e in style.extras]
    if style.dead:
        lines += _lines("\n".join(DEAD).replace("{cache}", "{{}}"), "    ", n)
    inner = "        "
    if style.helper:
        lines.append(f"    def {n['helper']}({n[task.state]}, {n[task.counter]}):")
        for step in body:
            lines += _lines(step, inner, n)
        lines.append(f"{inner}return {n[task.state]}")
        body = ["{%s} = {helper}({%s}, {%s})" % (task.state, task.state, task.counter)]
    count = task.count.format(**n)
    if style.loop == "for":
        lines.append(f"    for {n[task.counter]} in range({count}):")
    else:
        lines += [f"    {n[task.counter]} = 0", f"    while {n[task.counter]} < {count}:"]
    for step in body:
        lines += _lines(step, inner, n)
    if style.loop == "while":
        lines.append(f"{inner}{n[task.counter]} += 1")
    for step in epilogue:
        lines += _lines(step, "    ", n)
    text = "\n".join(lines[1:])
    for number in style.tweaks:
        text = re.sub(*TWEAKS[number], text)
    return lines[0] + "\n" + text + "\n"


def disguise(style: Style, level: str, rng: random.Random) -> Style:
    """A copy of ``style`` hidden at ``level`` (every level past verbatim also renames)."""
    copied = Style(list(style.choices), list(style.order), style.loop, dict(style.names),
                   rng.choice([c for c in COMMENTS if c != style.comment]), list(style.extras), list(style.tweaks),
                   list(style.suffixes))
    if level == "verbatim":
        return copied
    copied.names = {key: rng.choice([v for v in values if v != style.names[key]]) for key, values in NAMES.items()}
    if level == "reordered":
        while copied.order == style.order and len(style.order) > 1:
            rng.shuffle(copied.order)
    elif level == "loop":
        copied.loop = "while" if style.loop == "for" else "for"
    elif level == "dead code":
        copied.dead = True
    elif level == "helper":
        copied.helper = True
    return copied


@dataclass
class SyntheticClass:
    cells: list[Cell]
    answers: dict[str, dict[str, str]]         # student -> grade_id -> source
    copies: dict[str, tuple[str, str]]         # level -> (copier, the student copied)

    def indexes(self) -> list[CellIndex]:
        indexes = []
        for cell in self.cells:
            index = CellIndex(cell)
            for student, answers in self.answers.items():
                if cell.grade_id in answers:
                    index.add(student, answers[cell.grade_id])
            indexes.append(index)
        return indexes


def build_class(seed: int = 0, honest: int = 24, settings: SimilaritySettings = DEFAULTS,
                copied_answers: int = 3) -> SyntheticClass:
    """``honest`` independent students, and one copier per level who copies ``copied_answers`` answers."""
    rng = random.Random(seed)
    cells = [Cell("synthetic", t.grade_id, t.release, frozenset({"torch", "np", "heapq"}), settings) for t in TASKS]
    styles = {f"s{n:02d}": {t.grade_id: _style(t, rng) for t in TASKS} for n in range(honest)}
    copies = {}
    for number, level in enumerate(LEVELS):
        copier, source = f"copy{number}", f"s{number * 3:02d}"
        mine = {t.grade_id: _style(t, rng) for t in TASKS}
        for task in rng.sample(TASKS, copied_answers):
            mine[task.grade_id] = disguise(styles[source][task.grade_id], level, rng)
        styles[copier] = mine
        copies[level] = (copier, source)
    tasks = {t.grade_id: t for t in TASKS}
    answers = {student: {gid: write_answer(tasks[gid], style) for gid, style in per.items()}
               for student, per in styles.items()}
    return SyntheticClass(cells, answers, copies)


def ranked_pairs(synthetic: SyntheticClass) -> tuple[list[CellIndex], dict, list[StudentPair]]:
    """The class through the similarity index: (indexes, cell label -> listed pairs, student pairs)."""
    indexes = synthetic.indexes()
    cell_pairs = {index.cell.label: index.pairs() for index in indexes}
    return indexes, cell_pairs, student_pairs(indexes, cell_pairs)
