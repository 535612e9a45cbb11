"""Text helpers shared by every stage: normalisation and the reasoning/answer split."""

from __future__ import annotations

import re
import unicodedata
from typing import NamedTuple

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
_WS = re.compile(r"\s+")


def normalize_text(text: str, *, casefold: bool = False) -> str:
    """Unicode NFKC, whitespace collapsed, stripped; optionally case-folded.

    >>> normalize_text("  Compute\\u00a07 +  5 ")
    'Compute 7 + 5'
    """
    out = _WS.sub(" ", unicodedata.normalize("NFKC", text)).strip()
    return out.casefold() if casefold else out


class ThinkSplit(NamedTuple):
    reasoning: str | None  # text inside <think>...</think>; None when there is no reasoning block
    answer: str  # text after </think> (or the whole completion without a block)
    has_reasoning: bool
    is_closed: bool  # False when <think> was opened but never closed (truncated reasoning)


def split_think(completion: str) -> ThinkSplit:
    """Split a completion into its `<think>` reasoning and the final answer.

    A missing opening tag with a closing tag (chat templates that pre-fill `<think>`) counts as
    reasoning up to `</think>`. An unclosed block is all reasoning and no answer.

    >>> split_think("<think>\\n2+2=4.\\n</think>\\n\\\\boxed{4}")
    ThinkSplit(reasoning='2+2=4.', answer='\\\\boxed{4}', has_reasoning=True, is_closed=True)
    >>> split_think("just 4").answer
    'just 4'
    """
    text = completion or ""
    start = text.find(THINK_OPEN)
    end = text.find(THINK_CLOSE, max(start, 0))
    if start < 0 and end < 0:
        return ThinkSplit(None, text.strip(), False, True)
    body_start = 0 if start < 0 else start + len(THINK_OPEN)
    if end < 0:
        return ThinkSplit(text[body_start:].strip(), "", True, False)
    return ThinkSplit(text[body_start:end].strip(), text[end + len(THINK_CLOSE) :].strip(), True, True)


def join_think(reasoning: str | None, answer: str) -> str:
    """Inverse of `split_think` for chat-format exports: `<think>\\n...\\n</think>\\n\\nanswer`."""
    if reasoning is None:
        return answer
    return f"{THINK_OPEN}\n{reasoning}\n{THINK_CLOSE}\n\n{answer}"
