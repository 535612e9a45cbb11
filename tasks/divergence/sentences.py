"""Sentences of a trace with character offsets, and token log-probs mapped onto them.

The unit of provenance tracing is a sentence (docs/methods.md#sentences). Two splitter versions; the version is
part of `str(SplitConfig)`, which is stored with every sentence score (`splitter` column):

`sent-v1` (the default; kept byte for byte so stored scores stay reproducible):

* a sentence ends at a blank line, a newline, or `.` / `!` / `?` followed by whitespace
  (or the end of the text);
* never inside math: `$...$`, `$$...$$`, `\\(...\\)` and `\\[...\\]` are opaque;

`sent-v2` (for real reasoning text, R1/QwQ style: markdown, LaTeX, lists, code, prices):

* a sentence ends at a newline, or at `.` / `!` / `?` / `…` (plus closing quotes, brackets or
  `**`) followed by whitespace or the end of the text, or at `。` / `！` / `？` (no space needed);
* opaque (never split inside): fenced code blocks (one unit, fences included), inline code,
  LaTeX environments `\\begin{X}...\\end{X}`, display math `$$...$$` / `\\[...\\]`,
  inline math `\\(...\\)` and `$...$` (pandoc's rule: the opening `$` has a non-space on
  its right, the closing one a non-space on its left and no digit after it, same line);
* a currency amount (`$5`, `$10.50`, `$1,200`, `$3k`) is text, not an opening `$`;
* a list marker or enumerator (`1.`, `2)`, `a.`, `iv.`, `-`, `*`) at the start of a sentence
  stays with it; so does a common abbreviation (e.g., i.e., etc., vs., Fig., approx., Dr., ...);
* an ellipsis followed by a lower-case word does not end a sentence;
* display math is part of the sentence around it when the line before it stops mid-sentence (no
  final punctuation, not even a colon) or the line after it goes on in lower case;
* an end-of-proof mark alone after a full stop (`$\\blacksquare$`, `∎`, `Q.E.D.`) stays with it.

Both: each sentence is stripped of surrounding whitespace; empty pieces are dropped; offsets are
`[char_start, char_end)` into the text that was split (for a trace: the completion text, so they
line up with the token offsets of any tokenizer).

Tokens map to sentences by character: a token belongs to the sentence holding its first
non-whitespace character (a token straddling a boundary goes to the sentence it starts in);
whitespace-only tokens belong to no sentence. Because only characters are compared, teacher and
student may use different tokenizers.

>>> [s.text for s in split_sentences("<think>\\n5*3=15.\\n7+15=22. Check: ok!\\n</think>\\n\\\\boxed{22}")]
['5*3=15.', '7+15=22.', 'Check: ok!']
>>> v2 = SplitConfig(version="sent-v2", scope="completion")
>>> [s.text for s in split_sentences("1. Pay $5. Then $10, e.g. for $x$. Done", v2)]
['1. Pay $5.', 'Then $10, e.g. for $x$.', 'Done']
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import ClassVar, NamedTuple

from tasks.common.text import THINK_CLOSE, THINK_OPEN

SPLITTER_VERSION = "sent-v1"  # the default version
SPLITTER_VERSIONS = ("sent-v1", "sent-v2")

# sent-v1: opaque math spans, longest delimiters first
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
    version: str = field(
        default=SPLITTER_VERSION,
        metadata={"help": "'sent-v1' (newline / . ! ? outside math) or 'sent-v2' (also lists, LaTeX environments, "
                  "abbreviations, code fences, currency); part of the stored `splitter` string"},
    )

    def __post_init__(self) -> None:
        if self.version not in SPLITTER_VERSIONS:
            raise ValueError(f"SplitConfig.version must be one of {SPLITTER_VERSIONS}, not {self.version!r}")

    def __str__(self) -> str:
        return f"{self.version}:{self.scope}:{self.min_chars}"


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
    if cfg.version == "sent-v2":
        region, cuts = _cuts_v2(text[lo:hi])
    else:
        region, cuts = _cuts_v1(text, lo, hi)
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


def _cuts_v1(text: str, lo: int, hi: int) -> tuple[str, list[int]]:
    masked = list(text[lo:hi])
    for m in _MATH.finditer(text, lo, hi):  # hide boundary characters inside math
        for i in range(m.start() - lo, m.end() - lo):
            if masked[i] in ".!?\n":
                masked[i] = "_"
    region = "".join(masked)
    return region, [m.end() for m in _BOUNDARY.finditer(region)]


# -- sent-v2 ----------------------------------------------------------------------------------------
_OPAQUE = "\x00"  # stands in for every character of a protected span while looking for boundaries
_FENCE_OPEN = re.compile(r"^[ \t]*(`{3,}|~{3,})[^\n]*$", re.MULTILINE)
_ENV = re.compile(r"\\begin\{([^{}\n]+)\}.*?\\end\{\1\}", re.DOTALL)
_DISPLAY = re.compile(r"\$\$.+?\$\$|\\\[.+?\\\]|\\\(.+?\\\)", re.DOTALL)
_INLINE_CODE = re.compile(r"`[^`\n]+`")
_CURRENCY = re.compile(r"\$(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[kKMB]|bn)?(?![\w$^_{}\\])")
_END = re.compile(r"(?:\.{3,}|[.!?…]+)[\"'”’)\]*]*(?=\s|$)|[。！？]+[”’」』）]*|\n")
# a sentence that is only a list marker / enumerator so far: `1.`, `2)`, `(a)`, `iv.`, `- 3.`, `Step 2.` ...
_ENUMERATOR = re.compile(
    r"[#>*+•\-\s(]*(?:(?:step|case|part|method|approach|option|example|problem|question|claim|lemma)\s+)?"
    r"(?:\d{1,3}|[A-Za-z]|[ivxlcdm]{2,6}|[IVXLCDM]{2,6})[.)]",
    re.ASCII | re.IGNORECASE,
)
# an end-of-proof mark alone after a full stop stays with its sentence: ∎, □, $\blacksquare$, $\square$, Q.E.D. (masked math is opaque)
_QED = re.compile(r"[ \t]*(?:∎|□|■|Q\.E\.D\.|QED|\$\\(?:blacksquare|square|Box|qed)\$|\\qed)[ \t]*(?=\n|$)")
_INITIALISM = re.compile(r"(?:[a-z]\.)+[a-z]")
_MATHY = re.compile(r"[\\=^_{}<>+]")
# lower-cased, without the final dot
ABBREVIATIONS = frozenset(
    ["e.g", "i.e", "etc", "vs", "cf", "approx", "fig", "figs", "eq", "eqs", "resp", "dr", "mr", "mrs", "ms", "prof",
     "st", "jr", "sr", "al", "viz", "esp", "incl", "ch", "vol", "pp", "thm", "lem"]
)


def _protect(region: str) -> list[tuple[int, int]]:
    """Spans of `region` that no boundary may fall inside (code, LaTeX environments, math)."""
    spans: list[tuple[int, int]] = []
    # fenced code blocks first: nothing inside them is math or a boundary; an unclosed fence runs to the end
    pos = 0
    while (m := _FENCE_OPEN.search(region, pos)) is not None:
        fence = m.group(1)
        close = re.compile(r"^[ \t]*" + re.escape(fence[0]) + "{" + str(len(fence)) + r",}[ \t]*$", re.MULTILINE)
        c = close.search(region, m.end() + 1) if m.end() < len(region) else None
        end = c.end() if c else len(region)
        spans.append((m.start(), end))
        pos = end
    taken = _mask_from(len(region), spans)

    def free(a: int, b: int) -> bool:
        return not any(taken[a:b])

    def add(a: int, b: int) -> None:
        spans.append((a, b))
        for i in range(a, b):
            taken[i] = True

    for pattern in (_ENV, _DISPLAY, _INLINE_CODE):
        for m in pattern.finditer(region):
            if free(m.start(), m.end()):
                add(m.start(), m.end())
    # inline $...$, left to right, skipping currency and escaped dollars
    i = 0
    while (i := region.find("$", i)) >= 0:
        if taken[i] or (i > 0 and region[i - 1] == "\\"):
            i += 1
            continue
        close = _closing_dollar(region, i, taken)
        cur = _CURRENCY.match(region, i)
        if cur is not None and (close is None or not _MATHY.search(region, i + 1, close)):
            i = cur.end()  # a price: `$5`, `$10.50` (but `$15 \cdot 13 = 195$` is math)
            continue
        if close is None:
            i += 1
            continue
        add(i, close + 1)
        i = close + 1
    return spans


def _closing_dollar(region: str, i: int, taken: list[bool]) -> int | None:
    """Index of the `$` closing inline math opened at `i` (pandoc's rule, same line), or None."""
    if i + 1 >= len(region) or region[i + 1].isspace() or region[i + 1] == "$":
        return None
    j = i + 1
    while j < len(region) and region[j] != "\n":
        if region[j] == "$" and not taken[j] and region[j - 1] != "\\":
            if not region[j - 1].isspace() and not (j + 1 < len(region) and region[j + 1].isdigit()):
                return j
            return None  # `$5 and $10`, `$3k. So $x$`: a dollar that cannot close; the first one opens nothing
        j += 1
    return None


def _mask_from(n: int, spans: list[tuple[int, int]]) -> list[bool]:
    taken = [False] * n
    for a, b in spans:
        for i in range(a, b):
            taken[i] = True
    return taken


def _cuts_v2(region: str) -> tuple[str, list[int]]:
    chars = list(region)
    spans = _protect(region)
    for a, b in spans:
        for i in range(a, b):
            chars[i] = _OPAQUE
    masked = "".join(chars)
    ends = list(_END.finditer(masked))
    ends += [_Cut(b) for a, b in spans if _math_ends_sentence(region, a, b)]
    cuts: list[int] = []
    last = 0
    for m in sorted(ends, key=lambda m: m.end()):
        if isinstance(m, _Cut):
            keep = m.end() > last
        elif m.group() == "\n":
            keep = not (_leads_into_display(region, masked, last, m.start()) or _continues_display(masked, m.start()))
        else:
            keep = _ends_sentence(masked, m.start(), m.end(), last) and not _QED.match(region, m.end())
        if not keep:
            continue
        cuts.append(m.end())
        last = m.end()
    return masked, cuts


class _Cut(NamedTuple):
    """A cut found apart from the punctuation scan (math that ends with its own full stop)."""

    at: int

    def end(self) -> int:
        return self.at


def _math_ends_sentence(region: str, a: int, b: int) -> bool:
    """`$x = 5.$ Then ...`: math whose last character before the closing delimiter is . ! or ?,
    followed on the same line by a capitalised word."""
    if region[a] not in "$\\" or region.startswith("\\begin", a):
        return False
    close = 2 if region[b - 2 : b] in ("$$", "\\]", "\\)") else 1
    if region[b - close - 1 : b - close] not in (".", "!", "?"):
        return False
    rest = region[b:]
    nxt = rest.lstrip(" \t")
    return len(nxt) < len(rest) and nxt[:1].isupper()


def _leads_into_display(region: str, masked: str, last_cut: int, newline: int) -> bool:
    """A line that stops mid-sentence (no final punctuation, not even a colon) followed by display
    math / an environment: one sentence ("the sum is\\n$$x_1 + x_2 = 5.$$"), as in written
    mathematics. "We get:\\n\\[...\\]" keeps its newline boundary."""
    line = masked[last_cut:newline].rstrip()
    if not line.strip() or line.rstrip("\"'”’)]*")[-1:] in (".", "!", "?", "…", ":", ";"):
        return False
    nxt = region[newline + 1 :].lstrip(" \t")
    return nxt.startswith(("$$", "\\[", "\\begin{")) and masked[len(region) - len(nxt)] == _OPAQUE


def _continues_display(masked: str, newline: int) -> bool:
    """Display math ending a line, and the next line goes on in lower case ("\\[2q^2 = p^2,\\]\\nso p is even")."""
    before = masked[:newline].rstrip(" \t")
    after = masked[newline + 1 :].lstrip(" \t")
    return before.endswith(_OPAQUE) and after[:1].islower()


def _ends_sentence(masked: str, start: int, end: int, last_cut: int) -> bool:
    """Whether the punctuation at masked[start:end] (followed by whitespace or the end) ends a sentence."""
    punct = masked[start:end].rstrip("\"'”’)]*")
    next_lower = masked[end:].lstrip(" \t")[:1].islower()
    if punct.startswith("..") or punct == "…":  # an ellipsis goes on when the next word is lower case
        return not next_lower
    if punct != ".":  # `(why?) because`: a bracketed question inside a sentence
        return not (next_lower and masked[start:end].endswith(")"))
    word_start = start
    while word_start > last_cut and not masked[word_start - 1].isspace():
        word_start -= 1
    word = masked[word_start:start].lstrip("([{\"'“‘*_").lower()
    if word in ABBREVIATIONS:  # `etc.` still ends a sentence before a capitalised word: "..., etc. But"
        return word == "etc" and masked[end:].lstrip(" \t")[:1].isupper()
    if _INITIALISM.fullmatch(word) and next_lower:  # "the U.S. dollar", "at 5 p.m. on"
        return False
    if _ENUMERATOR.fullmatch(masked[last_cut : start + 1]):
        return False
    # an inline enumeration after a colon: "two cases: 1. n is even. 2. n is odd."
    before = masked[last_cut:word_start].rstrip()
    return not (before.endswith(":") and _ENUMERATOR.fullmatch(masked[word_start : start + 1]))


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
