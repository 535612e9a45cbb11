"""The math verifier's worker side: runs inside `DeadlinePool` workers; imports only math-verify.

math-verify's own timeout is `signal.alarm`, which raises outside the main thread, so it is
disabled here (`parsing_timeout=None`, `timeout_seconds=None`); the pool's hard kill replaces it.

>>> check_math("\\\\boxed{0.5}", "\\\\frac{1}{2}", (6, 15, True, 8000))
('correct', 'answer_matches', 1.0, '\\\\frac{1}{2}', '')
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from functools import lru_cache

from tasks.verify.statuses import CORRECT, INCORRECT, UNVERIFIABLE

_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
_DOLLARS = re.compile(r"^\$+|\$+$")
DEFAULT_PARAMS = (6, 15, True, 8000)  # MathConfig().verify_params()

logging.getLogger("math_verify").setLevel(logging.ERROR)  # it warns once that its timeout is off: by design


@lru_cache(maxsize=4096)
def _parse_gold(reference: str) -> list:
    from math_verify import parse

    ref = _DOLLARS.sub("", reference.strip())
    parsed = parse(ref if _BOXED.search(ref) else "\\boxed{" + ref + "}", parsing_timeout=None)
    return parsed or parse(ref, parsing_timeout=None)


@lru_cache(maxsize=4096)
def _parse_answer(answer: str, max_chars: int) -> list:
    from math_verify import parse

    return parse(answer[-max_chars:], parsing_timeout=None)


def _answer_string(parsed: list) -> str:
    for item in parsed:
        if isinstance(item, str):
            return item
    return str(parsed[0])


def check_math(answer: str, reference: str, params: tuple) -> tuple:
    """Worker function: (status, reason, score, extracted_answer, detail) for one answer vs. reference."""
    from math_verify import verify

    float_rounding, numeric_precision, strict, max_chars = params
    gold = _parse_gold(reference)
    if not any(not isinstance(g, str) for g in gold):  # only the raw-string fallback: nothing to compare
        return (UNVERIFIABLE, "reference_unparseable", None, None, f"reference answer {reference[:80]!r} did not parse")
    pred = _parse_answer(answer, max_chars)
    if not pred:
        return (UNVERIFIABLE, "answer_unparseable", None, None, "no final answer could be extracted")
    extracted = _answer_string(pred)
    ok = verify(
        gold, pred, float_rounding=float_rounding, numeric_precision=numeric_precision, strict=strict, timeout_seconds=None
    )
    n_boxed = len(_BOXED.findall(answer))
    detail = f"{n_boxed} boxed answers (read as one set)" if n_boxed > 1 else ""
    if ok:
        return (CORRECT, "answer_matches", 1.0, extracted, detail)
    return (INCORRECT, "answer_differs", 0.0, extracted, detail)


def cluster_answers(answers: Sequence[str], params: tuple) -> tuple[list[int | None], list[str | None]]:
    """Worker function: greedy equivalence clusters of answers (label per answer, None if unparseable)."""
    from math_verify import verify

    float_rounding, numeric_precision, strict, max_chars = params
    reps: list[list] = []
    labels: list[int | None] = []
    extracted: list[str | None] = []
    for answer in answers:
        pred = _parse_answer(answer, max_chars) if answer else []
        if not pred:
            labels.append(None)
            extracted.append(None)
            continue
        extracted.append(_answer_string(pred))
        for label, rep in enumerate(reps):
            if verify(rep, pred, float_rounding=float_rounding, numeric_precision=numeric_precision,
                      strict=strict, timeout_seconds=None):
                labels.append(label)
                break
        else:
            labels.append(len(reps))
            reps.append(pred)
    return labels, extracted


def parse_answer(answer: str, params: tuple) -> str | None:
    """Worker function (one vote slot): the answer's extracted final answer, or None when none parses.

    It also compares the answer once with a plain number, so an answer that hangs sympy when compared
    (`9^{9^{9^{9}}}`) hangs here, in its own slot, and never in a pair with another trace's answer.
    """
    from math_verify import verify

    float_rounding, numeric_precision, strict, max_chars = params
    pred = _parse_answer(answer, max_chars) if answer else []
    if not pred:
        return None
    verify(_parse_gold("1"), pred, float_rounding=float_rounding, numeric_precision=numeric_precision, strict=strict,
           timeout_seconds=None)
    return _answer_string(pred)


def same_answer(first: str, second: str, params: tuple) -> bool:
    """Worker function (one pair of a vote): are two answers equivalent under math-verify?"""
    from math_verify import verify

    float_rounding, numeric_precision, strict, max_chars = params
    a, b = _parse_answer(first, max_chars), _parse_answer(second, max_chars)
    return bool(a and b and verify(a, b, float_rounding=float_rounding, numeric_precision=numeric_precision,
                                   strict=strict, timeout_seconds=None))


def warm_up() -> None:
    """Pay math-verify's first-call costs (lazy imports, ANTLR tables) in the zygote, not under a deadline."""
    params = DEFAULT_PARAMS
    check_math("\\boxed{\\frac{1}{2}}", "0.5", params)
    cluster_answers(["x = 2", "\\boxed{\\{1, 2\\}}", "[0, 1)"], params)
    same_answer("\\boxed{2}", "x = 2", params)
