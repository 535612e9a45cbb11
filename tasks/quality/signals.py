"""Per-trace quality signals (docs/methods.md#quality-signals), returned as a long table (trace_id, metric, score).

Metrics (all floats; booleans are 0/1):
  completion_tokens            the generator's token count, else the count of word/symbol tokens
  is_truncated                 finish_reason 'length', the stored flag, or an unclosed <think>
  has_reasoning                a <think> block is present
  has_final_answer             math: a \\boxed{...} after the reasoning; code: a fenced code block
                               or a `def`; other domains: a non-empty answer
  repeated_4gram_fraction      share of word 4-gram occurrences that repeat an earlier one
  repeated_paragraph_count     paragraphs (blank-line separated, else lines) equal to an earlier one
  hesitation_per_1k            `wait, alternatively, check, but, maybe, might, perhaps` per 1k tokens
  paragraph_count              blank-line separated blocks of the reasoning (else of the completion)
  script_mixing_ratio          share of letters outside the dominant script (Greek is ignored: math)
  length_ratio_to_prompt_median  completion_tokens / the median over all traces of the same prompt
                               (a group metric: `length_ratios`)

>>> df = pl.DataFrame({"trace_id": ["t1"], "completion_text": ["<think>\\nwait, 2+2=4.\\n</think>\\n\\\\boxed{4}"]})
>>> s = trace_signals(df)
>>> s.filter(pl.col("metric") == "has_final_answer")["score"][0]
1.0
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field

import polars as pl

from tasks.common.ids import config_fingerprint
from tasks.common.text import split_think
from tasks.dedup.minhash import tokens

SCORER = "potstill.quality"
SCORER_VERSION = "1"
HESITATION_MARKERS = ("wait", "alternatively", "check", "but", "maybe", "might", "perhaps")
TRACE_METRICS = (
    "completion_tokens",
    "is_truncated",
    "has_reasoning",
    "has_final_answer",
    "repeated_4gram_fraction",
    "repeated_paragraph_count",
    "hesitation_per_1k",
    "paragraph_count",
    "script_mixing_ratio",
)
GROUP_METRICS = ("length_ratio_to_prompt_median",)
SCORES_SCHEMA = {"trace_id": pl.String, "metric": pl.String, "score": pl.Float64}

_BOXED = re.compile(r"\\boxed\s*\{")
_FENCE = re.compile(r"```")
_DEF = re.compile(r"^\s*def\s+\w+\s*\(", re.MULTILINE)
_PARA = re.compile(r"\n\s*\n")
_WORD = re.compile(r"[^\W\d_]+")
_IGNORED_SCRIPTS = frozenset({"GREEK"})  # alpha, pi, theta in math text are not language mixing


class QualityError(ValueError):
    """A quality input or config is invalid; the message names the column or field."""


@dataclass(frozen=True)
class SignalConfig:
    """Knobs of the per-trace signals."""

    ngram_size: int = field(default=4, metadata={"help": "n of the repeated n-gram fraction (issue: 4-grams)"})
    hesitation_markers: tuple[str, ...] = field(
        default=HESITATION_MARKERS, metadata={"help": "words counted per 1k tokens (docs/methods.md#quality-signals, MiP-Overthinking)"}
    )

    def __str__(self) -> str:
        return f"signals-{config_fingerprint(self)}"


def repeated_ngram_fraction(toks: list[str], n: int) -> float:
    """Share of n-gram occurrences that repeat an earlier occurrence (0 for texts shorter than n).

    >>> repeated_ngram_fraction("a b c d a b c d".split(), 4)
    0.2
    """
    if len(toks) < n:
        return 0.0
    grams = Counter(tuple(toks[i : i + n]) for i in range(len(toks) - n + 1))
    total = sum(grams.values())
    return (total - len(grams)) / total


def paragraphs(text: str) -> list[str]:
    """Blank-line separated blocks; a text without blank lines is split into its lines."""
    blocks = [b.strip() for b in _PARA.split(text or "") if b.strip()]
    if len(blocks) <= 1:
        blocks = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return blocks


def repeated_paragraph_count(text: str) -> int:
    """Paragraphs (see `paragraphs`) identical, after whitespace/case folding, to an earlier one.

    >>> repeated_paragraph_count("x=1.\\ny=2.\\nx=1.\\nx=1.")
    2
    """
    seen: set[str] = set()
    repeats = 0
    for p in paragraphs(text):
        key = " ".join(p.casefold().split())
        if key in seen:
            repeats += 1
        seen.add(key)
    return repeats


def script_mixing_ratio(text: str) -> float:
    """Share of letters outside the text's dominant script (0 for one script or no letters).

    >>> script_mixing_ratio("the answer 是 4")
    0.1
    """
    scripts: Counter[str] = Counter()
    for word in _WORD.findall(text or ""):
        for ch in word:
            try:
                script = unicodedata.name(ch).split(" ")[0]
            except ValueError:
                continue
            if script in ("CJK", "HIRAGANA", "KATAKANA"):
                script = "CJK"
            if script not in _IGNORED_SCRIPTS:
                scripts[script] += 1
    total = sum(scripts.values())
    if total == 0:
        return 0.0
    return (total - scripts.most_common(1)[0][1]) / total


def has_final_answer(answer: str, domain: str | None) -> bool:
    """Whether the answer part holds a final answer of the domain's form."""
    if not answer.strip():
        return False
    if domain == "math":
        return bool(_BOXED.search(answer))
    if domain == "code":
        return bool(_FENCE.search(answer) or _DEF.search(answer))
    return True


