"""Sentence scores from token log-probs, and provenance classes (docs/methods.md §1).

Per sentence and model, p = exp(mean token log-prob) (geometric-mean probability). For training
data (teacher T wrote the trace, student S before distillation), with d = p_T - p_S:
`teacher` if d > beta, `student` if d < -beta, else `common`. For a distilled model D's own
samples: `shared` if all pairwise |differences| <= alpha, else `teacher` if p_T - p_S > beta,
`student` if p_S - p_T > beta, else `boosted`.

The warehouse computes the same training-data classes in SQL (`curated.cur_provenance_sentences`
/ `cur_provenance_traces` at beta = 0.1, and the table macros `..._at(beta := ...)`);
`provenance_counts` here is the in-memory equivalent used by tests and the select core.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

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


@dataclass(frozen=True)
class ProvenanceConfig:
    # beta=0.1: best value in the provenance-tracing ablation (0.05 and 0.15 also beat random)
    beta: float = field(default=0.1, metadata={"help": "probability gap that makes a sentence teacher/student-originated"})
    # alpha=0.05: our default noise threshold (the paper leaves it open)
    alpha: float = field(default=0.05, metadata={"help": "max pairwise probability gap for a `shared` sentence (distilled-model analysis)"})
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


def pair_class(d: pl.Expr, beta: float) -> pl.Expr:
    """teacher | student | common from d = p_T - p_S."""
    return pl.when(d > beta).then(pl.lit("teacher")).when(d < -beta).then(pl.lit("student")).otherwise(pl.lit("common"))


def distilled_class(p_t: pl.Expr, p_s: pl.Expr, p_d: pl.Expr, alpha: float, beta: float) -> pl.Expr:
    """shared | teacher | student | boosted, in the paper's order."""
    shared = ((p_s - p_d).abs() <= alpha) & ((p_t - p_d).abs() <= alpha) & ((p_t - p_s).abs() <= alpha)
    return (
        pl.when(shared).then(pl.lit("shared"))
        .when(p_t - p_s > beta).then(pl.lit("teacher"))
        .when(p_s - p_t > beta).then(pl.lit("student"))
        .otherwise(pl.lit("boosted"))
    )


def sentence_pairs(scores: pl.DataFrame, teacher_model: str | pl.DataFrame, student_model: str, beta: float = 0.1) -> pl.DataFrame:
    """One row per (trace, sentence) with p_teacher, p_student, d and its class.

    `teacher_model` is a model id, or a frame (trace_id, model_id) naming each trace's teacher.
    Sentences without a token under either model are left out.
    """
    if isinstance(teacher_model, str):
        t = scores.filter(pl.col("model_id") == teacher_model)
    else:
        t = scores.join(teacher_model.select("trace_id", "model_id"), on=["trace_id", "model_id"])
    s = scores.filter(pl.col("model_id") == student_model)
    keys = ["trace_id", "sentence_index", "splitter"]
    out = (
        t.select(*keys, "char_start", "char_end", pl.col("n_tokens").alias("n_tokens_teacher"),
                 pl.col("mean_logprob").exp().alias("p_teacher"))
        .join(s.select(*keys, pl.col("n_tokens").alias("n_tokens_student"),
                       pl.col("mean_logprob").exp().alias("p_student")), on=keys)
        .drop_nulls(["p_teacher", "p_student"])
        .with_columns((pl.col("p_teacher") - pl.col("p_student")).alias("d"))
    )
    return out.with_columns(pair_class(pl.col("d"), beta).alias("provenance_class")).sort(keys)


def provenance_counts(pairs: pl.DataFrame) -> pl.DataFrame:
    """Per trace: n_sentences, n_teacher, n_common, n_student, teacher_ratio."""
    return (
        pairs.group_by("trace_id")
        .agg(
            pl.len().alias("n_sentences"),
            (pl.col("provenance_class") == "teacher").sum().alias("n_teacher"),
            (pl.col("provenance_class") == "common").sum().alias("n_common"),
            (pl.col("provenance_class") == "student").sum().alias("n_student"),
        )
        .with_columns((pl.col("n_teacher") / pl.col("n_sentences")).alias("teacher_ratio"))
        .sort("trace_id")
    )
