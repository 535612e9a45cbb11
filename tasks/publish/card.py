"""The dataset card (README.md) of an export: lineage, counts per stage, length histogram, verdicts.

Pure: takes the facts as plain values and DataFrames, returns markdown.
"""

from __future__ import annotations

import json
import math
from typing import Any

import polars as pl

BAR_WIDTH = 30


def length_histogram(lengths: pl.Series, n_bins: int = 10) -> list[tuple[int, int, int]]:
    """Equal-width integer bins over [min, max] of the non-null lengths: (lo, hi, count), both inclusive.

    >>> length_histogram(pl.Series([1, 2, 3, 10]), n_bins=3)
    [(1, 4, 3), (5, 8, 0), (9, 10, 1)]
    """
    values = lengths.drop_nulls()
    if values.len() == 0:
        return []
    lo, hi = int(values.min()), int(values.max())
    width = max(1, math.ceil((hi - lo + 1) / n_bins))
    n = (hi - lo) // width + 1
    counts = [0] * n
    for v in values.to_list():
        counts[(int(v) - lo) // width] += 1
    return [(lo + i * width, min(lo + (i + 1) * width - 1, hi), counts[i]) for i in range(n)]


def _size_category(n: int) -> str:
    """
    >>> _size_category(364), _size_category(20_000)
    ('n<1K', '10K<n<100K')
    """
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return label
    return "n>1M"


def _usage(fmt: str, data_files: str, spec: str) -> str:
    if fmt == "hf":
        load = 'from datasets import load_from_disk\n\nds = load_from_disk("PATH/TO/THIS/FOLDER")'
    else:
        builder = "json" if fmt == "jsonl" else "parquet"
        load = f'from datasets import load_dataset\n\nds = load_dataset("{builder}", data_files="{data_files}", split="train")'
    trl = ("from trl import SFTConfig, SFTTrainer\n\n"
           "# `messages` is a chat (user problem, assistant reply with <think>...</think>): TRL's conversational format\n"
           'trainer = SFTTrainer(model="YOUR/STUDENT", train_dataset=ds.select_columns(["messages"]),\n'
           '                     args=SFTConfig(output_dir="out", completion_only_loss=True))\ntrainer.train()')
    return (f"Load `{spec}` with 🤗 Datasets, then fine-tune with TRL:\n\n```python\n{load}\n```\n\n"
            f"```python\n{trl}\n```\n")


def _example(rows: pl.DataFrame) -> str:
    if rows.height == 0:
        return "_no rows_\n"
    row = rows.row(0, named=True)
    keep = {k: row[k] for k in ("trace_id", "model_id", "source", "domain", "stage", "messages") if k in row}
    text = json.dumps(keep, default=str, ensure_ascii=False, indent=2)
    if len(text) > 3000:
        text = text[:3000] + "\n… (truncated)"
    return f"```json\n{text}\n```\n"


def _table(df: pl.DataFrame) -> str:
    if df.height == 0:
        return "_none_\n"
    cols = df.columns
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.iter_rows():
        lines.append("| " + " | ".join("" if v is None else str(v).replace("|", "\\|") for v in row) + " |")
    return "\n".join(lines) + "\n"


def render_card(
    version: dict[str, Any],
    rows: pl.DataFrame,
    *,
    runs: pl.DataFrame,
    verdicts: pl.DataFrame | None,
    training_runs: pl.DataFrame,
    files: list[str],
    fmt: str = "parquet",
    data_files: str | None = None,
    evals: pl.DataFrame | None = None,
    recipe: dict[str, Any] | None = None,
) -> str:
    """Markdown with YAML front matter (HF dataset-card style).

    Args:
        version: `DatasetVersion.as_dict()`.
        rows: the exported rows (needs `stage`, `model_id`, `source`, `domain`, `n_completion_tokens`).
        runs: meta.runs rows of the runs it came from (lineage).
        verdicts: (verifier, verdict_status, n_traces), None when no verification ran.
        training_runs: meta.training_runs rows that used this version.
        files: the files written next to the card.
        fmt, data_files: the export format and its data file (pattern), for the Hub `configs` entry.
        evals: pass@1 of the base and fine-tuned students (model, model_id, n_problems, pass_at_1, ...).
        recipe: the curate recipe that produced it (name, version, card: license/language/task_categories).
    """
    spec = version["spec"]
    recipe = recipe or {}
    terms = recipe.get("card") or {}
    data_files = data_files or f"{version['dataset_name']}-v{version['version']}.{'jsonl' if fmt == 'jsonl' else 'parquet'}"
    front = [
        "---",
        f"pretty_name: {json.dumps(spec)}",
        f"license: {terms.get('license', 'other')}",
        f"language: {json.dumps(terms.get('language', ['en']))}",
        f"task_categories: {json.dumps(terms.get('task_categories', ['text-generation']))}",
        "tags: [potstill, reasoning-distillation, sft]",
        f"size_categories: [{_size_category(int(version['n_rows']))}]",
        "configs:",
        "  - config_name: default",
        "    data_files:",
        "      - split: train",
        f"        path: {json.dumps(data_files)}",
        f"potstill_dataset: {json.dumps(version['dataset_name'])}",
        f"potstill_version: {version['version']}",
        f"potstill_content_hash: {version['content_hash']}",
        f"potstill_recipe: {json.dumps(recipe.get('name'))}",
        f"potstill_recipe_fingerprint: {json.dumps(version.get('config_fingerprint'))}",
        "---",
        "",
    ]
    body = [
        f"# {spec}",
        "",
        (f"A reasoning-distillation dataset curated by potstill with the `{version['policy']}` selection policy: "
         f"{version['n_rows']} traces, {version['n_tokens']} completion tokens. Each row is a chat "
         "(`messages`: user problem, assistant reply with its reasoning inside `<think>...</think>`)."),
        "",
        (f"Curated by the recipe `{recipe.get('name')}` (version {recipe.get('version')}, fingerprint "
         f"`{version.get('config_fingerprint')}`); license `{terms.get('license', 'other')}`."
         if recipe else f"Recipe fingerprint `{version.get('config_fingerprint')}` (the curate run is not in this warehouse)."),
        "",
        "## Use it",
        "",
        _usage(fmt, data_files, spec),
        "## Example row",
        "",
        _example(rows),
        "## Evaluation",
        "",
        ("Student pass@1 before and after fine-tuning on this version (greedy, held-out problems):\n\n" + _table(evals)
         if evals is not None and evals.height else "_no evaluation of a student trained on this version yet_\n"),
        "## Version",
        "",
        _table(pl.DataFrame({
            "field": ["dataset", "version", "status", "policy", "params", "config fingerprint", "content hash",
                      "rows", "completion tokens", "created at", "published at"],
            "value": [version["dataset_name"], str(version["version"]), version["status"], version["policy"],
                      json.dumps(version["params"], sort_keys=True), str(version["config_fingerprint"]),
                      version["content_hash"], str(version["n_rows"]), str(version["n_tokens"]),
                      str(version["created_at"]), str(version["published_at"])],
        })),
        "## Lineage",
        "",
        ("Runs the rows came from (ingest, generation, selection and the runs named at publish time); "
         "`potstill lineage TRACE_ID` gives the full history of one trace."),
        "",
        _table(runs),
        "Teachers and prompt sources:",
        "",
        _table(rows.group_by("model_id", "source", "domain").agg(pl.len().alias("n_traces"))
               .sort("n_traces", "model_id", "source", descending=[True, False, False])),
        "## Counts per stage",
        "",
        _table(rows.group_by("stage").agg(pl.len().alias("n_traces"),
                                          pl.col("n_completion_tokens").sum().alias("n_tokens")).sort("stage")),
        "## Length histogram (completion tokens)",
        "",
    ]
    hist = length_histogram(rows["n_completion_tokens"])
    if hist:
        top = max(c for _, _, c in hist) or 1
        body.append(_table(pl.DataFrame({
            "tokens": [f"{lo}-{hi}" if hi > lo else str(lo) for lo, hi, _ in hist],
            "n_traces": [c for _, _, c in hist],
            "": ["#" * max(1 if c else 0, round(BAR_WIDTH * c / top)) for _, _, c in hist],
        })))
        lengths = rows["n_completion_tokens"].drop_nulls()
        body.append(f"mean {lengths.mean():.1f}, median {lengths.median():.1f}, max {lengths.max()} tokens.\n")
    else:
        body.append("_no token counts recorded_\n")
    body += ["## Verdict breakdown", ""]
    has_verdicts = verdicts is not None and verdicts.height > 0
    body.append(_table(verdicts) if has_verdicts else "_no verification has run on these traces_\n")
    body += ["## Training runs that used this version", "", _table(training_runs), "## Files", ""]
    body += [f"- `{f}`" for f in files]
    body.append("")
    return "\n".join(front + body)
