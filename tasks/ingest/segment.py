"""Reasoning segmentation: where an imported completion's reasoning ends and its answer begins.

Conventions known out of the box, tried in the order they appear in the text:
`<think>…</think>` (DeepSeek-R1, QwQ, Qwen3; also a completion that starts inside the block, i.e.
only `</think>`) and `<|begin_of_thought|>…<|end_of_thought|>` followed by
`<|begin_of_solution|>…<|end_of_solution|>` (OpenThoughts, Bespoke-Stratos). A configured marker
pair is tried before them. A separate reasoning field (`reasoning_content` of OpenAI-compatible
reasoning APIs) wins over markers. The answer is what follows the reasoning, with a wrapping
`<|begin_of_solution|>…<|end_of_solution|>` or `<answer>…</answer>` removed. An opening marker
without its closing one is a truncated trace.

The stored completion is the text as written when `tasks.common.text.split_think` reads it the same
way; otherwise it is rewritten to the `<think>` convention every later stage reads, and the char
spans that moved are kept so token offsets can follow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from tasks.common.text import THINK_CLOSE, THINK_OPEN, split_think


@dataclass(frozen=True)
class Markers:
    """An opening/closing pair around the reasoning, and optionally a pair around the answer."""

    open: str
    close: str
    answer_open: str | None = None
    answer_close: str | None = None


THINK = Markers(THINK_OPEN, THINK_CLOSE)
THOUGHT = Markers("<|begin_of_thought|>", "<|end_of_thought|>", "<|begin_of_solution|>", "<|end_of_solution|>")
CONVENTIONS: tuple[Markers, ...] = (THINK, THOUGHT)
ANSWER_WRAPPERS: tuple[tuple[str, str], ...] = (
    ("<|begin_of_solution|>", "<|end_of_solution|>"),  # OpenThoughts / Bespoke-Stratos
    ("<answer>", "</answer>"),  # AM-DeepSeek-R1-Distilled
)


class Segmented(NamedTuple):
    reasoning: str | None  # None when the completion has no reasoning part
    answer: str
    is_truncated: bool  # an opening marker (reasoning or answer) without its closing one
    completion: str  # the completion to store (verbatim, or rewritten to <think>…</think>)
    spans: tuple[tuple[int, int, int], ...] | None  # (start, end, new start) of moved text; None = verbatim
    regions: tuple[tuple[int, int] | None, tuple[int, int]] = (None, (0, 0))  # (reasoning, answer) spans in the input


def parse_markers(spec: str) -> Markers:
    """`OPEN,CLOSE` (or `OPEN,CLOSE,ANSWER_OPEN,ANSWER_CLOSE`) → Markers.

    >>> parse_markers("<reasoning>,</reasoning>").close
    '</reasoning>'
    """
    parts = [p.strip() for p in spec.split(",")]
    if len(parts) not in (2, 4) or not all(parts):
        raise ValueError(f"markers {spec!r}: expected OPEN,CLOSE or OPEN,CLOSE,ANSWER_OPEN,ANSWER_CLOSE")
    return Markers(*parts)


def _stripped(text: str, start: int, end: int) -> tuple[int, int]:
    """The [start, end) span of text[start:end] without surrounding whitespace."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _first_convention(text: str, conventions: tuple[Markers, ...]) -> tuple[Markers, int, int] | None:
    """(markers, open position or -1, close position or -1) of the convention that appears first."""
    best = None
    for markers in conventions:
        start = text.find(markers.open)
        end = text.find(markers.close, 0 if start < 0 else start + len(markers.open))
        if start < 0 and end < 0:
            continue
        where = start if start >= 0 else end
        if best is None or where < best[0]:
            best = (where, markers, start, end)
    return None if best is None else best[1:]


def _answer_span(text: str, start: int, end: int, markers: Markers | None) -> tuple[int, int, bool]:
    """The answer inside text[start:end], unwrapped from a solution/answer marker pair: (start, end, truncated)."""
    start, end = _stripped(text, start, end)
    wrappers = ([(markers.answer_open, markers.answer_close)] if markers and markers.answer_open else []) + list(ANSWER_WRAPPERS)
    for opener, closer in wrappers:
        if not text.startswith(opener, start):
            continue
        body = start + len(opener)
        close = text.find(closer, body)
        if close < 0:
            return (*_stripped(text, body, end), True)
        if text[close + len(closer) : end].strip():
            return start, end, False  # text after the closing marker: keep the answer whole
        return (*_stripped(text, body, close), False)
    return start, end, False


