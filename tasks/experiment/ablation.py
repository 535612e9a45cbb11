"""Pure pieces of the selection-ablation experiment: its id, the results table, markdown and plot.

>>> experiment_id_for(["provenance", "random"], 200, 0, "student", "sft-full-x", "eval-y", "evalhash")[:4]
'ex_'
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from tasks.common.ids import stable_hash
from tasks.report.core import save_figure

BASE = "base"
RESULT_SCHEMA = {
    "policy": pl.String, "domain": pl.String, "dataset_name": pl.String, "dataset_version": pl.Int32,
    "n_rows": pl.Int64, "mean_trace_tokens": pl.Float64, "training_run_id": pl.String, "eval_id": pl.String,
    "pass_at_1": pl.Float64, "pass_at_k": pl.Float64, "k": pl.Int32, "delta_pass_at_1": pl.Float64,
    "mean_completion_tokens": pl.Float64, "truncation_rate": pl.Float64,
}


class ExperimentError(RuntimeError):
    """The experiment cannot run as asked; the message names the policy or setting."""


def experiment_id_for(policies: list[str], budget: int, seed: int, base_model: str, train_fingerprint: str,
                      eval_fingerprint: str, eval_set_hash: str) -> str:
    """Same policies, budget, seed, student, recipe and eval → same experiment id (results are replaced)."""
    return "ex_" + stable_hash(sorted(policies), budget, seed, base_model, train_fingerprint, eval_fingerprint, eval_set_hash)


def results_table(arms: list[dict], metrics: dict[str, list[dict]]) -> pl.DataFrame:
    """One row per arm (base first, then each policy) and domain, with pass@1 deltas against base.

    Args:
        arms: {"policy", "eval_id", and for policies "dataset_name", "dataset_version", "n_rows",
            "mean_trace_tokens", "training_run_id"}; the arm with policy 'base' is the untrained student.
        metrics: eval_id → rows of `tasks.evaluate.metrics.summarize` (domain, pass_at_1, pass_at_k, k, ...).
    """
    base = next((a for a in arms if a["policy"] == BASE), None)
    if base is None:
        raise ExperimentError("the results table needs the base student's evaluation (policy 'base')")
    base_p1 = {m["domain"]: m["pass_at_1"] for m in metrics[base["eval_id"]]}
    rows = []
    for arm in arms:
        for m in metrics[arm["eval_id"]]:
            rows.append({
                "policy": arm["policy"], "domain": m["domain"], "dataset_name": arm.get("dataset_name"),
                "dataset_version": arm.get("dataset_version"), "n_rows": arm.get("n_rows"),
                "mean_trace_tokens": arm.get("mean_trace_tokens"), "training_run_id": arm.get("training_run_id"),
                "eval_id": arm["eval_id"], "pass_at_1": m["pass_at_1"], "pass_at_k": m["pass_at_k"], "k": m["k"],
                "delta_pass_at_1": m["pass_at_1"] - base_p1[m["domain"]] if m["domain"] in base_p1 else None,
                "mean_completion_tokens": m["mean_completion_tokens"], "truncation_rate": m["truncation_rate"],
            })
    order = {a["policy"]: i for i, a in enumerate(arms)}
    return pl.DataFrame(rows, schema=RESULT_SCHEMA).sort(
        pl.col("policy").replace_strict(order, return_dtype=pl.Int32), pl.col("domain") != "all", "domain"
    )


def render_markdown(table: pl.DataFrame, *, title: str, notes: list[str] = ()) -> str:
    """A markdown report: the 'all' domain per policy, then per-domain rows; length next to count."""
    def pct(x):
        return "" if x is None else f"{100 * x:.1f}"

    lines = [f"# {title}", ""]
    lines += [f"- {n}" for n in notes]
    lines += ["", "| policy | domain | dataset | rows | mean trace tokens | pass@1 % | Δ pass@1 (pts) | pass@k % | mean output tokens | truncated % |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for r in table.to_dicts():
        ds = f"{r['dataset_name']}@{r['dataset_version']}" if r["dataset_name"] else "(untrained student)"
        delta = "" if r["delta_pass_at_1"] is None else f"{100 * r['delta_pass_at_1']:+.1f}"
        mtt = "" if r["mean_trace_tokens"] is None else f"{r['mean_trace_tokens']:.0f}"
        lines.append(f"| {r['policy']} | {r['domain']} | {ds} | {r['n_rows'] or ''} | {mtt} | {pct(r['pass_at_1'])} | {delta} | "
                     f"{pct(r['pass_at_k'])} (k={r['k']}) | {r['mean_completion_tokens']:.0f} | {pct(r['truncation_rate'])} |")
    return "\n".join(lines) + "\n"


def plot_results(table: pl.DataFrame, path: str | Path, *, title: str) -> Path:
    """Bar chart of pass@1 and pass@k per policy (domain 'all'); written as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = table.filter(pl.col("domain") == "all").to_dicts()
    fig, ax = plt.subplots(figsize=(1.6 * len(rows) + 2, 3.2))
    xs = range(len(rows))
    ax.bar([x - 0.2 for x in xs], [100 * r["pass_at_1"] for r in rows], width=0.4, label="pass@1 (greedy)")
    ax.bar([x + 0.2 for x in xs], [100 * r["pass_at_k"] for r in rows], width=0.4, label=f"pass@{rows[0]['k']} (sampled)")
    ax.set_xticks(list(xs), [r["policy"] for r in rows])
    ax.set_ylabel("% of eval problems")
    ax.set_ylim(0, 100)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)
