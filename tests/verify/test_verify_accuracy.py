"""Acceptance: verdict accuracy >= 98% on a labelled set of >= 200 math and >= 50 code traces.

The set is generated here, seeded: toy-world-style arithmetic chains (`<think>` steps, then
`\\boxed{N}`), fractions, equivalent forms, wrong answers, false-positive traps, unparseable and
truncated traces; code tasks `f(x) = a*x + b` with assert-tests and right, wrong, crashing,
looping and missing programs. Each label is what a careful human grader would say.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from fractions import Fraction

import polars as pl
import pytest

from tasks.verify.code import CodeConfig, verify_code
from tasks.verify.math import MathConfig, math_pool, verify_math
from tasks.verify.sandbox import SandboxConfig
from tasks.verify.statuses import STATUSES

SEED = 20250101


def _chain(rng: random.Random) -> tuple[str, int, str]:
    """A toy-world problem: single-digit operands, 2-3 operations with precedence, and its trace."""
    nums = [rng.randint(1, 9) for _ in range(rng.choice([3, 4]))]
    ops = [rng.choice("+-*") for _ in range(len(nums) - 1)]
    expr = "".join(f"{n}{o}" for n, o in zip(nums, ops)) + str(nums[-1])
    value = eval(expr)
    return expr, value, f"<think>\nCompute {expr}.\nCheck: the result is {value}.\n</think>\n"


def math_cases() -> list[tuple[str, str, bool, str]]:
    """(completion, reference, is_truncated, label)."""
    rng = random.Random(SEED)
    cases = []
    for i in range(150):
        _expr, value, think = _chain(rng)
        kind = i % 10
        if kind in (0, 1, 2):
            cases.append((think + f"\\boxed{{{value}}}", str(value), False, "correct"))
        elif kind == 3:
            form = rng.choice([f"{value}.0", f"\\frac{{{2 * value}}}{{2}}", f"{value * 3}/3", f"x = {value}"])
            cases.append((think + f"So the answer is \\boxed{{{form}}}.", str(value), False, "correct"))
        elif kind == 4:
            cases.append((think + f"The answer is ${value}$.", str(value), False, "correct"))
        elif kind in (5, 6):
            wrong = value + rng.choice([-3, -2, -1, 1, 2, 3, 10])
            cases.append((think + f"\\boxed{{{wrong}}}", str(value), False, "incorrect"))
        elif kind == 7:
            cases.append((think + f"\\boxed{{{-value if value else 1}}}", str(value), False, "incorrect"))
        elif kind == 8:
            cases.append((think + "I am not sure how to finish this.", str(value), False, "unverifiable"))
        else:
            cases.append((think[: rng.randint(10, len(think) - 12)], str(value), True, "unverifiable"))
    for _ in range(40):
        q = rng.randint(2, 9)
        p = rng.randint(1, q - 1)
        frac = Fraction(p, q)
        ref = f"{frac.numerator}/{frac.denominator}"
        think = f"<think>\nWe need {p} out of {q}.\n</think>\n"
        cases.append((think + f"\\boxed{{\\frac{{{p}}}{{{q}}}}}", ref, False, "correct"))
        if frac.denominator in (2, 4, 5, 8):
            cases.append((think + f"\\boxed{{{float(frac)}}}", ref, False, "correct"))
        else:
            cases.append((think + f"\\boxed{{\\frac{{{p * 2}}}{{{q * 2}}}}}", ref, False, "correct"))
        cases.append((think + f"\\boxed{{\\frac{{{q}}}{{{p}}}}}" if p != q else "\\boxed{0}", ref, False,
                      "incorrect" if Fraction(q, p) != frac else "correct"))
    traps = [
        ("\\boxed{\\pm 3}", "3", "incorrect"), ("\\boxed{3}", "\\pm 3", "incorrect"),
        ("\\boxed{3, -3}", "\\pm 3", "correct"), ("\\boxed{4!}", "4", "incorrect"),
        ("\\boxed{4!}", "24", "correct"), ("\\boxed{[1, 5]}", "(1, 5)", "incorrect"),
        ("\\boxed{(1, 5)}", "(1, 5)", "correct"), ("\\boxed{[0, 2)}", "[0, 2]", "incorrect"),
        ("\\boxed{7} or \\boxed{9}", "9", "incorrect"), ("\\boxed{9}. Final: \\boxed{9}", "9", "correct"),
        ("\\boxed{}", "9", "unverifiable"), ("no boxed answer and no number", "9", "unverifiable"),
        ("\\boxed{\\sqrt{16}}", "4", "correct"), ("\\boxed{2\\sqrt{2}}", "\\sqrt{8}", "correct"),
        ("\\boxed{1.4142}", "\\sqrt{2}", "incorrect"), ("\\boxed{50\\%}", "1/2", "correct"),
    ]
    for answer, ref, label in traps:
        cases.append(("<think>\nwork\n</think>\n" + answer, ref, False, label))
    return cases


def code_cases() -> list[tuple[str, str, str]]:
    """(completion, tests_json, label)."""
    rng = random.Random(SEED + 1)
    cases = []
    for i in range(52):
        a, b = rng.randint(2, 9), rng.randint(-5, 9)
        tests = json.dumps([f"assert f({x}) == {a * x + b}" for x in (0, 1, -2, 7)])
        think = f"<think>\nf multiplies by {a} and adds {b}.\n</think>\n"
        kind = i % 13
        body = {
            0: f"def f(x):\n    return {a} * x + {b}\n",
            1: f"f = lambda x: {a}*x + ({b})\n",
            2: f"def _scale(x):\n    return {a} * x\n\ndef f(x):\n    \"\"\"{a}x+{b}\"\"\"\n    return _scale(x) + {b}\n",
            3: f"def f(x):\n    return {a} * x + {b}\n\nprint(f(3))\n",
            4: f"def f(x):\n    return {a} * x + {b + 1}\n",
            5: f"def f(x):\n    return {a} + x + {b}\n",
            6: f"def f(x)\n    return {a} * x + {b}\n",
            7: "def f(x):\n    raise NotImplementedError\n",
            8: f"def f(x):\n    return {a} * x + {b} if x != 7 else 0\n",
            9: None,
            10: f"def g(x):\n    return {a} * x + {b}\n",
            11: f"import math\n\ndef f(x):\n    return int(math.fsum([{a} * x, {b}]))\n",
            12: "def f(x):\n    while True:\n        x += 1\n" if i < 26 else f"def f(x):\n    return {a}*x+{b}\n",
        }[kind]
        label = {0: "correct", 1: "correct", 2: "correct", 3: "correct", 4: "incorrect", 5: "incorrect",
                 6: "incorrect", 7: "incorrect", 8: "incorrect", 9: "unverifiable", 10: "incorrect",
                 11: "correct", 12: "timeout" if i < 26 else "correct"}[kind]
        if body is None:
            completion = think + f"The function is f(x) = {a}x + {b}."
        elif kind == 3:
            completion = think + f"```python\n# draft\ndef f(x):\n    return 0\n```\nFixed:\n```python\n{body}```\n```text\n{3 * a + b}\n```"
        else:
            completion = think + f"```python\n{body}```\n"
        cases.append((completion, tests, label))
    return cases


def _confusion(labels: list[str], predicted: list[str]) -> str:
    counts = Counter(zip(labels, predicted))
    width = max(len(s) for s in STATUSES) + 2
    lines = ["label \\ verdict".ljust(18) + "".join(s.rjust(width) for s in STATUSES)]
    for label in STATUSES:
        if any(lab == label for lab in labels):
            lines.append(label.ljust(18) + "".join(str(counts[(label, p)]).rjust(width) for p in STATUSES))
    return "\n".join(lines)


@pytest.fixture(scope="module")
def pool():
    with math_pool(MathConfig(), workers=2) as p:
        yield p


def test_math_verdict_accuracy(pool, capsys):
    cases = math_cases()
    assert len(cases) >= 200
    items = pl.DataFrame(
        [{"trace_id": f"m{i}", "prompt_id": "p", "completion_text": c, "is_truncated": t, "reference_answer": r}
         for i, (c, r, t, _) in enumerate(cases)]
    )
    out = verify_math(items, MathConfig(), pool)
    labels, predicted = [c[3] for c in cases], out["verdict_status"].to_list()
    accuracy = sum(lab == p for lab, p in zip(labels, predicted)) / len(cases)
    table = _confusion(labels, predicted)
    misses = [(cases[i][0][-60:], cases[i][1], labels[i], predicted[i])
              for i in range(len(cases)) if labels[i] != predicted[i]]
    with capsys.disabled():
        print(f"\nmath verdicts: {len(cases)} traces, accuracy {accuracy:.3f}\n{table}")
    assert accuracy >= 0.98, f"{table}\nmisses: {misses}"


def test_code_verdict_accuracy(capsys):
    cases = code_cases()
    assert len(cases) >= 50
    items = pl.DataFrame(
        [{"trace_id": f"c{i}", "prompt_id": "p", "completion_text": c, "tests_json": t} for i, (c, t, _) in enumerate(cases)]
    )
    out = verify_code(items, CodeConfig(sandbox=SandboxConfig(wall_s=3.0, cpu_s=2)), workers=2)
    labels, predicted = [c[2] for c in cases], out["verdict_status"].to_list()
    accuracy = sum(lab == p for lab, p in zip(labels, predicted)) / len(cases)
    table = _confusion(labels, predicted)
    misses = [(cases[i][0][-80:], labels[i], predicted[i], out["detail"][i][-200:])
              for i in range(len(cases)) if labels[i] != predicted[i]]
    with capsys.disabled():
        print(f"\ncode verdicts: {len(cases)} traces, accuracy {accuracy:.3f}\n{table}")
    assert accuracy >= 0.98, f"{table}\nmisses: {misses}"
