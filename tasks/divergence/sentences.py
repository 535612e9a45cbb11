"""Sentences of a trace with character offsets, and token log-probs mapped onto them.

The unit of provenance tracing is a sentence (docs/methods.md#sentences). The splitter is ours:

* a sentence ends at a blank line, a newline, or `.` / `!` / `?` followed by whitespace
  (or the end of the text);
* never inside math: `$...$`, `$$...$$`, `\\(...\\)` and `\\[...\\]` are opaque;
* each sentence is stripped of surrounding whitespace; empty pieces are dropped;
* offsets are `[char_start, char_end)` into the text that was split (for a trace: the
  completion text, so they line up with the token offsets of any tokenizer).

Tokens map to sentences by character: a token belongs to the sentence holding its first
non-whitespace character (a token straddling a boundary goes to the sentence it starts in);
whitespace-only tokens belong to no sentence. Because only characters are compared, teacher and
student may use different tokenizers.

>>> [s.text for s in split_sentences("<think>\\n5*3=15.\\n7+15=22. Check: ok!\\n</think>\\n\\\\boxed{22}")]
['5*3=15.', '7+15=22.', 'Check: ok!']
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import ClassVar, NamedTuple

from tasks.common.text import THINK_CLOSE, THINK_OPEN

SPLITTER_VERSION = "sent-v1"

# opaque math spans, longest delimiters first
_MATH = re.compile(r"\$\$.*?\$\$|\$[^$\n]*?\$|\\\(.*?\\\)|\\\[.*?\\\]", re.DOTALL)
_BOUNDARY = re.compile(r"\n|[.!?](?=\s|$)")


class Sentence(NamedTuple):
    index: int
    char_start: int
    char_end: int
    text: str


@dataclass(frozen=True)
class SplitConfig:
    __pydantic_config__: ClassVar[dict] = {"extra": "forbid"}  # pydantic (a recipe): an unknown key is an error

    scope: str = field(
        default="reasoning",
        metadata={"help": "'reasoning': split only the text inside <think>...</think> (the whole completion "
                  "when there is no block); 'completion': split reasoning and final answer"},
    )
    min_chars: int = field(default=1, metadata={"help": "drop sentences shorter than this (after stripping)"})

    def __str__(self) -> str:
        return f"{SPLITTER_VERSION}:{self.scope}:{self.min_chars}"


def _region(text: str, scope: str) -> tuple[int, int]:
    if scope == "completion":
        return 0, len(text)
    if scope != "reasoning":
        raise ValueError(f"SplitConfig.scope must be 'reasoning' or 'completion', not {scope!r}")
    start = text.find(THINK_OPEN)
    end = text.find(THINK_CLOSE, max(start, 0))
    if start < 0 and end < 0:
        return 0, len(text)
    return (0 if start < 0 else start + len(THINK_OPEN)), (len(text) if end < 0 else end)


def split_sentences(text: str, cfg: SplitConfig = SplitConfig()) -> list[Sentence]:
    """Sentences of `text` (a completion) with offsets into `text`; see the module docstring."""
    lo, hi = _region(text, cfg.scope)
    masked = list(text[lo:hi])
    for m in _MATH.finditer(text, lo, hi):  # hide boundary characters inside math
        for i in range(m.start() - lo, m.end() - lo):
            if masked[i] in ".!?\n":
                masked[i] = "_"
    region = "".join(masked)
    cuts = [m.end() for m in _BOUNDARY.finditer(region)]
    out: list[Sentence] = []
    prev = 0
    for cut in [*cuts, len(region)]:
        a, b = prev, cut
        prev = cut
        while a < b and region[a].isspace():
            a += 1
        while b > a and region[b - 1].isspace():
            b -= 1
        if b - a >= max(cfg.min_chars, 1):
            out.append(Sentence(len(out), lo + a, lo + b, text[lo + a : lo + b]))
    return out


def token_anchors(text: str, char_starts: list[int]) -> list[int]:
    """Per token, the offset of its first non-whitespace character (-1 for whitespace-only tokens).

    A token spans from its char_start to the next token's char_start (the last one to the end).
    """
    n = len(char_starts)
    anchors = [-1] * n
    for i, start in enumerate(char_starts):
        end = char_starts[i + 1] if i + 1 < n else len(text)
        end = max(end, start + 1)
        for j in range(max(start, 0), min(end, len(text))):
            if not text[j].isspace():
                anchors[i] = j
                break
    return anchors


class SentenceScore(NamedTuple):
    sentence_index: int
    char_start: int
    char_end: int
    n_tokens: int
    mean_logprob: float | None  # None when no token starts inside the sentence


def score_sentences(
    text: str, sentences: list[Sentence], char_starts: list[int], logprobs: list[float]
) -> list[SentenceScore]:
    """Mean token log-prob per sentence (geometric-mean probability = exp of it), by character offsets."""
    if len(char_starts) != len(logprobs):
        raise ValueError(f"{len(char_starts)} char_starts but {len(logprobs)} logprobs")
    anchors = token_anchors(text, char_starts)
    sums = [0.0] * len(sentences)
    counts = [0] * len(sentences)
    starts = [s.char_start for s in sentences]
    k = 0
    # tokens are in text order: walk sentences and tokens together
    order = sorted(range(len(anchors)), key=lambda i: anchors[i])
    for i in order:
        a = anchors[i]
        if a < 0:
            continue
        while k + 1 < len(sentences) and starts[k + 1] <= a:
            k += 1
        if sentences and sentences[k].char_start <= a < sentences[k].char_end:
            lp = logprobs[i]
            if lp is None or not math.isfinite(lp):
                lp = -math.inf if lp is not None else math.nan
            sums[k] += lp
            counts[k] += 1
    return [
        SentenceScore(s.index, s.char_start, s.char_end, counts[s.index],
                      sums[s.index] / counts[s.index] if counts[s.index] else None)
        for s in sentences
    ]
