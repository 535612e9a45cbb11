"""The judge's split of assert-tests: what goes to the candidate, what stays, and what the judge refuses."""

from __future__ import annotations

import ast
import time

import pytest

from tasks.verify.judge import JudgeError, Opaque, decode, judge_results, plan_tests, safe_eval


@pytest.mark.parametrize(
    ("test", "sent", "value", "passes"),
    [
        ("assert f(2) == 5", ["f(2)"], 5, True),
        ("assert f(2) == 5", ["f(2)"], 4, False),
        ("assert abs(f(1.0) - 0.5) < 1e-9", ["f(1.0)"], 0.5, True),
        ("assert math.isclose(f(2), 0.3)", ["f(2)"], 0.30000000000000004, True),
        ("assert sorted(f([3, 1])) == [1, 3]", ["f([3, 1])"], [3, 1], True),
        ("assert f('a') is None", ["f('a')"], None, True),
        ("assert not f(0)", ["f(0)"], False, True),
        ("assert isinstance(f(1), list) and len(f(1)) == 2", ["f(1)", "f(1)"], [1, 2], True),
        ("assert Sol().run(3)[0] == 'x'", ["Sol().run(3)[0]"], "x", True),
        ("assert f(1) == list(map(int, '12'))", ["f(1)"], [1, 2], True),
        ("assert type(f(1)) == int", ["f(1)"], True, False),  # bool is not int for the judge either
    ],
)
def test_split_and_judge(test, sent, value, passes):
    plan = plan_tests([test], "def f(x): ...\nclass Sol: ...\n")
    assert [s.src for s in plan.steps] == sent
    assert judge_results(plan, {i: ("v", value) for i in range(len(sent))}) == (passes,)


@pytest.mark.parametrize(
    "test",
    [
        "assert all(f(i) == i for i in range(3))",  # a loop over candidate calls
        "for i in range(3):\n    assert f(i) == i",
        "from fractions import Fraction\nassert f(1) == Fraction(5)",  # the expected side would be the candidate's
        "assert f(1) == next(iter([5]))",
        "a = [3, 1]\nf(a)\nassert a == [1, 3]",  # in-place change of a copy
        "def g(x):\n    return f(x)\nassert g(1) == 2",
    ],
)
def test_unsupported_forms_are_never_sent_and_never_pass(test):
    plan = plan_tests([test], "def f(x): ...\n")
    assert plan.tests == (None,) and plan.problems[0]
    assert judge_results(plan, {}) == (None,)


def test_missing_values_and_opaque_objects_fail():
    plan = plan_tests(["assert f(1) == 5", "assert f(2) != 5", "assert f(3)"], "def f(x): ...\n")
    assert judge_results(plan, {}) == (False, False, False)
    opaque = {i: ("v", Opaque("Evil")) for i in range(3)}
    assert judge_results(plan, opaque) == (False, False, False)
    assert judge_results(plan, {0: ("e", "SystemExit"), 1: ("v", 4), 2: ("v", 1)}) == (False, True, True)


@pytest.mark.parametrize(
    "expr",
    ["().__class__", "'{0.__class__}'.format(1)", "(1).__class__.__bases__", "open('/etc/passwd')",
     "__import__('os')", "getattr(1, 'real')", "(lambda: 1)()", "10 ** 10 ** 10", "'x' * 10 ** 12",
     "[x for x in range(10 ** 7) for y in range(10 ** 7) if False]", "(x for x in []).gi_frame",
     "type('X', (), {})", "'x'.center(10 ** 12)", "f'{1:>1000000000}'"],
)
def test_the_judge_evaluates_only_plain_values(expr):
    started = time.monotonic()
    with pytest.raises((JudgeError, TypeError, ValueError)):
        safe_eval(ast.parse(expr, mode="eval").body, {})
    assert time.monotonic() - started < 10


@pytest.mark.parametrize(
    "tree",
    [["S", [["i", format(k * ((1 << 61) - 1), "x")] for k in range(1, 5000)]], ["x"], ["i", 5], "nope",
     ["l", "notalist"]],
)
def test_malformed_or_crafted_values_are_refused(tree):
    with pytest.raises(ValueError):
        decode(tree)


def test_values_round_trip_exactly():
    import importlib.util
    import sys
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("runner", Path(__file__).resolve().parents[3] / "tasks/verify/sandbox_runner.py")
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)
    for value in [0, -7, 2**200, 0.1, float("inf"), 1 + 2j, "é\x00", b"\x00\xff", [1, (2, {3})], {"a": [None, True]},
                  frozenset({1})]:
        assert decode(runner.encode(value)) == value and type(decode(runner.encode(value))) is type(value)
    assert sys.modules.get("runner") is None
