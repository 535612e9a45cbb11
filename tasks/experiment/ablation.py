"""Pure pieces of the selection ablation: arms, presets, the shared eligible pool, the equality checks
that make a comparison fair, and the report (markdown table, plot with error bars).

An *arm* is a selection policy, optionally with a variant (`random#1`: the same policy drawn with
another selection seed, for an A/A check). Every arm draws from one shared pool and gets the same
number of rows (or tokens); every arm is trained with the same step bound and evaluated on the same
problems under each seed. A comparison that breaks any of these is refused with the reason.

>>> parse_arm("random#1")
('random', 1)
>>> experiment_id_for(["provenance", "random"], 200, "traces", [0], "student", "sft-full-x", "eval-y", "evalhash", "data")[:3]
'ex_'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from tasks.common.ids import stable_hash
from tasks.report.core import save_figure
from tasks.select.policies import POLICIES, SCORE_SOURCES, SelectionConfig, eligible_pool, required_scores

BASE = "base"
REFERENCE_ARM = "random"
# the provenance paper's ablation table (max teacher count, longest, max teacher ratio, random, GRAPE,
# min teacher count), plus the rank-surprisal ratio and the length-matched random control
PAPER_ARMS = ("random", "provenance", "teacher_ratio", "min_teacher", "longest", "grape", "rsr", "length_matched_random")


class ExperimentError(RuntimeError):
    """The experiment cannot run, or its arms cannot be compared, as asked; the message says why."""


@dataclass(frozen=True)
class Preset:
    arms: tuple[str, ...]
    seeds: tuple[int, ...]
    max_steps: int | None  # None: the recipe's train.max_steps
    eval_k: int | None  # None: the recipe's evaluate.k
    include_base: bool
    description: str


PRESETS = {
    # quick: two arms, one seed, 300 steps each (~1 min per arm at the 5.7 steps/s measured for the toy
    # student on an idle 2-core CPU), greedy pass@1 (+1 sample) on the whole held-out set, no base arm;
    # sized for 20 minutes with the toy world on an idle machine (README: the wall time and load measured)
    "quick": Preset(arms=("random", "provenance"), seeds=(0,), max_steps=300, eval_k=1, include_base=False,
                    description="random vs provenance, seed 0, 300 steps per arm, whole eval set, no base arm"),
    # paper: every arm of the paper's table x 3 seeds at the recipe's step bound; meant for a GPU worker
    "paper": Preset(arms=PAPER_ARMS, seeds=(0, 1, 2), max_steps=None, eval_k=None, include_base=True,
                    description="every arm x seeds 0,1,2 at the recipe's step bound (GPU)"),
}


def parse_arm(arm: str) -> tuple[str, int]:
    """`policy` or `policy#N` → (policy, variant); a variant draws its selection with another seed."""
    policy, _, variant = arm.partition("#")
    if policy not in POLICIES:
        raise ExperimentError(f"arm {arm!r}: unknown policy {policy!r}; choose from {', '.join(POLICIES)}")
    if variant and not variant.isdigit():
        raise ExperimentError(f"arm {arm!r}: the variant after '#' must be a number (random#1 = random with another selection seed)")
    return policy, int(variant or 0)


def selection_seed(seed: int, variant: int) -> int:
    """The selection seed of an arm variant under experiment seed `seed` (variant 0: the seed itself)."""
    return seed + 7919 * variant


def parse_seeds(text: str | list[int] | tuple[int, ...]) -> list[int]:
    """'0,1,2' → [0, 1, 2]; duplicates are refused."""
    seeds = [int(s) for s in text.split(",") if s.strip()] if isinstance(text, str) else [int(s) for s in text]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ExperimentError(f"seeds must be distinct integers, e.g. 0,1,2 (got {text!r})")
    return seeds


def experiment_id_for(arms: list[str], budget: int, budget_unit: str, seeds: list[int], base_model: str,
                      train_fingerprint: str, eval_fingerprint: str, eval_set_hash: str, data_fingerprint: str) -> str:
    """Same arms, budget, seeds, student, training, eval and data (`data_fingerprint`: the candidates
    the arms draw from and the selection settings, see `candidates_fingerprint`) → same experiment id:
    a re-run replaces its results; a run on grown or re-scored data is another experiment, and the
    earlier one's results stay."""
    return "ex_" + stable_hash(sorted(arms), budget, budget_unit, sorted(seeds), base_model, train_fingerprint,
                               eval_fingerprint, eval_set_hash, data_fingerprint)


def candidates_fingerprint(candidates: pl.DataFrame, *settings: object) -> str:
    """A content fingerprint of the selection candidates (every row and value, in trace order) and of
    the `settings` that decide what the arms draw from them (student, split, oracle pattern, ...)."""
    return stable_hash(candidates.sort("trace_id").write_csv(), *settings)


