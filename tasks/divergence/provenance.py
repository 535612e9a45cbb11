"""Sentence scores from token log-probs, and provenance classes (docs/methods.md#provenance-tracing).

Per sentence and model, p = exp(mean token log-prob) (geometric-mean probability). For training
data (teacher T wrote the trace, student S before distillation), with d = p_T - p_S:
`teacher` if d > beta, `student` if d < -beta, else `common`. For a distilled model D's own
samples: `shared` if all pairwise |differences| <= alpha, else `teacher` if p_T - p_S > beta,
`student` if p_S - p_T > beta, else `boosted`.

The warehouse computes the same training-data classes in SQL (`curated.cur_provenance_sentences`
/ `cur_provenance_traces` at the default beta, and the table macros `..._at(beta := ...)`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import polars as pl

from tasks.divergence.sentences import SplitConfig, score_sentences, split_sentences

SENTENCE_SCORES_SCHEMA = {
    "trace_id": pl.String,
    "sentence_index": pl.Int32,
    "char_start": pl.Int32,
    "char_end": pl.Int32,
    "model_id": pl.String,
    "n_tokens": pl.Int32,
    "mean_logprob": pl.Float64,
    "splitter": pl.String,
}


# beta=0.1: best value in the provenance-tracing ablation (0.05 and 0.15 also beat random);
# the warehouse's provenance macros use the same default (warehouse/views/curated/cur_provenance_*.sql)
DEFAULT_BETA = 0.1
# alpha=0.05: our default noise threshold for `shared` sentences (the paper leaves it open)
DEFAULT_ALPHA = 0.05


@dataclass(frozen=True)
class ProvenanceConfig:
    """The facts divergence and selection share: whose provenance, which sentences, which gap.

    A recipe's `provenance:` section; divergence scores traces under `student` with `split`, and
    selection reads the counts for the same student and splitter at `beta`.
    """

    __pydantic_config__: ClassVar[dict] = {"extra": "forbid"}  # pydantic (a recipe): an unknown key is an error

    student: str | None = field(
        default=None, metadata={"help": "the student model (folder or hub id) whose provenance is traced"}
    )
    beta: float = field(default=DEFAULT_BETA, metadata={"help": "probability gap that makes a sentence teacher/student-originated"})
    alpha: float = field(default=DEFAULT_ALPHA, metadata={"help": "max pairwise probability gap for a `shared` sentence (distilled-model analysis)"})
    split: SplitConfig = field(default_factory=SplitConfig, metadata={"help": "sentence splitter settings"})

    def __post_init__(self) -> None:
        if not (0 <= self.alpha <= 1 and 0 <= self.beta <= 1):
            raise ValueError(f"alpha and beta are probability gaps in [0, 1], got alpha={self.alpha}, beta={self.beta}")


DEFAULT_SPLIT = SplitConfig()


def sentence_score_rows(
    traces: pl.DataFrame, token_logprobs: pl.DataFrame, cfg: SplitConfig = DEFAULT_SPLIT
) -> tuple[pl.DataFrame, list[tuple[str, str, str]]]:
    """Sentence scores for every (trace, model) in `token_logprobs`.

    Args:
        traces: (trace_id, completion_text).
        token_logprobs: (trace_id, model_id, logprobs, char_starts), offsets into the completion.
    Returns:
        rows in `SENTENCE_SCORES_SCHEMA`, and rejections as (trace_id:model_id, reason_code, detail).
    """
    texts = dict(zip(traces["trace_id"].to_list(), traces["completion_text"].to_list()))
    splitter = str(cfg)
    rows: list[dict] = []
    rejected: list[tuple[str, str, str]] = []
    split_cache: dict[str, list] = {}
    for rec in token_logprobs.select("trace_id", "model_id", "logprobs", "char_starts").iter_rows(named=True):
        tid, mid = rec["trace_id"], rec["model_id"]
        ref = f"{tid}:{mid}"
        text = texts.get(tid)
        if text is None:
            rejected.append((ref, "trace_missing", "no completion text for this trace"))
            continue
        lps, starts = rec["logprobs"], rec["char_starts"]
        if starts is None or lps is None:
            rejected.append((ref, "missing_char_offsets", "token log-probs without character offsets cannot be mapped to sentences"))
            continue
        if len(lps) != len(starts):
            rejected.append((ref, "logprob_length_mismatch", f"{len(lps)} logprobs vs {len(starts)} char_starts"))
            continue
        if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in lps):
            rejected.append((ref, "logprob_missing_value", "a token log-prob is null/NaN"))
            continue
        if tid not in split_cache:
            split_cache[tid] = split_sentences(text, cfg)
        sentences = split_cache[tid]
        if not sentences:
            rejected.append((ref, "no_sentences", "the reasoning has no sentence to score"))
            continue
        for s in score_sentences(text, sentences, starts, lps):
            rows.append(
                {
                    "trace_id": tid, "sentence_index": s.sentence_index, "char_start": s.char_start,
                    "char_end": s.char_end, "model_id": mid, "n_tokens": s.n_tokens,
                    "mean_logprob": s.mean_logprob, "splitter": splitter,
                }
            )
    return pl.DataFrame(rows, schema=SENTENCE_SCORES_SCHEMA), rejected


def distilled_class(p_t: pl.Expr, p_s: pl.Expr, p_d: pl.Expr, alpha: float, beta: float) -> pl.Expr:
    """shared | teacher | student | boosted, in the paper's order."""
    shared = ((p_s - p_d).abs() <= alpha) & ((p_t - p_d).abs() <= alpha) & ((p_t - p_s).abs() <= alpha)
    return (
        pl.when(shared).then(pl.lit("shared"))
        .when(p_t - p_s > beta).then(pl.lit("teacher"))
        .when(p_s - p_t > beta).then(pl.lit("student"))
        .otherwise(pl.lit("boosted"))
    )
