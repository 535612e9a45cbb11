"""Formula identity: the math content of a short, templated prompt, for dedup and decontamination.

Templated math prompts ("Compute 7 + 5 * 3 - 4." / "Work out 7+5*3-4.") are too short for
shingle Jaccard: a new instruction verb changes most shingles, while a problem differing in one
digit shares almost all of them. For a prompt that is one formula inside a short instruction,
the formula *is* the problem: two such prompts are duplicates when their formulas are equal,
and never when a number differs.

The formula is the sequence of math tokens: numbers, operator/bracket symbols, LaTeX commands,
and single letters next to one of those (variables such as the x of `f(x)` or `3*x`).

>>> formula_key("Compute 7 + 5 * 3 - 4.") == formula_key("Work out 7+5*3-4.")
True
>>> formula_key("Compute 7 + 5 * 3 - 5.") == formula_key("Compute 7 + 5 * 3 - 4.")
False
>>> formula_content("Write a Python function f(x) that returns 3*x + 2.")
'f(x)3*x+2'
>>> formula_key("John has 5 apples and buys 3 more at the store; how many apples does John have now?") is None
True
"""

from __future__ import annotations

import hashlib
import re

from tasks.common.text import normalize_text

MATH_SYMBOLS = frozenset("+-*/^=()[]{}<>|!%×÷·√≤≥≠∞∑∫∏")
OPERATORS = frozenset("+-*/^=×÷·√≤≥≠<>")
_TOK = re.compile(r"\d+(?:\.\d+)?|[^\W\d_]+|[^\w\s]")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def numbers(text: str) -> tuple[str, ...]:
    """The numbers of a text, sorted (a multiset): near-duplicates must agree on them.

    >>> numbers("Compute 12 + 3.5 - 12")
    ('12', '12', '3.5')
    """
    return tuple(sorted(_NUMBER.findall(normalize_text(text or "", casefold=True))))


def _split(text: str) -> tuple[list[str], list[str]]:
    toks = _TOK.findall(normalize_text(text or "", casefold=True))

    def is_mathy(t: str) -> bool:
        return t[0].isdigit() or t in MATH_SYMBOLS

    math: list[str] = []
    prose: list[str] = []
    for i, t in enumerate(toks):
        prev = toks[i - 1] if i > 0 else ""
        nxt = toks[i + 1] if i + 1 < len(toks) else ""
        if is_mathy(t) or t == "\\" and nxt[:1].isalpha():
            math.append(t)
        elif t[0].isalpha():
            if prev == "\\" or (len(t) == 1 and ((prev and is_mathy(prev)) or (nxt and is_mathy(nxt)))):
                math.append(t)
            else:
                prose.append(t)
    return math, prose


def formula_content(text: str) -> str:
    """The formula tokens of a text joined without spaces ('' when there are none)."""
    return "".join(_split(text)[0])


def formula_key(text: str, *, max_prose_words: int = 12, min_math_tokens: int = 3) -> str | None:
    """Hash of the formula of a short formula prompt; None when the text is not one.

    A text qualifies when it has at least `min_math_tokens` math tokens including an operator,
    and at most `max_prose_words` other words (the instruction around the formula).
    """
    math, prose = _split(text)
    if len(math) < min_math_tokens or len(prose) > max_prose_words or not any(t in OPERATORS for t in math):
        return None
    return hashlib.sha256("".join(math).encode()).hexdigest()[:32]