def shared_pool(candidates: pl.DataFrame, arms: list[str], cfg: SelectionConfig,
                count_tokens: Callable[[list[str]], list[int]] | None = None) -> tuple[pl.DataFrame, dict]:
    """The one pool every arm draws from: eligible traces that carry every score any arm needs.

    Returns (pool with trace_id, prompt_id, n_completion_tokens; report). A trace without a score one
    arm needs (e.g. an imported trace without teacher log-probs, hence no provenance count) is excluded
    from EVERY arm and counted under `excluded_missing_<score>`. Traces whose token count is missing
    (null or 0 with text) are counted with `count_tokens` (the student's tokenizer) instead of counting 0.
    """
    pool, rejected, skipped = eligible_pool(candidates, cfg)
    reasons = rejected.group_by("reason_code").len().sort("reason_code")
    report: dict = {"n_candidates": candidates.height, "n_eligible": pool.height, "criteria_skipped": skipped,
                    "pool_rejections": dict(zip(reasons["reason_code"].to_list(), reasons["len"].to_list()))}
    needed = sorted({c for arm in arms for c in required_scores(parse_arm(arm)[0], cfg)})
    for col in needed:
        if col not in pool.columns:
            users = [a for a in arms if col in required_scores(parse_arm(a)[0], cfg)]
            raise ExperimentError(f"arm(s) {users} need the score {col!r}, which no trace has; run the stage that computes it "
                                  f"(divergence scoring for provenance counts and student log-probs/ranks) or drop the arm")
        missing = pool.filter(pl.col(col).is_null())
        if pool.height and missing.height == pool.height:
            users = [a for a in arms if col in required_scores(parse_arm(a)[0], cfg)]
            raise ExperimentError(f"arm(s) {users} need the score {col!r}, which none of the {pool.height} eligible traces has; "
                                  f"{SCORE_SOURCES.get(col, 'run the stage that computes it')}, or drop the arm")
        report[f"excluded_missing_{col}"] = missing.height
        pool = pool.filter(pl.col(col).is_not_null())
    report["n_excluded_missing_scores"] = report["n_eligible"] - pool.height
    tokens = pool["n_completion_tokens"]
    text = pool["completion_text"] if "completion_text" in pool.columns else pl.Series([None] * pool.height, dtype=pl.String)
    uncounted = (tokens.is_null() | (tokens == 0)) & text.is_not_null() & (text.str.len_chars() > 0)
    report["n_tokens_counted_with_student_tokenizer"] = int(uncounted.sum())
    if uncounted.any():
        if count_tokens is None:
            raise ExperimentError(f"{int(uncounted.sum())} pool traces have no token count; pass a token counter (the student's tokenizer)")
        idx = uncounted.arg_true()
        counted = count_tokens(text.gather(idx).to_list())
        tokens = tokens.cast(pl.Int64).scatter(idx, pl.Series(counted, dtype=pl.Int64))
    pool = pool.with_columns(tokens.cast(pl.Int64).fill_null(0).alias("n_completion_tokens"))
    report["n_pool"] = pool.height
    report["n_pool_prompts"] = pool["prompt_id"].n_unique()
    if pool.height == 0:
        raise ExperimentError(f"the shared pool is empty ({report}); nothing to select from")
    return pool.select("trace_id", "prompt_id", "n_completion_tokens"), report


def check_equal_data(arms: list[dict], budget_unit: str, max_trace_tokens: int) -> None:
    """Refuse arms of unequal size: the same rows (budget in traces) or tokens within one trace's length (tokens).

    Each arm: {"arm", "seed", "n_rows", "n_tokens"}.
    """
    by_seed: dict[int, list[dict]] = {}
    for a in arms:
        by_seed.setdefault(a["seed"], []).append(a)
    for seed, group in by_seed.items():
        sizes = ", ".join(f"{a['arm']}={a['n_rows']} rows/{a['n_tokens']} tokens" for a in group)
        if budget_unit == "traces" and len({a["n_rows"] for a in group}) > 1:
            raise ExperimentError(f"seed {seed}: arms got different numbers of rows ({sizes}); an unequal comparison is refused "
                                  "(a policy found fewer prompts it can rank in the shared pool: lower --budget or drop that arm)")
        if budget_unit == "tokens":
            spread = max(a["n_tokens"] for a in group) - min(a["n_tokens"] for a in group)
            if spread > max_trace_tokens:
                raise ExperimentError(f"seed {seed}: arms' token totals differ by {spread} (> the longest trace, {max_trace_tokens}) "
                                      f"({sizes}); an unequal comparison is refused")
        if any(a["n_rows"] == 0 for a in group):
            raise ExperimentError(f"seed {seed}: an arm selected nothing ({sizes})")