def segment(completion: str, *, markers: Markers | None = None, reasoning: str | None = None) -> Segmented:
    """Split a completion into reasoning and answer.

    >>> s = segment("<|begin_of_thought|>\\n2+2=4\\n<|end_of_thought|>\\n\\n<|begin_of_solution|>\\n4\\n<|end_of_solution|>")
    >>> (s.reasoning, s.answer, s.is_truncated, s.completion)
    ('2+2=4', '4', False, '<think>\\n2+2=4\\n</think>\\n\\n4')
    >>> segment("2+2=4</think>\\nSo 4.")[:3]
    ('2+2=4', 'So 4.', False)
    >>> segment("<think>\\n2+2 is").is_truncated
    True
    """
    text = completion or ""
    if reasoning is not None and reasoning.strip():
        a_start, a_end, truncated = _answer_span(text, 0, len(text), None)
        return _result(text, reasoning.strip(), None, (a_start, a_end), truncated)
    conventions = ((markers,) if markers else ()) + CONVENTIONS
    found = _first_convention(text, conventions)
    if found is None:
        a_start, a_end, truncated = _answer_span(text, 0, len(text), None)
        return _result(text, None, None, (a_start, a_end), truncated)
    conv, start, end = found
    body = 0 if start < 0 else start + len(conv.open)
    if end < 0:
        return _result(text, None, _stripped(text, body, len(text)), (len(text), len(text)), True)
    a_start, a_end, truncated = _answer_span(text, end + len(conv.close), len(text), conv)
    return _result(text, None, _stripped(text, body, end), (a_start, a_end), truncated)


def _result(
    text: str, given_reasoning: str | None, r_span: tuple[int, int] | None, a_span: tuple[int, int], truncated: bool
) -> Segmented:
    reasoning = given_reasoning if given_reasoning is not None else (text[r_span[0] : r_span[1]] if r_span else None)
    answer = text[a_span[0] : a_span[1]]
    regions = (r_span, a_span)
    unclosed_reasoning = truncated and r_span is not None and a_span[0] == len(text) and not answer
    as_read = split_think(text)
    if (as_read.reasoning, as_read.answer, as_read.is_closed) == (reasoning, answer, not unclosed_reasoning):
        return Segmented(reasoning, answer, truncated, text, None, regions)
    if reasoning is None:
        return Segmented(None, answer, truncated, answer, ((a_span[0], a_span[1], 0),), regions)
    head = f"{THINK_OPEN}\n"
    if unclosed_reasoning:
        stored = head + reasoning
        spans = ((r_span[0], r_span[1], len(head)),) if r_span else ()
        return Segmented(reasoning, "", True, stored, spans, regions)
    stored = f"{head}{reasoning}\n{THINK_CLOSE}\n\n{answer}"
    answer_at = len(stored) - len(answer)
    spans = (((r_span[0], r_span[1], len(head)),) if r_span else ()) + ((a_span[0], a_span[1], answer_at),)
    return Segmented(reasoning, answer, truncated, stored, spans, regions)


def spans_between(source: Segmented, target: Segmented) -> tuple[tuple[int, int, int], ...] | None:
    """Spans that carry offsets in the text `source` was read from to the text `target` was read
    from, when both hold the same reasoning and answer (None when they do not).

    >>> a, b = segment("x</think>y"), segment("<think>\\nx\\n</think>\\n\\ny")
    >>> spans_between(a, b)
    ((0, 1, 8), (9, 10, 20))
    """
    if (source.reasoning, source.answer) != (target.reasoning, target.answer):
        return None
    (s_r, s_a), (t_r, t_a) = source.regions, target.regions
    if (s_r is None) != (t_r is None):
        return None
    return ((s_r[0], s_r[1], t_r[0]),) * (s_r is not None) + ((s_a[0], s_a[1], t_a[0]),)


def remap_offsets(starts: list[int], spans: tuple[tuple[int, int, int], ...] | None, new_length: int) -> list[int]:
    """Char offsets into the original completion → offsets into the stored one (monotone).

    An offset inside a moved span moves with it; one between spans (a marker) goes to where the next
    span starts, or to the end.

    >>> remap_offsets([0, 5, 9], ((5, 9, 2),), 6)
    [2, 2, 6]
    """
    if spans is None:
        return list(starts)
    out = []
    for pos in starts:
        mapped = new_length
        for start, end, new_start in spans:
            if pos < start:
                mapped = new_start
                break
            if pos < end:
                mapped = new_start + (pos - start)
                break
        out.append(mapped)
    return out
