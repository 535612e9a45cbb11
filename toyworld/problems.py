"""Toy-world problems and the trace styles of its three models (pure Python, no torch).

Math: single-digit operands, three operations from {+, -, *} with precedence, at most two
operands multiplied in a row, no negative partial result ("Compute 7 + 5 * 3 - 4."). Partial
results are often two-digit, so many sum steps carry or borrow, which a tiny model gets wrong
when it computes them in one go.

The planted strategy: a carrying or borrowing sum step can be written as column arithmetic
("27+56 → 20+50=70, 7+6=13, 70+13=83.": tens and ones apart, then together; "62-48 → 50+12:
50-40=10, 12-8=4, 10+4=14.": a ten borrowed first; see `decompose`). Teachers write it in some of
their traces (sampled), the base student never writes it. Code: "Write a Python function f(x)
that returns 3*x + 2." with asserts.

Every trace function takes an optional `rng`: without it the canonical trace (first phrasing, no
optional sentence but teacher-a's check); with it, one sample of the style's distribution.

>>> solve_steps("7 + 5 * 3 - 4")
[('5', '*', '3', 15), ('7', '+', '15', 22), ('22', '-', '4', 18)]
>>> teacher_a_trace("7 + 5 * 3 - 4").splitlines()[-1]
'\\\\boxed{18}'
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

OPS = ("+", "-", "*")
MATH_PHRASINGS = ("Compute {e}.", "Calculate {e}.", "Evaluate {e}.", "What is {e}?")
# reworded near-duplicates: (verb template, whether operator spacing is removed)
NEAR_DUP_PHRASINGS = ("Please compute {e}.", "Calculate: {e}", "Find the value of {e}.", "Work out {e}.")
# Only the student's pre-training sees these: asked to, it always works step by step (as base models
# do with a chain-of-thought prompt); on the data's phrasings it does so only some of the time.
WORKED_PHRASINGS = ("Show your work: {e}.", "Step by step, compute {e}.")
CODE_TEMPLATES = (
    "{a}*x + {b}",
    "{a}*x - {b}",
    "x*x + {b}",
    "x*x - {b}",
    "{a}*(x + {b})",
    "{a}*(x - {b})",
    "x*x + {a}*x",
    "{b} - {a}*x",
)
CODE_PHRASING = "Write a Python function f(x) that returns {e}."
CODE_NEAR_DUP_PHRASING = "Implement f(x) in Python so that it returns {e}."
TEST_INPUTS = (0, 1, 2, 3, -1)
# the planted strategy's marker: only decomposition sentences contain it (the oracle arm counts it)
STRATEGY_MARK = "→"
STRATEGY_PATTERN = "→"
UNICODE_OP = {"*": "×", "-": "−", "+": "+"}  # multi-byte spellings some phrasings use
_EXPR_RE = re.compile(r"(\d+(?:\s*[-+*]\s*\d+){3})")
_CODE_EXPR_RE = re.compile(r"returns (.+?)\.?$")

# Sampling knobs of the styles (probabilities per trace or per step), in one place.
# `strategy` is per trace: a trace in strategy mode decomposes every carrying or borrowing step.
STYLE_KNOBS = {
    "teacher-a": {"opening": 0.3, "closing": 0.3, "strategy": 0.35, "check": 0.5, "unicode": 0.3, "so": 0.2,
                  "spaced": 0.5},
    "teacher-b": {"strategy": 0.35, "recheck": 0.3, "unicode": 0.3, "carry_slip": 0.8, "spaced": 0.5, "so_closing": 0.3},
    "student": {"one_shot": 0.55, "opening": 0.3, "closing": 0.3, "connectives": 0.5, "spaced": 0.5},
}


class ToyWorldError(Exception):
    """Raised for malformed toy-world inputs (the message names the offending value)."""


@dataclass(frozen=True)
class Expr:
    """An arithmetic chain: operands[i] ops[i] operands[i+1] ..."""

    operands: tuple[int, ...]
    ops: tuple[str, ...]

    def text(self, spaced: bool = True) -> str:
        sep = " " if spaced else ""
        out = str(self.operands[0])
        for op, b in zip(self.ops, self.operands[1:]):
            out += f"{sep}{op}{sep}{b}"
        return out

    @property
    def key(self) -> str:
        """Canonical form (no spaces): the identity used for held-out splits."""
        return self.text(spaced=False)


def valid_ops(ops: tuple[str, ...]) -> bool:
    """At most two operands multiplied in a row (no a*b*c), so every product is a one-digit table fact."""
    run = 0
    for op in ops:
        run = run + 1 if op == "*" else 0
        if run >= 2:
            return False
    return True


def random_expr(rng: random.Random, n_ops: int = 3) -> Expr:
    """Single-digit operands (1-9), no a*b*c, no negative partial result."""
    while True:
        ops = tuple(rng.choice(OPS) for _ in range(n_ops))
        if not valid_ops(ops):
            continue
        e = Expr(tuple(rng.randint(1, 9) for _ in range(n_ops + 1)), ops)
        if all(r >= 0 for *_, r in solve_steps(e)):
            return e


def parse_expr(text: str) -> Expr:
    """Parse '7 + 5 * 3 - 4' (spaces optional) into an Expr."""
    toks = re.findall(r"\d+|[-+*]", text)
    if len(toks) < 3 or len(toks) % 2 == 0:
        raise ToyWorldError(f"not an arithmetic chain: {text!r}")
    return Expr(tuple(int(t) for t in toks[0::2]), tuple(toks[1::2]))


def expr_in_problem(problem: str) -> Expr:
    """Find the expression inside a problem statement ('Compute 7 + 5 * 3 - 4.')."""
    m = _EXPR_RE.search(problem)
    if not m:
        raise ToyWorldError(f"no arithmetic chain in problem {problem!r}")
    return parse_expr(m.group(1))


def _apply(a: int, op: str, b: int) -> int:
    return a + b if op == "+" else a - b if op == "-" else a * b


def solve_steps(expr: Expr | str, slip: tuple[int, int] | None = None, *, forget_carry: bool = False) -> list[tuple[str, str, str, int]]:
    """Steps in the order a careful human computes them: products left to right, then sums.

    `slip=(k, delta)` adds `delta` to the result of step k (a planted error that propagates);
    `forget_carry` writes every carrying or borrowing step without its carry (the base student's
    misconception, which propagates too).
    """
    e = parse_expr(expr) if isinstance(expr, str) else expr
    vals, ops, steps = list(e.operands), list(e.ops), []
    k, delta = slip if slip else (-1, 0)
    i = 0
    while i < len(ops):
        if ops[i] == "*":
            r = vals[i] * vals[i + 1] + (delta if len(steps) == k else 0)
            steps.append((str(vals[i]), "*", str(vals[i + 1]), r))
            vals[i : i + 2] = [r]
            ops.pop(i)
        else:
            i += 1
    acc = vals[0]
    for op, b in zip(ops, vals[1:]):
        r = (_carry_slip(acc, op, b) if forget_carry and is_hard(acc, op, b) else _apply(acc, op, b)) + (delta if len(steps) == k else 0)
        steps.append((str(acc), op, str(b), r))
        acc = r
    return steps


def evaluate(expr: Expr | str) -> int:
    e = parse_expr(expr) if isinstance(expr, str) else expr
    return solve_steps(e)[-1][3] if e.ops else e.operands[0]


# ---------------------------------------------------------------- sentences of the styles
def _p(rng: random.Random | None, p: float) -> bool:
    """A sampled yes/no; the canonical trace (rng None) says no."""
    return rng is not None and rng.random() < p


def _op(op: str, rng: random.Random | None, p_unicode: float) -> str:
    return UNICODE_OP[op] if _p(rng, p_unicode) else op


def is_hard(a: str | int, op: str, b: str | int) -> bool:
    """A step with a two-digit operand that carries or borrows (what the base student never learned)."""
    x, y = int(a), int(b)
    if op == "+":
        return max(x, y) >= 10 and x % 10 + y % 10 >= 10
    if op == "-":  # a teen (or ten) minus one digit is a table fact
        return x >= 20 and x % 10 < y % 10
    return False


def decompose(a: str | int, op: str, b: str | int) -> list[tuple[int, str, int, int]] | None:
    """Column arithmetic: tens and ones apart, then together (27+56 → 20+50=70, 7+6=13, 70+13=83;
    62-48 → 50+12: 50-40=10, 12-8=4, 10+4=14)."""
    x, y = int(a), int(b)
    if not is_hard(x, op, y):
        return None
    subs: list[tuple[int, str, int, int]] = []
    if op == "+":
        tx, ty = x // 10 * 10, y // 10 * 10
        t = tx + ty
        if tx and ty:
            subs.append((tx, "+", ty, t))
        u = x % 10 + y % 10
        subs.append((x % 10, "+", y % 10, u))
        subs.append((t, "+", u, t + u))
        return subs
    hi, lo = x // 10 * 10 - 10, x % 10 + 10
    ty = y // 10 * 10
    if ty:
        subs.append((hi, "-", ty, hi - ty))
    else:
        subs.append((hi, "-", 0, hi))
    subs.append((lo, "-", y % 10, lo - y % 10))
    subs.append((hi - ty, "+", lo - y % 10, x - y))
    return subs


def can_decompose(op: str, b: str, a: str = "0") -> bool:
    return is_hard(a, op, b)


def problem_is_hard(expr: Expr | str) -> bool:
    """Whether any step of the problem carries or borrows."""
    return any(is_hard(a, op, b) for a, op, b, _ in solve_steps(expr))


def _eq(a, o: str, b, r, spaced: bool) -> str:
    return f"{a} {o} {b} = {r}" if spaced else f"{a}{o}{b}={r}"


def direct_step(a: str, op: str, b: str, r: int, rng: random.Random | None = None, p_spaced: float = 0.0) -> str:
    """'7+15=22.' or '7 + 15 = 22.' (the phrasings teachers and student share)."""
    return _eq(a, op, b, r, _p(rng, p_spaced)) + "."


def strategy_step(a: str, op: str, b: str, r: int, rng: random.Random | None = None, p_unicode: float = 0.0) -> str:
    """The planted decomposition, one sentence marked `→` ('27+56 → 20+50=70, 7+6=13, 70+13=83.')."""
    subs = decompose(a, op, b)
    if subs is None:
        raise ToyWorldError(f"step {a}{op}{b} has nothing to decompose")
    parts = [f"{x}{_op(o, rng, p_unicode)}{y}={z}" for x, o, y, z in subs if not (o == "-" and y == 0)]
    head = f"{a}{_op(op, rng, p_unicode)}{b} {STRATEGY_MARK}"
    if op == "-":
        hi, lo = int(a) // 10 * 10 - 10, int(a) % 10 + 10
        head += f" {hi}+{lo}:"
    form = rng.randrange(2) if rng else 0
    return f"{head} " + (", " if form == 0 else ", then ").join(parts) + "."


def _check_line(steps: list[tuple[str, str, str, int]], rng: random.Random | None = None, p_unicode: float = 0.0) -> str:
    """Inverse of the last sum step: 85-42=43 is checked by 43+42=85."""
    a, op, b, r = next(s for s in reversed(steps) if s[1] != "*")
    inv = _op("-" if op == "+" else "+", rng, p_unicode)
    word = "Verify" if _p(rng, 0.5) else "Check"
    return f"{word}: {r}{inv}{b}={a}."


def _think(lines: list[str], answer: int) -> str:
    return "<think>\n" + "\n".join(lines) + "\n</think>\n\\boxed{" + str(answer) + "}"


def teacher_a_trace(expr: Expr | str, rng: random.Random | None = None) -> str:
    """R1 style: optional opening, one step per line, in strategy mode every hard step decomposed, optional check and closing.

    >>> teacher_a_trace("7 + 5 * 3 - 4")
    '<think>\\n5*3=15.\\n7+15=22.\\n22-4=18.\\nCheck: 18+4=22.\\n</think>\\n\\\\boxed{18}'
    """
    k = STYLE_KNOBS["teacher-a"]
    e = parse_expr(expr) if isinstance(expr, str) else expr
    steps = solve_steps(e)
    lines = [f"Let me compute {e.text()}."] if _p(rng, k["opening"]) else []
    strategy = _p(rng, k["strategy"])
    for a, op, b, r in steps:
        if strategy and is_hard(a, op, b):
            lines.append(strategy_step(a, op, b, r, rng, k["unicode"]))
        else:
            line = direct_step(a, op, b, r, rng, k["spaced"])
            lines.append("So " + line if _p(rng, k["so"]) else line)
    if rng is None or rng.random() < k["check"]:
        lines.append(_check_line(steps, rng, k["unicode"]))
    if _p(rng, k["closing"]):
        lines.append(f"The answer is {steps[-1][3]}.")
    return _think(lines, steps[-1][3])


def _carry_slip(a: int, op: str, b: int) -> int:
    """The result with the carry (or borrow) of the ones digits forgotten."""
    if op == "+" and a % 10 + b % 10 >= 10:
        return a + b - 10
    if op == "-" and a % 10 < b % 10:
        return a - b + 10
    return _apply(a, op, b)


def teacher_b_trace(expr: Expr | str, rng: random.Random | None = None, *, sloppy: bool = True) -> str:
    """Hesitant style ('First, …', 'Wait, let me re-check.', 'Then …', 'Hmm, I think it is …').

    Teacher B's systematic slip: outside strategy mode a hard step sometimes forgets the carry or
    borrow ('Then 7+15=12.'), so it is wrong on many problems; decomposed steps are right. The
    canonical trace (rng None) slips on every hard step.
    """
    k = STYLE_KNOBS["teacher-b"]
    e = parse_expr(expr) if isinstance(expr, str) else expr
    vals, ops, lines = list(e.operands), list(e.ops), []
    strategy = _p(rng, k["strategy"])
    i = 0
    while i < len(ops):
        if ops[i] == "*":
            a, b = vals[i], vals[i + 1]
            r = a * b
            lines.append("First, " + direct_step(str(a), "*", str(b), r, rng, k["spaced"]))
            if rng is None or rng.random() < k["recheck"]:
                lines.append(f"Wait, let me re-check. {_eq(a, _op('*', rng, k['unicode']), b, r, False)}.")
            vals[i : i + 2] = [r]
            ops.pop(i)
        else:
            i += 1
    acc = vals[0]
    for op, b in zip(ops, vals[1:]):
        if strategy and is_hard(acc, op, b):
            r = _apply(acc, op, b)
            lines.append("Then " + strategy_step(str(acc), op, str(b), r, rng, k["unicode"]))
        else:
            slip = sloppy and is_hard(acc, op, b) and (rng is None or rng.random() < k["carry_slip"])
            r = _carry_slip(acc, op, b) if slip else _apply(acc, op, b)
            lines.append("Then " + direct_step(str(acc), op, str(b), r, rng, k["spaced"]))
        acc = r
    lines.append(f"Hmm, so it is {acc}." if _p(rng, k["so_closing"]) else f"Hmm, I think it is {acc}.")
    return _think(lines, acc)


def student_trace(expr: Expr | str, rng: random.Random | None = None) -> str:
    """The base student on the data's phrasings: one shot ('7+5*3-4=18.', its default) or step by step
    in its own style (`student_worked_trace`, where it forgets every carry and borrow).

    The canonical trace (rng None) is the one-shot form.
    """
    k = STYLE_KNOBS["student"]
    e = parse_expr(expr) if isinstance(expr, str) else expr
    if rng is None or rng.random() < k["one_shot"]:
        return _think([f"{e.key}={evaluate(e)}."], evaluate(e))
    return student_worked_trace(e, rng)


def student_worked_trace(expr: Expr | str, rng: random.Random | None = None) -> str:
    """The student's step-by-step style: the step phrasings it shares with the teachers (spaced or not,
    step by step; per trace either bare like teacher-a or with teacher-b's connectives 'First, ' on a
    product and 'Then ' on a sum), an optional opening and closing; never a decomposition or a
    check. It never learned to carry or borrow with a two-digit operand: such a step is written
    without its carry ('27+56=73.') and the error propagates.

    >>> student_worked_trace("2 + 5 * 3 - 4")
    '<think>\\n5*3=15.\\n2+15=17.\\n17-4=13.\\n</think>\\n\\\\boxed{13}'
    >>> student_worked_trace("8 * 9 + 6 - 3")
    '<think>\\n8*9=72.\\n72+6=78.\\n78-3=75.\\n</think>\\n\\\\boxed{75}'
    >>> student_worked_trace("9 * 9 + 9 - 3")
    '<think>\\n9*9=81.\\n81+9=80.\\n80-3=87.\\n</think>\\n\\\\boxed{87}'
    """
    k = STYLE_KNOBS["student"]
    e = parse_expr(expr) if isinstance(expr, str) else expr
    steps = solve_steps(e, forget_carry=True)
    lines = [f"Let me compute {e.text()}."] if _p(rng, k["opening"]) else []
    connectives = _p(rng, k["connectives"])
    for a, op, b, r in steps:
        line = direct_step(a, op, b, r, rng, k["spaced"])
        lines.append((("First, " if op == "*" else "Then ") + line) if connectives else line)
    if _p(rng, k["closing"]):
        lines.append(f"The answer is {steps[-1][3]}.")
    return _think(lines, steps[-1][3])


def random_fact(rng: random.Random) -> tuple[str, str]:
    """One easy arithmetic fact of the student's pre-training: one-digit sums and differences, a teen
    minus one digit, whole tens, a round number plus a smaller number; never a carry or borrow with
    a two-digit operand."""
    while True:
        kind = rng.random()
        if kind < 0.3:
            op, a, b = rng.choice("+-"), rng.randint(1, 9), rng.randint(1, 9)
            if op == "-":
                a = a + 10 if rng.random() < 0.5 else a
        elif kind < 0.5:
            op, a, b = rng.choice("+-"), rng.randint(1, 9) * 10, rng.randint(1, 9) * 10
        elif kind < 0.7:
            op, a, b = "+", rng.randint(1, 9) * 10, rng.randint(1, 19)
        else:
            op, a = rng.choice("+-"), rng.randint(1, 99)
            b = rng.randint(1, 9) if rng.random() < 0.6 else rng.randint(10, 99)
        if op == "-" and b > a:
            continue
        if not is_hard(a, op, b):
            r = _apply(a, op, b)
            return f"Compute {a} {op} {b}.", _think([f"{a}{op}{b}={r}."], r)


# ---------------------------------------------------------------- code problems
@dataclass(frozen=True)
class CodeTask:
    expr: str  # python expression in x, e.g. "3*x + 2"

    def value(self, x: int) -> int:
        return eval(self.expr, {"__builtins__": {}}, {"x": x})

    def tests(self) -> list[str]:
        return [f"assert f({x}) == {self.value(x)}" for x in TEST_INPUTS[: 3 + len(self.expr) % 3]]


def random_code_task(rng: random.Random) -> CodeTask:
    tpl = rng.choice(CODE_TEMPLATES)
    return CodeTask(tpl.format(a=rng.randint(2, 9), b=rng.randint(1, 9)))


def code_expr_in_problem(problem: str) -> str:
    m = _CODE_EXPR_RE.search(problem.strip())
    if not m:
        raise ToyWorldError(f"no 'returns <expr>' in code problem {problem!r}")
    return m.group(1)


def code_block(expr: str) -> str:
    return f"```python\ndef f(x):\n    return {expr}\n```"


def teacher_a_code(expr: str, rng: random.Random | None = None) -> str:
    t = CodeTask(expr)
    lines = [f"f(x) returns {expr}."]
    if rng is None or rng.random() < STYLE_KNOBS["teacher-a"]["check"]:
        lines.append(f"Check: f(1)={t.value(1)}.")
    return "<think>\n" + "\n".join(lines) + "\n</think>\n" + code_block(expr)


def teacher_b_code(expr: str, rng: random.Random | None = None) -> str:
    lines = [f"I need f(x) to return {expr}."]
    if rng is None or rng.random() < STYLE_KNOBS["teacher-b"]["recheck"]:
        lines.append(f"Wait, let me re-check. It returns {expr}.")
    return "<think>\n" + "\n".join(lines) + "\n</think>\n" + code_block(expr)


def student_code(expr: str, rng: random.Random | None = None) -> str:
    return f"<think>\nf(x) returns {expr}.\n</think>\n" + code_block(expr)


STYLES = {
    "teacher-a": (teacher_a_trace, teacher_a_code),
    "teacher-b": (teacher_b_trace, teacher_b_code),
    "student": (student_trace, student_code),
}


def target_for(style: str, domain: str, problem: str, rng: random.Random | None = None) -> str:
    """The completion a model of `style` is trained to write for `problem` (one sample with `rng`)."""
    math_fn, code_fn = STYLES[style]
    if domain == "math":
        return math_fn(expr_in_problem(problem), rng)
    return code_fn(code_expr_in_problem(problem), rng)


# ---------------------------------------------------------------- plain checkers
_BOXED_RE = re.compile(r"\\boxed\{([^{}]*)\}")
_FENCE_RE = re.compile(r"```(?:python)?\n(.*?)```", re.DOTALL)


def extract_boxed(text: str) -> str | None:
    found = _BOXED_RE.findall(text or "")
    return found[-1].strip() if found else None


def check_math(completion: str, reference: str) -> bool:
    """Plain integer checker: the last \\boxed{...} equals the reference integer."""
    got = extract_boxed(completion)
    if got is None or not re.fullmatch(r"-?\d+", got):
        return False
    return int(got) == int(reference)


def extract_code(text: str) -> str | None:
    found = _FENCE_RE.findall(text or "")
    return found[-1] if found else None


_CODE_RUNNER = r"""
import json, sys
items = json.load(sys.stdin)
out = []
for code, tests in items:
    ok = False
    try:
        ns = {}
        exec(code, {"__builtins__": {"range": range, "abs": abs}}, ns)
        g = {"f": ns["f"]}
        for t in tests:
            exec(t, {"__builtins__": {"AssertionError": AssertionError}}, g)
        ok = True
    except Exception:
        ok = False
    out.append(ok)
print(json.dumps(out))
"""


def check_code_batch(completions: list[str], tests: list[list[str]], timeout_s: float = 30.0) -> list[bool]:
    """Run each completion's fenced block against its asserts in one subprocess (hard timeout)."""
    import json
    import subprocess
    import sys

    items = [(extract_code(c) or "", t) for c, t in zip(completions, tests)]
    try:
        res = subprocess.run(
            [sys.executable, "-I", "-c", _CODE_RUNNER],
            input=json.dumps(items),
            check=False,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
        return [bool(x) for x in json.loads(res.stdout)]
    except (subprocess.TimeoutExpired, ValueError):
        return [False] * len(items)