def check_equal_training(arms: list[dict], planned_steps: int | None = None) -> None:
    """Refuse arms whose training stopped early, made different numbers of steps, or not `planned_steps`.

    Each arm: {"arm", "seed", "n_steps", "is_truncated", "truncation_reason"}.
    """
    truncated = [a for a in arms if a.get("is_truncated")]
    if truncated:
        a = truncated[0]
        raise ExperimentError(f"arm {a['arm']} seed {a['seed']}: training truncated ({a['truncation_reason']}); arms are compared "
                              "only at their full step bound: rerun on a less busy machine or raise train.max_train_minutes")
    steps = {a["n_steps"] for a in arms}
    if len(steps) > 1:
        listing = ", ".join(f"{a['arm']}/s{a['seed']}={a['n_steps']}" for a in arms)
        raise ExperimentError(f"arms trained for different numbers of steps ({listing}); an unequal comparison is refused")
    off = [a for a in arms if planned_steps is not None and a["n_steps"] != planned_steps]
    if off:
        a = off[0]
        raise ExperimentError(f"arm {a['arm']} seed {a['seed']}: trained {a['n_steps']} steps, not the experiment's {planned_steps}; "
                              "arms are compared only at the step bound they were planned with")


# -- report ----------------------------------------------------------------------------------------
def _pct(x) -> str:
    return "" if x is None else f"{100 * x:.1f}"


def _comparison_cells(r: dict) -> tuple[str, str, str]:
    """The pass@1 [interval], paired difference [interval] and verdict cells of one `compare_arms` row."""
    p1 = f"{_pct(r['pass_at_1'])} [{_pct(r['pass_at_1_low'])}, {_pct(r['pass_at_1_high'])}]"
    if r["diff_vs_reference"] is None:
        return p1, "(reference)" if r["arm"] == r["reference_arm"] else "", ""
    diff = f"{100 * r['diff_vs_reference']:+.1f} [{100 * r['diff_low']:+.1f}, {100 * r['diff_high']:+.1f}]"
    return p1, diff, r["verdict"]


def render_markdown(summary: pl.DataFrame, *, title: str, notes: list[str] = ()) -> str:
    """Markdown: one row per arm with size, length, steps, pass@1 and its interval, the paired difference
    against the reference arm with its interval, and the verdict."""
    lines = [f"# {title}", ""] + [f"- {n}" for n in notes] + [""]
    lines += ["| arm | seeds | rows | tokens | mean trace tokens | steps | pass@1 % [95% CI] | Δ vs reference (pts) [95% CI] | verdict |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in summary.to_dicts():
        p1, diff, verdict = _comparison_cells(r)
        rows = "" if r["n_rows"] is None else f"{r['n_rows']:.0f}"
        tokens = "" if r["n_tokens"] is None else f"{r['n_tokens']:.0f}"
        mtt = "" if r["mean_trace_tokens"] is None else f"{r['mean_trace_tokens']:.0f}"
        steps = "" if r["n_steps"] is None else str(r["n_steps"])
        lines.append(f"| {r['arm']} | {r['n_seeds']} | {rows} | {tokens} | {mtt} | {steps} | {p1} | {diff} | {verdict} |")
    return "\n".join(lines) + "\n"


def render_by_domain(by_domain: pl.DataFrame) -> str:
    """Markdown: the arms' pass@1 and paired difference within each domain (`compare_by_domain`); empty
    when there is only one domain."""
    if by_domain.height == 0:
        return ""
    lines = ["", "## By domain", "", "| domain | arm | problems | pass@1 % [95% CI] | Δ vs reference (pts) [95% CI] | verdict |",
             "|---|---|---|---|---|---|"]
    for r in by_domain.to_dicts():
        p1, diff, verdict = _comparison_cells(r)
        lines.append(f"| {r['domain']} | {r['arm']} | {r['n_problems']} | {p1} | {diff} | {verdict} |")
    return "\n".join(lines) + "\n"


def plot_results(summary: pl.DataFrame, path: str | Path, *, title: str) -> Path:
    """pass@1 per arm with its 95% interval as error bars (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = summary.to_dicts()
    fig, ax = plt.subplots(figsize=(1.2 * len(rows) + 2.5, 3.4))
    xs = list(range(len(rows)))
    means = [100 * r["pass_at_1"] for r in rows]
    err = [[100 * (r["pass_at_1"] - r["pass_at_1_low"]) for r in rows], [100 * (r["pass_at_1_high"] - r["pass_at_1"]) for r in rows]]
    colors = ["#999999" if r["arm"] in (BASE, r["reference_arm"]) else "#1f77b4" for r in rows]
    ax.bar(xs, means, yerr=err, capsize=4, color=colors)
    for x, r in zip(xs, rows):
        if r["verdict"]:
            ax.annotate(r["verdict"].replace("no detectable difference", "n.d."), (x, 100 * r["pass_at_1_high"]),
                        ha="center", va="bottom", fontsize=7)
    ax.set_xticks(xs, [r["arm"] for r in rows], rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("greedy pass@1 % (95% CI)")
    ax.set_ylim(0, 100)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)
