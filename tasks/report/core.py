"""Run reports as data: a funnel table, a markdown summary and PNG plots (matplotlib, Agg)."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl


@dataclass
class Report:
    title: str
    funnel: pl.DataFrame
    sections: dict[str, pl.DataFrame] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    plots: dict[str, bytes] = field(default_factory=dict)  # name -> PNG bytes


def markdown_table(df: pl.DataFrame, max_rows: int = 50) -> str:
    """A GitHub-flavoured markdown table.

    >>> print(markdown_table(pl.DataFrame({"a": [1]})))
    | a |
    |---|
    | 1 |
    """
    if df.is_empty():
        return "_(no rows)_"
    head = "| " + " | ".join(df.columns) + " |"
    sep = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in df.head(max_rows).iter_rows()]
    more = [f"_… {df.height - max_rows} more rows_"] if df.height > max_rows else []
    return "\n".join([head, sep, *body, *more])


def save_figure(fig, path, *, dpi: int = 110):
    """Write a matplotlib figure to `path` as PNG (parent folders created), close it, return the Path."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def make_plots(sections: dict[str, pl.DataFrame]) -> dict[str, bytes]:
    """PNG plots for whichever sections have data."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots: dict[str, bytes] = {}
    verdicts = sections.get("verdicts")
    if verdicts is not None and not verdicts.is_empty():
        wide = verdicts.pivot(on="verdict_status", index="verifier", values="n_traces").fill_null(0)
        fig, ax = plt.subplots(figsize=(6, 3))
        bottom = [0] * wide.height
        for status in [c for c in wide.columns if c != "verifier"]:
            ax.barh(wide["verifier"].to_list(), wide[status].to_list(), left=bottom, label=status)
            bottom = [b + v for b, v in zip(bottom, wide[status].to_list())]
        ax.set_xlabel("traces")
        ax.set_title("Verdict breakdown")
        ax.legend(fontsize=7)
        plots["verdicts"] = _png(fig)
    lengths = sections.get("lengths")
    if lengths is not None and not lengths.is_empty():
        fig, ax = plt.subplots(figsize=(6, 3))
        for (model,), part in lengths.group_by(["model_id"], maintain_order=True):
            ax.hist(part["n_completion_tokens"].to_list(), bins=30, alpha=0.5, label=str(model))
        ax.set_xlabel("completion tokens")
        ax.set_ylabel("traces")
        ax.set_title("Length histogram")
        ax.legend(fontsize=7)
        plots["lengths"] = _png(fig)
    provenance = sections.get("provenance")
    if provenance is not None and not provenance.is_empty():
        fig, ax = plt.subplots(figsize=(6, 3))
        counts = provenance.with_columns(pl.col("n_teacher", "n_common", "n_student").cast(pl.Float64))
        totals = counts.with_columns(total=pl.col("n_teacher") + pl.col("n_common") + pl.col("n_student"))
        left = [0.0] * totals.height
        for cls in ("n_teacher", "n_common", "n_student"):
            share = (totals[cls] / totals["total"]).fill_nan(0).to_list()
            ax.barh(totals["teacher_model_id"].to_list(), share, left=left, label=cls.removeprefix("n_"))
            left = [a + b for a, b in zip(left, share)]
        ax.set_xlabel("share of sentences")
        ax.set_title("Provenance class shares")
        ax.legend(fontsize=7)
        plots["provenance"] = _png(fig)
    datasets = sections.get("datasets")
    if datasets is not None and not datasets.is_empty():
        fig, ax = plt.subplots(figsize=(6, 3))
        labels = [f"{n}@{v} ({p})" for n, v, p in datasets.select("dataset_name", "version", "policy").iter_rows()]
        ax.barh(labels, datasets["mean_tokens"].cast(pl.Float64).fill_null(0).to_list())
        ax.set_xlabel("mean completion tokens per row")
        ax.set_title("Selection comparison")
        plots["selection"] = _png(fig)
    return plots


def to_markdown(report: Report, *, inline_images: bool = False) -> str:
    lines = [f"# {report.title}", "", "## Funnel", "", markdown_table(report.funnel), ""]
    lines += [f"- {note}" for note in report.notes]
    for name, df in report.sections.items():
        lines += ["", f"## {name.title()}", "", markdown_table(df)]
        if inline_images and name in _PLOT_FOR and _PLOT_FOR[name] in report.plots:
            data = base64.b64encode(report.plots[_PLOT_FOR[name]]).decode()
            lines += ["", f"![{name}](data:image/png;base64,{data})"]
    return "\n".join(lines) + "\n"


_PLOT_FOR = {"verdicts": "verdicts", "lengths": "lengths", "provenance": "provenance", "datasets": "selection"}


def to_html(report: Report) -> str:
    import html

    parts = [f"<html><head><meta charset='utf-8'><title>{html.escape(report.title)}</title>",
             ("<style>body{font-family:sans-serif;max-width:60em;margin:auto}table{border-collapse:collapse}"
              "td,th{border:1px solid #ccc;padding:2px 6px}</style></head><body>"),
             f"<h1>{html.escape(report.title)}</h1><h2>Funnel</h2>", _html_table(report.funnel)]
    parts += [f"<p>{html.escape(n)}</p>" for n in report.notes]
    for name, df in report.sections.items():
        parts += [f"<h2>{html.escape(name.title())}</h2>", _html_table(df)]
        plot = report.plots.get(_PLOT_FOR.get(name, ""))
        if plot:
            parts.append(f"<img alt='{name}' src='data:image/png;base64,{base64.b64encode(plot).decode()}'/>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _html_table(df: pl.DataFrame, max_rows: int = 200) -> str:
    import html

    if df.is_empty():
        return "<p><em>(no rows)</em></p>"
    head = "".join(f"<th>{html.escape(c)}</th>" for c in df.columns)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape('' if v is None else str(v))}</td>" for v in row) + "</tr>"
                   for row in df.head(max_rows).iter_rows())
    return f"<table><tr>{head}</tr>{rows}</table>"