def _signals_one(
    completion: str, n_tokens: int | None, is_truncated: bool | None, finish_reason: str | None, domain: str | None, cfg: SignalConfig
) -> dict[str, float]:
    split = split_think(completion or "")
    toks = tokens(completion or "")
    n = int(n_tokens) if n_tokens is not None else len(toks)
    truncated = bool(is_truncated) or finish_reason == "length" or (split.has_reasoning and not split.is_closed)
    markers = set(cfg.hesitation_markers)
    n_markers = sum(1 for t in toks if t in markers)
    body = split.reasoning if split.reasoning else (completion or "")
    return {
        "completion_tokens": float(n),
        "is_truncated": float(truncated),
        "has_reasoning": float(split.has_reasoning),
        "has_final_answer": float(has_final_answer(split.answer, domain)),
        "repeated_4gram_fraction": repeated_ngram_fraction(toks, cfg.ngram_size),
        "repeated_paragraph_count": float(repeated_paragraph_count(completion or "")),
        "hesitation_per_1k": 1000.0 * n_markers / max(n, 1),
        "paragraph_count": float(len([b for b in _PARA.split(body) if b.strip()])),
        "script_mixing_ratio": script_mixing_ratio(completion or ""),
    }


def trace_signals(traces: pl.DataFrame, cfg: SignalConfig | None = None) -> pl.DataFrame:
    """Long table (trace_id, metric, score) of the per-trace metrics in `TRACE_METRICS`.

    Args:
        traces: trace_id, completion_text; optional n_completion_tokens, is_truncated,
            finish_reason, domain (of the prompt).
    """
    cfg = cfg or SignalConfig()
    for col in ("trace_id", "completion_text"):
        if col not in traces.columns:
            raise QualityError(f"trace_signals: input has no column {col!r} (columns: {traces.columns})")
    n = traces.height

    def col(name: str) -> list:
        return traces[name].to_list() if name in traces.columns else [None] * n

    ids, texts = traces["trace_id"].to_list(), traces["completion_text"].to_list()
    out_ids: list[str] = []
    out_metric: list[str] = []
    out_score: list[float] = []
    for tid, text, n_tok, trunc, finish, domain in zip(
        ids, texts, col("n_completion_tokens"), col("is_truncated"), col("finish_reason"), col("domain")
    ):
        for metric, score in _signals_one(text, n_tok, trunc, finish, domain, cfg).items():
            out_ids.append(tid)
            out_metric.append(metric)
            out_score.append(score)
    return pl.DataFrame({"trace_id": out_ids, "metric": out_metric, "score": out_score}, schema=SCORES_SCHEMA)


def length_ratios(lengths: pl.DataFrame) -> pl.DataFrame:
    """`length_ratio_to_prompt_median` for every trace: its tokens over the median of its prompt's traces.

    Args:
        lengths: trace_id, prompt_id, completion_tokens (all traces of each prompt present).

    >>> df = pl.DataFrame({"trace_id": ["a", "b", "c"], "prompt_id": ["p"] * 3, "completion_tokens": [10.0, 20.0, 60.0]})
    >>> length_ratios(df)["score"].to_list()
    [0.5, 1.0, 3.0]
    """
    return lengths.select(
        "trace_id",
        pl.lit(GROUP_METRICS[0]).alias("metric"),
        pl.when(pl.col("completion_tokens").median().over("prompt_id") > 0)
        .then(pl.col("completion_tokens") / pl.col("completion_tokens").median().over("prompt_id"))
        .otherwise(None)
        .cast(pl.Float64)
        .alias("score"),
    )
