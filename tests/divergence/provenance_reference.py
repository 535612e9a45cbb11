"""An in-memory reference of the training-data provenance classes, to check the warehouse's SQL
(`curated.cur_provenance_sentences` / `cur_provenance_traces`) against."""

from __future__ import annotations

import polars as pl


def pair_class(d: pl.Expr, beta: float) -> pl.Expr:
    """teacher | student | common from d = p_T - p_S."""
    return pl.when(d > beta).then(pl.lit("teacher")).when(d < -beta).then(pl.lit("student")).otherwise(pl.lit("common"))


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
