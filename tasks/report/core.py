"""Run reports as data: the Outcome first, a reconciling funnel with units, per-teacher and
provenance sections, PNG plots (matplotlib, Agg); rendered to markdown or one HTML file.

Pure: takes the facts as plain values and polars DataFrames (the flow queries the warehouse).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

# The unit each stage counts in (ingest: prompts or traces, from its config).
STAGE_UNITS = {
    "generate": "traces", "verify": "traces", "quality": "traces", "score": "traces", "divergence": "traces",
    "select": "traces", "publish": "traces", "finetune": "examples", "validate": "rows", "evaluate": "samples",
}
NOT_FUNNEL = ("evaluate",)  # measured in the Outcome section, not a data stage


@dataclass
class Report:
    title: str
    funnel: pl.DataFrame
    sections: dict[str, pl.DataFrame] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    plots: dict[str, bytes] = field(default_factory=dict)  # name -> PNG bytes
    outcome: list[str] = field(default_factory=list)  # the Outcome section's lines, shown first
    links: dict[str, str] = field(default_factory=dict)  # label -> relative path (the trace viewer)


def markdown_table(df: pl.DataFrame, max_rows: int = 50) -> str:
    """A GitHub-flavoured markdown table (pipes in values escaped).

    >>> print(markdown_table(pl.DataFrame({"a": [1]})))
    | a |
    |---|
    | 1 |
    """
    if df.is_empty():
        return "_(no rows)_"
    head = "| " + " | ".join(df.columns) + " |"
    sep = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(_cell(v).replace("|", "\\|") for v in row) + " |" for row in df.head(max_rows).iter_rows()]
    more = [f"_… {df.height - max_rows} more rows_"] if df.height > max_rows else []
    return "\n".join([head, sep, *body, *more])


def _cell(value) -> str:
    """A value for people: thousands separators, 3 significant decimals.

    >>> _cell(1234567), _cell(0.14166666), _cell(67.8), _cell(None), _cell(True)
    ('1,234,567', '0.142', '67.8', '', 'yes')
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return (f"{value:,.3f}".rstrip("0").rstrip(".") or "0") if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def save_figure(fig, path, *, dpi: int = 110):
    """Write a matplotlib figure to `path` as PNG (parent folders created), close it, return the Path."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


# -- the funnel ------------------------------------------------------------------------------------

def _reasons_text(reasons: pl.DataFrame) -> tuple[str, int]:
    if reasons.is_empty():
        return "", 0
    rows = reasons.group_by("reason_code").agg(pl.col("n").sum()).sort(["n", "reason_code"], descending=[True, False])
    return ", ".join(f"{r}={n:,}" for r, n in rows.iter_rows()), int(rows["n"].sum())


def build_funnel(runs: pl.DataFrame, reasons: pl.DataFrame) -> pl.DataFrame:
    """One row per stage (dedup split into prompts, traces and decontamination) with its unit,
    rows in / out / rejected, reason counts and whether it reconciles (in = out + rejected and the
    reasons sum to rejected).

    Args:
        runs: stage runs in run order (run_id, stage, n_in, n_out, n_rejected, stats_json, config_json).
        reasons: (run_id, is_contamination, unit, reason_code, n), each rejected item once.
    """
    out: list[dict] = []

    def add(stage, unit, n_in, n_out, n_rejected, why: pl.DataFrame, run_id):
        text, total = _reasons_text(why)
        numbers = [n_in, n_out, n_rejected]
        ok = None if None in numbers else (n_in == n_out + n_rejected and total == n_rejected)
        out.append({"stage": stage, "unit": unit, "n_in": n_in, "n_out": n_out, "n_rejected": n_rejected,
                    "reasons": text, "reconciles": ok, "run_id": run_id})

    for run in runs.iter_rows(named=True):
        stage, run_id = run["stage"], run["run_id"]
        if stage in NOT_FUNNEL:
            continue
        why = reasons.filter(pl.col("run_id") == run_id) if reasons.height else reasons
        stats = json.loads(run.get("stats_json") or "{}")
        if stage == "dedup" and isinstance(stats.get("prompt", stats.get("trace")), dict):
            for kind in ("prompt", "trace"):
                level = stats.get(kind)
                if isinstance(level, dict) and level.get("n_items") is not None:
                    n_items, n_dup = int(level["n_items"]), int(level.get("n_duplicates", 0))
                    semantic = (stats.get("semantic") or {}).get(kind)  # items only semantic dedup removed (dup_semantic)
                    n_dup += int(semantic.get("n_removed", 0)) if isinstance(semantic, dict) else 0
                    part = why.filter(~pl.col("is_contamination") & (pl.col("unit") == f"{kind}s")) if why.height else why
                    add(f"dedup ({kind}s)", f"{kind}s", n_items, n_items - n_dup, n_dup, part, run_id)
            decontam = stats.get("decontamination") or {}
            if decontam.get("n_checked"):
                part = why.filter(pl.col("is_contamination")) if why.height else why
                n_bench = max(1, len(decontam.get("benchmarks") or {}))
                n_checked = int(decontam["n_checked"]) // n_bench
                n_bad = int(part["n"].sum()) if part.height else 0
                add("decontaminate", "prompts", n_checked, n_checked - n_bad, n_bad, part, run_id)
            continue
        unit = STAGE_UNITS.get(stage, "rows")
        if stage == "ingest":
            config = json.loads(run.get("config_json") or "{}")
            unit = "traces" if config.get("model_id") else "prompts"  # a trace import names its model
            stage = f"ingest ({unit})"
        add(stage, unit, run["n_in"], run["n_out"], run["n_rejected"], why, run_id)
    return pl.DataFrame(out, schema={"stage": pl.String, "unit": pl.String, "n_in": pl.Int64, "n_out": pl.Int64,
                                     "n_rejected": pl.Int64, "reasons": pl.String, "reconciles": pl.Boolean,
                                     "run_id": pl.String})


# -- the outcome -----------------------------------------------------------------------------------

def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion (scipy).

    >>> [round(x, 3) for x in wilson_interval(17, 120)]
    [0.09, 0.215]
    """
    if n <= 0:
        return (float("nan"), float("nan"))
    from scipy.stats import binomtest

    ci = binomtest(int(successes), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def outcome_table(evals: pl.DataFrame) -> pl.DataFrame:
    """pass@1 per evaluated model with its 95% Wilson interval over problems (greedy: one sample each)."""
    rows = []
    for r in evals.iter_rows(named=True) if evals.height else []:
        n = int(r["n_problems"])
        k = round(float(r["pass_at_1"]) * n)
        lo, hi = wilson_interval(k, n)
        rows.append({"model": "fine-tuned" if r.get("training_run_id") else "base", "model_id": Path(str(r["model_id"])).name,
                     "problems": n, "solved": k, "pass@1": float(r["pass_at_1"]), "95% CI": f"{lo:.3f}–{hi:.3f}",
                     "ci_low": lo, "ci_high": hi})
    return pl.DataFrame(rows, schema={"model": pl.String, "model_id": pl.String, "problems": pl.Int64, "solved": pl.Int64,
                                      "pass@1": pl.Float64, "95% CI": pl.String, "ci_low": pl.Float64, "ci_high": pl.Float64})


def training_line(training: dict | None) -> str:
    """One line on the training run: steps done / planned and why it stopped.

    >>> training_line({"n_steps": 43, "n_steps_planned": 1000, "stop_reason": "truncated: time cap of 3.0 min"})
    'training: 43 of 1,000 planned steps (4%) — TRUNCATED (time cap of 3.0 min); the result is not what the recipe asks for'
    >>> training_line({"n_steps": 10, "n_steps_planned": 10, "stop_reason": "completed"})
    'training: 10 of 10 planned steps — completed'
    """
    if not training:
        return "training: none in this run"
    done, planned = training.get("n_steps"), training.get("n_steps_planned")
    reason = training.get("stop_reason") or ("completed" if planned is None or done == planned else "truncated")
    if planned and done is not None and done < planned:
        cause = reason.split(":", 1)[1].strip() if ":" in reason else "stopped early"
        return (f"training: {done:,} of {planned:,} planned steps ({100 * done / planned:.0f}%) — TRUNCATED ({cause}); "
                "the result is not what the recipe asks for")
    planned_text = f"{planned:,}" if planned else "?"
    return f"training: {done if done is None else f'{done:,}'} of {planned_text} planned steps — {reason}"


def outcome_lines(table: pl.DataFrame, training: dict | None) -> list[str]:
    lines = []
    base = table.filter(pl.col("model") == "base")
    tuned = table.filter(pl.col("model") == "fine-tuned")
    if base.height and tuned.height:
        b, t = base.row(0, named=True), tuned.row(-1, named=True)
        delta = 100 * (t["pass@1"] - b["pass@1"])
        lines.append(f"student pass@1 {b['pass@1']:.3f} (95% CI {b['95% CI']}) → {t['pass@1']:.3f} (95% CI {t['95% CI']}): "
                     f"{delta:+.1f} points on {t['problems']:,} held-out problems")
    elif table.height:
        lines += [f"{r['model']} pass@1 {r['pass@1']:.3f} (95% CI {r['95% CI']}) on {r['problems']:,} problems"
                  for r in table.iter_rows(named=True)]
    else:
        lines.append("no evaluation in this run")
    lines.append(training_line(training))
    return lines


# -- sections over the run's traces --------------------------------------------------------------

def per_teacher(traces: pl.DataFrame) -> pl.DataFrame:
    """Per teacher: traces, verified pass rate, length, teacher-sentence share, selected."""
    if traces.is_empty():
        return pl.DataFrame()
    return traces.group_by("teacher").agg(
        pl.len().alias("traces"),
        (pl.col("is_correct").fill_null(False).sum() / pl.col("is_decisive").fill_null(False).sum()).round(3).alias("pass rate"),
        pl.col("n_completion_tokens").mean().round(1).alias("mean tokens"),
        pl.col("n_completion_tokens").median().alias("median tokens"),
        (pl.col("n_teacher").sum() / pl.col("n_sentences").sum()).fill_nan(None).round(3).alias("teacher-sentence share"),
        pl.col("selected").sum().alias("selected"),
    ).sort("teacher")


def make_plots(traces: pl.DataFrame, outcome: pl.DataFrame | None = None) -> dict[str, bytes]:
    """PNG plots: before/after pass@1 with intervals, length histogram per teacher, and per-trace
    teacher-sentence count against length (selected vs not: does selection just pick long traces?)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots: dict[str, bytes] = {}
    if outcome is not None and outcome.height:
        fig, ax = plt.subplots(figsize=(4.5, 3))
        labels = outcome["model"].to_list()
        values = outcome["pass@1"].to_list()
        err = [[v - lo for v, lo in zip(values, outcome["ci_low"].to_list())],
               [hi - v for v, hi in zip(values, outcome["ci_high"].to_list())]]
        ax.bar(labels, values, yerr=err, capsize=6, color=["#8a9bb0", "#e07b39"][: len(labels)] + ["#e07b39"] * max(0, len(labels) - 2))
        for i, v in enumerate(values):
            ax.text(i, v + 0.01, f"{v:.3f}", ha="center", va="bottom", fontsize=9)
        ax.set_ylabel("pass@1 (95% Wilson CI)")
        ax.set_title("Student before / after fine-tuning")
        ax.set_ylim(0, max(0.1, *(outcome["ci_high"].to_list())) * 1.2)
        plots["outcome"] = _png(fig)
    if traces.height and traces["n_completion_tokens"].drop_nulls().len():
        fig, ax = plt.subplots(figsize=(6, 3))
        for (teacher,), part in traces.group_by(["teacher"], maintain_order=True):
            ax.hist(part["n_completion_tokens"].drop_nulls().to_list(), bins=30, alpha=0.5, label=str(teacher))
        ax.set_xlabel("completion tokens")
        ax.set_ylabel("traces")
        ax.set_title("Length per teacher (traces this run's selection considered)")
        ax.legend(fontsize=7)
        plots["lengths"] = _png(fig)
    scored = traces.filter(pl.col("n_teacher").is_not_null()) if traces.height else traces
    if scored.height:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        for sel, colour, label in ((False, "#9aa5b1", "not selected"), (True, "#e07b39", "selected")):
            part = scored.filter(pl.col("selected") == sel)
            ax.scatter(part["n_completion_tokens"].to_list(), part["n_teacher"].to_list(), s=8, alpha=0.6, c=colour, label=label)
        ax.set_xlabel("completion tokens")
        ax.set_ylabel("teacher sentences")
        ax.set_title("Provenance vs length, per trace")
        ax.legend(fontsize=7)
        plots["provenance"] = _png(fig)
    return plots


# -- rendering ---------------------------------------------------------------------------------------

_PLOT_FOR = {"outcome": "outcome", "per teacher": "lengths", "provenance": "provenance"}


def _funnel_view(funnel: pl.DataFrame) -> pl.DataFrame:
    return funnel.drop("run_id") if "run_id" in funnel.columns else funnel


def _outcome_view(df: pl.DataFrame) -> pl.DataFrame:
    return df.drop("ci_low", "ci_high") if "ci_low" in df.columns else df


def to_markdown(report: Report, *, inline_images: bool = False, image_files: dict[str, str] | None = None) -> str:
    """Markdown: Outcome, Funnel, the sections, notes. Images inline (data URIs, for Prefect
    artifacts) or as files named in `image_files`."""
    def image(name: str) -> list[str]:
        if inline_images and name in report.plots:
            return ["", f"![{name}](data:image/png;base64,{base64.b64encode(report.plots[name]).decode()})"]
        if image_files and name in image_files:
            return ["", f"![{name}]({image_files[name]})"]
        return []

    lines = [f"# {report.title}", "", "## Outcome", ""]
    lines += [f"- {line}" for line in report.outcome]
    if "outcome" in report.sections:
        lines += ["", markdown_table(_outcome_view(report.sections["outcome"]))]
    lines += image("outcome")
    lines += ["", "## Funnel", "", "Each stage: n_in = n_out + n_rejected, and the reasons sum to n_rejected (`reconciles`).", "",
              markdown_table(_funnel_view(report.funnel), max_rows=100)]
    for name, df in report.sections.items():
        if name == "outcome":
            continue
        lines += ["", f"## {name[:1].upper()}{name[1:]}", "", markdown_table(df)]
        lines += image(_PLOT_FOR.get(name, ""))
    if report.links:
        lines += ["", "## Links", ""] + [f"- [{label}]({path})" for label, path in report.links.items()]
    lines += ["", "## Run", ""] + [f"- {note}" for note in report.notes]
    return "\n".join(lines) + "\n"


def to_html(report: Report) -> str:
    """One self-contained HTML file (images inline)."""
    def img(name: str) -> str:
        png = report.plots.get(name)
        return f"<img alt='{html.escape(name)}' src='data:image/png;base64,{base64.b64encode(png).decode()}'/>" if png else ""

    parts = ["<!DOCTYPE html>", f"<html><head><meta charset='utf-8'><title>{html.escape(report.title)}</title>",
             ("<style>body{font-family:system-ui,sans-serif;max-width:64em;margin:1em auto;color:#222}"
              "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 8px}"
              "td.num{text-align:right}.bad{background:#fde2e1}"
              ".outcome li{font-size:1.05em}.trunc{color:#b3261e;font-weight:bold}</style></head><body>"),
             f"<h1>{html.escape(report.title)}</h1><h2>Outcome</h2><ul class='outcome'>"]
    parts += [f"<li class='{'trunc' if 'TRUNCATED' in line else ''}'>{html.escape(line)}</li>" for line in report.outcome]
    parts.append("</ul>")
    if "outcome" in report.sections:
        parts.append(_html_table(_outcome_view(report.sections["outcome"])))
    parts += [img("outcome"), "<h2>Funnel</h2><p>Each stage: n_in = n_out + n_rejected, and the reasons sum to n_rejected.</p>",
              _html_table(_funnel_view(report.funnel))]
    for name, df in report.sections.items():
        if name == "outcome":
            continue
        parts += [f"<h2>{html.escape(name[:1].upper() + name[1:])}</h2>", _html_table(df), img(_PLOT_FOR.get(name, ""))]
    if report.links:
        parts.append("<h2>Links</h2><ul>" + "".join(f"<li><a href='{html.escape(p)}'>{html.escape(label)}</a></li>"
                                                    for label, p in report.links.items()) + "</ul>")
    parts.append("<h2>Run</h2><ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in report.notes) + "</ul></body></html>")
    return "\n".join(parts)


def _html_table(df: pl.DataFrame, max_rows: int = 200) -> str:
    if df.is_empty():
        return "<p><em>(no rows)</em></p>"
    head = "".join(f"<th>{html.escape(c)}</th>" for c in df.columns)
    rows = []
    for row in df.head(max_rows).iter_rows(named=True):
        bad = " class='bad'" if row.get("reconciles") is False else ""
        rows.append(f"<tr{bad}>" + "".join(
            f"<td{' class=num' if isinstance(v, int | float) and not isinstance(v, bool) else ''}>{html.escape(_cell(v))}</td>"
            for v in row.values()) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"
