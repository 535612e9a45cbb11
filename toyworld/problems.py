"""Toy-world problems and the trace styles of its three models (pure Python, no torch).

Math: single-digit operands, three operations from {+, -, *} with precedence, at most two
operands multiplied in a row (so every reasoning step is a one-digit product or a short sum).
Code: "Write a Python function f(x) that returns 3*x + 2." with assert tests.

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
# Only the student's pre-training sees these: it can work step by step when asked to (as base models
# do with a chain-of-thought prompt) but answers the data's phrasings in one shot. Distillation
# teaches it to reason by default.
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
_EXPR_RE = re.compile(r"(\d(?:\s*[-+*]\s*\d){3})")
_CODE_EXPR_RE = re.compile(r"returns (.+?)\.?$")


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
    """At most two operands multiplied in a row (no a*b*c), so no step needs a 3-digit product."""
    run = 0
    for op in ops:
        run = run + 1 if op == "*" else 0
        if run >= 2:
            return False
    return True


def random_expr(rng: random.Random, n_ops: int = 3) -> Expr:
    while True:
        ops = tuple(rng.choice(OPS) for _ in range(n_ops))
        if valid_ops(ops):
            return Expr(tuple(rng.randint(1, 9) for _ in range(n_ops + 1)), ops)


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


def solve_steps(expr: Expr | str, slip: tuple[int, int] | None = None) -> list[tuple[str, str, str, int]]:
    """Steps in the order a careful human computes them: products left to right, then sums.

    `slip=(k, delta)` adds `delta` to the result of step k (a planted error that propagates).
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
        r = _apply(acc, op, b) + (delta if len(steps) == k else 0)
        steps.append((str(acc), op, str(b), r))
        acc = r
    return steps


def evaluate(expr: Expr | str) -> int:
    e = parse_expr(expr) if isinstance(expr, str) else expr
    return solve_steps(e)[-1][3] if e.ops else e.operands[0]


def _check_line(steps: list[tuple[str, str, str, int]]) -> str:
    """Inverse of the last sum step: 22-4=18 is checked by 18+4=22."""
    a, op, b, r = next(s for s in reversed(steps) if s[1] != "*")
    inv = "-" if op == "+" else "+"
    return f"Check: {r}{inv}{b}={a}."


def teacher_a_trace(expr: Expr | str) -> str:
    """R1 style: one step per line, a checking sentence, then the boxed answer."""
    steps = solve_steps(expr)
    lines = [f"{a}{op}{b}={r}." for a, op, b, r in steps] + [_check_line(steps)]
    return "<think>\n" + "\n".join(lines) + "\n</think>\n\\boxed{" + str(steps[-1][3]) + "}"


def teacher_b_trace(expr: Expr | str, *, sloppy_negatives: bool = True) -> str:
    """Hesitant style: 'Wait, let me re-check.' after every product.

    Teacher B has a systematic slip: a sum step with a negative result loses its sign
    (`3-72=69.`), so it is wrong on every problem that goes below zero; the error propagates.
    """
    e = parse_expr(expr) if isinstance(expr, str) else expr
    vals, ops, lines = list(e.operands), list(e.ops), []
    i = 0
    while i < len(ops):
        if ops[i] == "*":
            r = vals[i] * vals[i + 1]
            lines.append(f"First, {vals[i]}*{vals[i + 1]}={r}.")
            lines.append(f"Wait, let me re-check. {vals[i]}*{vals[i + 1]}={r}.")
            vals[i : i + 2] = [r]
            ops.pop(i)
        else:
            i += 1
    acc = vals[0]
    for op, b in zip(ops, vals[1:]):
        r = _apply(acc, op, b)
        if sloppy_negatives and r < 0:
            r = -r
        lines.append(f"Then {acc}{op}{b}={r}.")
        acc = r
    lines.append(f"Hmm, I think it is {acc}.")
    return "<think>\n" + "\n".join(lines) + "\n</think>\n\\boxed{" + str(acc) + "}"


def student_trace(expr: Expr | str) -> str:
    """Terse style: restate the expression with its value, no intermediate steps."""
    e = parse_expr(expr) if isinstance(expr, str) else expr
    return "<think>\n" + e.key + "=" + str(evaluate(e)) + ".\n</think>\n\\boxed{" + str(evaluate(e)) + "}"


def student_worked_trace(expr: Expr | str) -> str:
    """What the student writes when explicitly asked to show its work: the steps, no check, the value.

    >>> student_worked_trace("7 + 5 * 3 - 4")
    '<think>\\n5*3=15.\\n7+15=22.\\n22-4=18.\\n</think>\\n\\\\boxed{18}'
    """
    steps = solve_steps(expr)
    lines = [f"{a}{op}{b}={r}." for a, op, b, r in steps]
    return "<think>\n" + "\n".join(lines) + "\n</think>\n\\boxed{" + str(steps[-1][3]) + "}"


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


def teacher_a_code(expr: str) -> str:
    t = CodeTask(expr)
    return f"<think>\nf(x) returns {expr}.\nCheck: f(1)={t.value(1)}.\n</think>\n" + code_block(expr)


def teacher_b_code(expr: str) -> str:
    return (
        f"<think>\nI need f(x) to return {expr}.\nWait, let me re-check. It returns {expr}.\n</think>\n"
        + code_block(expr)
    )


def student_code(expr: str) -> str:
    return "<think>\nDirect.\n</think>\n" + code_block(expr)


STYLES = {
    "teacher-a": (teacher_a_trace, teacher_a_code),
    "teacher-b": (teacher_b_trace, teacher_b_code),
    "student": (student_trace, student_code),
}


def target_for(style: str, domain: str, problem: str) -> str:
    """The completion a model of `style` is trained to write for `problem`."""
    math_fn, code_fn = STYLES[style]
    if domain == "math":
        return math_fn(expr_in_problem(problem))
    return code_fn(code_expr_in_problem(problem))


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
