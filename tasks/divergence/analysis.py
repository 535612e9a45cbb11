"""Provenance analysis of a distilled model and the teacher comparison report (docs/methods.md#distilled-model-analysis).

Analysis: the distilled student D's own samples, every sentence scored under the teacher T, the
original student S and D; classes in the paper's order (`shared`, `teacher`, `student`,
`boosted`), shares by relative sentence position and answer correctness.

Teacher comparison ("Not All Correct Answers Are Equal"): per teacher on the same prompts, pass
rate, token-length distribution, perplexity under one fixed reference model, overthinking markers.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import polars as pl

from tasks.divergence.provenance import DEFAULT_ALPHA, DEFAULT_BETA, distilled_class
from tasks.report.core import save_figure

CLASSES = ("shared", "teacher", "student", "boosted")
HESITATION = re.compile(r"\b(wait|alternatively|check|but|maybe|might|perhaps)\b", re.IGNORECASE)


def classify_distilled(
    scores: pl.DataFrame, teacher: str, student: str, distilled: str, *, alpha: float = DEFAULT_ALPHA, beta: float = DEFAULT_BETA
) -> pl.DataFrame:
    """One row per (trace, sentence) of D's traces with p_teacher, p_student, p_distilled, class and position.

    `scores`: long sentence scores (trace_id, sentence_index, splitter, model_id, mean_logprob).
    Sentences without a token under any of the three models are left out.
    """
    keys = ["trace_id", "splitter", "sentence_index"]

    def p(model: str, name: str) -> pl.DataFrame:
        return scores.filter(pl.col("model_id") == model).select(*keys, pl.col("mean_logprob").exp().alias(name))

    out = p(teacher, "p_teacher").join(p(student, "p_student"), on=keys).join(p(distilled, "p_distilled"), on=keys)
    out = out.drop_nulls(["p_teacher", "p_student", "p_distilled"])
    n = scores.filter(pl.col("model_id") == distilled).group_by("trace_id", "splitter").agg(
        pl.col("sentence_index").max().alias("_last")
    )
    return (
        out.join(n, on=["trace_id", "splitter"])
        .with_columns(
            distilled_class(pl.col("p_teacher"), pl.col("p_student"), pl.col("p_distilled"), alpha, beta).alias("provenance_class"),
            (pl.col("sentence_index") / (pl.col("_last") + 1)).alias("relative_position"),
        )
        .drop("_last")
        .sort(keys)
    )


def shares_by_position(classified: pl.DataFrame, answers: pl.DataFrame | None, n_bins: int = 5) -> pl.DataFrame:
    """Share of each class per (answer_status, position_bin); every class appears (0 when absent).

    `answers`: (trace_id, answer_status) with correct | incorrect; missing traces count as `unknown`.
    """
    df = classified
    if answers is not None and answers.height:
        df = df.join(answers.select("trace_id", "answer_status"), on="trace_id", how="left")
    else:
        df = df.with_columns(pl.lit(None, dtype=pl.String).alias("answer_status"))
    df = df.with_columns(
        pl.col("answer_status").fill_null("unknown"),
        (pl.col("relative_position") * n_bins).floor().cast(pl.Int32).clip(0, n_bins - 1).alias("position_bin"),
    )
    n_traces = df.group_by("answer_status").agg(pl.col("trace_id").n_unique().cast(pl.Int32).alias("n_traces"))
    grid = (
        df.select("answer_status", "position_bin").unique()
        .join(pl.DataFrame({"provenance_class": list(CLASSES)}), how="cross")
    )
    counts = df.group_by("answer_status", "position_bin", "provenance_class").agg(pl.len().alias("n_sentences"))
    out = (
        grid.join(counts, on=["answer_status", "position_bin", "provenance_class"], how="left")
        .with_columns(pl.col("n_sentences").fill_null(0).cast(pl.Int64))
        .with_columns((pl.col("n_sentences") / pl.col("n_sentences").sum().over("answer_status", "position_bin")).alias("share"))
        .join(n_traces, on="answer_status")
        .with_columns(pl.lit(n_bins, dtype=pl.Int32).alias("n_bins"))
    )
    return out.sort("answer_status", "position_bin", "provenance_class")


def plot_shares(shares: pl.DataFrame, path: str | Path, title: str = "Provenance of the distilled model's sentences") -> Path:
    """Stacked bars of class shares by position, one panel per answer status (matplotlib Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    statuses = sorted(shares["answer_status"].unique().to_list())
    fig, axes = plt.subplots(1, len(statuses), figsize=(5 * len(statuses), 3.6), squeeze=False, sharey=True)
    colors = {"shared": "#9e9e9e", "teacher": "#1f77b4", "student": "#ff7f0e", "boosted": "#2ca02c"}
    for ax, status in zip(axes[0], statuses):
        part = shares.filter(pl.col("answer_status") == status)
        bins = sorted(part["position_bin"].unique().to_list())
        bottom = [0.0] * len(bins)
        for cls in CLASSES:
            vals = [part.filter((pl.col("position_bin") == b) & (pl.col("provenance_class") == cls))["share"].sum() for b in bins]
            ax.bar(bins, vals, bottom=bottom, color=colors[cls], label=cls)
            bottom = [a + b for a, b in zip(bottom, vals)]
        n = part["n_traces"][0] if part.height else 0
        ax.set_title(f"{status} answers ({n} traces)")
        ax.set_xlabel("position in trace (bin, early → late)")
    axes[0][0].set_ylabel("share of sentences")
    axes[0][-1].legend(loc="upper right", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


def provenance_report_table(shares: pl.DataFrame) -> pl.DataFrame:
    """The report's table of one analysis: a row per (answer_status, provenance_class) with its traces,
    sentences, overall share and the share in each position bin (`pos_0` = earliest fifth, ...).

    `shares`: `shares_by_position` output, or the rows of one analysis in raw.raw_distill_provenance.
    """
    if shares.is_empty():
        return pl.DataFrame(schema={"answer_status": pl.String, "provenance_class": pl.String, "n_traces": pl.Int32,
                                    "n_sentences": pl.Int64, "share": pl.Float64})
    keys = ["answer_status", "provenance_class"]
    overall = (
        shares.group_by(keys).agg(pl.col("n_sentences").sum(), pl.col("n_traces").first())
        .with_columns((pl.col("n_sentences") / pl.col("n_sentences").sum().over("answer_status")).alias("share"))
    )
    bins = shares.with_columns(pl.format("pos_{}", pl.col("position_bin")).alias("bin")).pivot(
        on="bin", index=keys, values="share", sort_columns=True
    )
    order = {c: i for i, c in enumerate(CLASSES)}
    pos = sorted((c for c in bins.columns if c.startswith("pos_")), key=lambda c: int(c[4:]))
    return (
        overall.join(bins, on=keys, how="left")
        .with_columns(pl.col("provenance_class").replace_strict(order, return_dtype=pl.Int32).alias("_order"))
        .sort("answer_status", "_order")
        .select(*keys, "n_traces", "n_sentences", "share", *pos)
    )


def distilled_provenance_report(shares: pl.DataFrame, out_dir: str | Path, title: str | None = None) -> tuple[pl.DataFrame, Path]:
    """(table, PNG path) of one provenance analysis, for a run report: `provenance_report_table` and
    `plot_shares` written to `<out_dir>/distill-provenance-<analysis_id or 'analysis'>.png`."""
    name = shares["analysis_id"][0] if "analysis_id" in shares.columns and shares.height else "analysis"
    if title is None and {"distilled_model_id", "teacher_model_id"} <= set(shares.columns) and shares.height:
        row = shares.row(0, named=True)
        title = f"Provenance of {row['distilled_model_id']}'s sentences (T={row['teacher_model_id']}, S={row['student_model_id']})"
    path = plot_shares(shares, Path(out_dir) / f"distill-provenance-{name}.png", title=title or "Provenance of the distilled model's sentences")
    return provenance_report_table(shares), path


# -- teacher comparison ----------------------------------------------------------------------------
def overthinking_markers(text: str, n_tokens: int) -> tuple[float, float]:
    """(hesitation words per 1k tokens, paragraphs per 1k tokens) of one completion."""
    n = max(n_tokens, 1)
    paragraphs = len([p for p in re.split(r"\n\s*\n|\n", text) if p.strip()])
    return 1000 * len(HESITATION.findall(text)) / n, 1000 * paragraphs / n


def compare_teachers(traces: pl.DataFrame) -> pl.DataFrame:
    """Per teacher: pass rate, length distribution, reference perplexity, overthinking markers.

    `traces`: (trace_id, prompt_id, model_id, completion_text, n_completion_tokens, verdict_status,
    ppl_reference); only prompts every teacher answered are compared.
    """
    teachers = traces["model_id"].n_unique()
    common = traces.group_by("prompt_id").agg(pl.col("model_id").n_unique().alias("_n")).filter(pl.col("_n") == teachers)
    df = traces.join(common.select("prompt_id"), on="prompt_id")
    marks = [overthinking_markers(t, n or 0) for t, n in zip(df["completion_text"], df["n_completion_tokens"])]
    df = df.with_columns(
        pl.Series("_hes", [m[0] for m in marks], dtype=pl.Float64), pl.Series("_par", [m[1] for m in marks], dtype=pl.Float64)
    )
    decisive = pl.col("verdict_status").is_in(["correct", "incorrect"])
    return (
        df.group_by("model_id")
        .agg(
            pl.col("prompt_id").n_unique().cast(pl.Int32).alias("n_prompts"),
            pl.len().cast(pl.Int32).alias("n_traces"),
            decisive.sum().cast(pl.Int32).alias("n_verified"),
            ((pl.col("verdict_status") == "correct").sum() / decisive.sum()).alias("pass_rate"),
            pl.col("n_completion_tokens").mean().alias("mean_completion_tokens"),
            pl.col("n_completion_tokens").median().alias("p50_completion_tokens"),
            pl.col("n_completion_tokens").quantile(0.9, "nearest").cast(pl.Float64).alias("p90_completion_tokens"),
            pl.col("ppl_reference").mean().alias("mean_ppl_reference"),
            pl.col("ppl_reference").median().alias("median_ppl_reference"),
            pl.col("_hes").mean().alias("hesitation_per_1k_tokens"),
            pl.col("_par").mean().alias("paragraphs_per_1k_tokens"),
        )
        .with_columns(pl.col("pass_rate").fill_nan(None))
        .rename({"model_id": "teacher_model_id"})
        .sort("teacher_model_id")
    )


def perplexity(logprobs: list[float] | None) -> float | None:
    """exp(-mean token log-prob); None for an empty list."""
    if not logprobs:
        return None
    return math.exp(-sum(logprobs) / len(logprobs))


def plot_teacher_comparison(report: pl.DataFrame, lengths: pl.DataFrame, path: str | Path) -> Path:
    """Three panels: completion-length histograms, pass rate, reference perplexity (matplotlib Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b, c) = plt.subplots(1, 3, figsize=(13, 3.6))
    for model in report["teacher_model_id"].to_list():
        vals = lengths.filter(pl.col("model_id") == model)["n_completion_tokens"].drop_nulls().to_list()
        a.hist(vals, bins=20, alpha=0.5, label=model)
    a.set_title("completion tokens")
    a.legend(fontsize=7)
    names = report["teacher_model_id"].to_list()
    b.bar(names, report["pass_rate"].fill_null(0).to_list())
    b.set_title("pass rate")
    b.set_ylim(0, 1)
    c.bar(names, report["mean_ppl_reference"].fill_null(0).to_list())
    c.set_title("perplexity under the reference model")
    for ax in (b, c):
        ax.tick_params(axis="x", labelrotation=20, labelsize=7)
    fig.tight_layout()
    return save_figure(fig, path)
