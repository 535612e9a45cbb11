"""Selection policies: which traces become a dataset version (docs/methods.md#selection-rule).

The per-prompt rules (provenance, teacher_ratio, min_teacher, longest, grape, rsr) keep the best
trace of each prompt under their score; when the budget is smaller than the number of prompts, the
prompts that get in are drawn at random (seeded), never ranked by the score, so a rule is not
also a prompt filter. A trace without the score a rule needs is not a candidate for that rule.

Input is one polars frame of candidate traces (built by the select flow from whichever upstream
tables exist); output is the ordered rows `(trace_id, rank, stage)` and the policy's parameters.

Candidate columns: `trace_id, prompt_id, model_id, n_completion_tokens` (required) and, used when
present, `verdict_status, is_representative, is_contaminated, passes_quality, temperature,
n_teacher, n_sentences, student_pass_rate, completion_text, student_mean_logprob, rsr`. A criterion whose column is absent
is not applied and the result's params say so (`criteria_skipped`); a null value means the
upstream stage has not judged the trace: a null verdict fails `require_verdict`, a null
dedup/contamination/quality flag passes.

>>> res = select_traces(candidates, "provenance", SelectionConfig(budget=100))   # doctest: +SKIP
>>> res.rows.columns
['trace_id', 'rank', 'stage']
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field

import polars as pl

from tasks.divergence.provenance import DEFAULT_BETA

POLICIES = (
    "provenance", "random", "longest", "shortest_correct", "pass_rate_band", "diverse", "redi_pairs",
    "temperature_schedule", "teacher_ratio", "min_teacher", "grape", "rsr", "length_matched_random", "oracle",
)
# the score column(s) a policy ranks by: a trace without them cannot take part (the ablation excludes it from every arm)
SCORE_COLUMNS = {
    "provenance": ("n_teacher",), "teacher_ratio": ("n_teacher", "n_sentences"), "min_teacher": ("n_teacher",),
    "grape": ("student_mean_logprob",), "rsr": ("rsr",),
}
# where each score comes from: what to (re-)run when no trace has it
SCORE_SOURCES = {
    "n_teacher": "provenance counts come from the divergence stage: run `potstill run divergence`",
    "n_sentences": "provenance counts come from the divergence stage: run `potstill run divergence`",
    "student_mean_logprob": "the student's token log-probs come from the divergence stage: run `potstill run divergence`",
    "rsr": ("the student's token ranks are stored by the divergence stage since migration 0160 (traces scored earlier have "
            "none): run `potstill run divergence --set rescore_ranks=true`"),
}
MAIN, POSITIVE, NEGATIVE, LOW_T, HIGH_T = "main", "positive", "negative", "low_temp", "high_temp"
REQUIRED = ("trace_id", "prompt_id", "n_completion_tokens")


class SelectionError(ValueError):
    """A policy cannot run on these candidates or with this config; the message says what is missing."""


@dataclass(frozen=True)
class SelectionConfig:
    budget: int = field(default=1000, metadata={"help": "dataset size: number of traces, or of completion tokens"})
    budget_unit: str = field(default="traces", metadata={"help": "'traces' or 'tokens'"})
    seed: int = field(default=0, metadata={"help": "seed of every random choice (random order, ties, pass_rate_band picks)"})
    require_verdict: str | None = field(
        default="correct", metadata={"help": "eligible pool: this verdict_status (None = any verdict, even none)"}
    )
    require_representative: bool = field(default=True, metadata={"help": "eligible pool: dedup representatives only"})
    exclude_contaminated: bool = field(default=True, metadata={"help": "eligible pool: drop traces of contaminated prompts"})
    require_quality: bool = field(default=True, metadata={"help": "eligible pool: quality filters passed"})
    max_per_prompt: int = field(
        default=1, metadata={"help": "traces per prompt for provenance/random/longest/shortest_correct/pass_rate_band"}
    )
    beta: float = field(default=DEFAULT_BETA, metadata={"help": "provenance: probability gap of a teacher sentence"})
    # 0.2-0.8: Open-R1's student pass-rate band
    pass_rate_low: float = field(default=0.2, metadata={"help": "pass_rate_band: lowest student pass rate kept"})
    pass_rate_high: float = field(default=0.8, metadata={"help": "pass_rate_band: highest student pass rate kept"})
    diverse_per_prompt: int = field(default=2, metadata={"help": "diverse: P farthest-apart correct traces per prompt (DED)"})
    temperature_split: float = field(
        default=0.8, metadata={"help": "temperature_schedule: traces at or below are the low-T stage (DASD: 0.6 vs 1.0)"}
    )
    low_stage_fraction: float = field(default=0.5, metadata={"help": "temperature_schedule: share of the budget for low-T"})
    schedule_per_prompt: int = field(default=2, metadata={"help": "temperature_schedule: samples per prompt per stage"})
    length_reference: str = field(
        default="provenance", metadata={"help": "length_matched_random: the policy whose length distribution is matched"}
    )
    length_bins: int = field(default=10, metadata={"help": "length_matched_random: quantile bins of the reference lengths"})
    oracle_pattern: str | None = field(
        default=None,
        metadata={"help": "oracle: regex of a planted label (a world's strategy sentences); per prompt the trace with most matches"},
    )

    def __post_init__(self) -> None:
        if self.budget < 1:
            raise SelectionError(f"budget must be >= 1, got {self.budget}")
        if self.budget_unit not in ("traces", "tokens"):
            raise SelectionError(f"budget_unit must be 'traces' or 'tokens', not {self.budget_unit!r}")
        if not 0 <= self.pass_rate_low <= self.pass_rate_high <= 1:
            raise SelectionError(f"need 0 <= pass_rate_low <= pass_rate_high <= 1, got {self.pass_rate_low}, {self.pass_rate_high}")
        if not 0 <= self.low_stage_fraction <= 1:
            raise SelectionError(f"low_stage_fraction must be in [0, 1], got {self.low_stage_fraction}")
        if self.length_reference not in SCORE_COLUMNS and self.length_reference not in ("longest", "random"):
            raise SelectionError(f"length_reference must be a per-prompt policy ({', '.join([*SCORE_COLUMNS, 'longest'])}), "
                                 f"not {self.length_reference!r}")
        if self.oracle_pattern is not None:
            try:
                re.compile(self.oracle_pattern)
            except re.error as e:
                raise SelectionError(f"oracle_pattern {self.oracle_pattern!r} is not a valid regex: {e}") from None
        if self.length_bins < 1:
            raise SelectionError(f"length_bins must be >= 1, got {self.length_bins}")
        if min(self.max_per_prompt, self.diverse_per_prompt, self.schedule_per_prompt) < 1:
            raise SelectionError("max_per_prompt, diverse_per_prompt and schedule_per_prompt must be >= 1")

    def __str__(self) -> str:
        from tasks.common.ids import config_fingerprint

        return config_fingerprint(self)


@dataclass(frozen=True)
class SelectionResult:
    rows: pl.DataFrame  # trace_id, rank, stage
    params: dict
    rejections: pl.DataFrame  # trace_id, reason_code, detail: traces the eligible pool excluded


# -- helpers --------------------------------------------------------------------------------------
def _key(seed: int, value: str) -> str:
    return hashlib.sha256(f"{seed}\x1f{value}".encode()).hexdigest()


def with_random_key(df: pl.DataFrame, seed: int, col: str = "trace_id", name: str = "_rand") -> pl.DataFrame:
    """A seeded, platform-independent random sort key per row."""
    return df.with_columns(pl.Series(name, [_key(seed, v) for v in df[col].to_list()], dtype=pl.String))


def take_budget(ordered: pl.DataFrame, cfg: SelectionConfig, budget: int | None = None) -> pl.DataFrame:
    """The longest prefix of `ordered` within the budget (traces, or completion tokens)."""
    budget = cfg.budget if budget is None else budget
    if cfg.budget_unit == "traces":
        return ordered.head(budget)
    tokens = ordered["n_completion_tokens"].fill_null(0).cum_sum()
    return ordered.filter(tokens <= budget)


def _per_prompt(df: pl.DataFrame, by: list[str], descending: list[bool], k: int) -> pl.DataFrame:
    """The first k rows of each prompt under the order `by` (trace_id breaks remaining ties)."""
    return (
        df.sort([*by, "trace_id"], descending=[*descending, False])
        .with_columns(pl.int_range(pl.len()).over("prompt_id").alias("_k"))
        .filter(pl.col("_k") < k)
        .drop("_k")
    )


def _ranked(df: pl.DataFrame, stage: str = MAIN) -> pl.DataFrame:
    return df.select(
        "trace_id", pl.int_range(1, pl.len() + 1, dtype=pl.Int32).alias("rank"), pl.lit(stage).alias("stage")
    )


# -- eligible pool ----------------------------------------------------------------------------------
def eligible_pool(
    candidates: pl.DataFrame, cfg: SelectionConfig, *, require_verdict: str | None | bool = True
) -> tuple[pl.DataFrame, pl.DataFrame, list[str]]:
    """(pool, rejections(trace_id, reason_code, detail), criteria skipped for a missing column).

    `require_verdict=True` uses `cfg.require_verdict`; pass a status or None to override.
    """
    missing = [c for c in REQUIRED if c not in candidates.columns]
    if missing:
        raise SelectionError(f"candidates lack required column(s) {missing} (have {candidates.columns})")
    verdict = cfg.require_verdict if require_verdict is True else require_verdict
    checks: list[tuple[str, str | None, pl.Expr, pl.Expr]] = []  # (reason, column, fails, detail)
    if verdict is not None:
        checks.append(("unverified", "verdict_status", pl.col("verdict_status").is_null(), pl.lit("no verdict yet")))
        checks.append((
            f"verdict_not_{verdict}", "verdict_status",
            pl.col("verdict_status").is_not_null() & (pl.col("verdict_status") != verdict),
            pl.lit("verdict_status = ") + pl.col("verdict_status").cast(pl.String),
        ))
    if cfg.require_representative:
        checks.append(("dedup_not_representative", "is_representative", pl.col("is_representative").eq(False),
                       pl.lit("a duplicate of another trace or prompt")))
    if cfg.exclude_contaminated:
        checks.append(("contaminated", "is_contaminated", pl.col("is_contaminated").eq(True),
                       pl.col("contamination_detail").cast(pl.String) if "contamination_detail" in candidates.columns
                       else pl.lit("prompt overlaps a benchmark")))
    if cfg.require_quality:
        checks.append(("quality_failed", "passes_quality", pl.col("passes_quality").eq(False),
                       pl.col("quality_detail").cast(pl.String) if "quality_detail" in candidates.columns
                       else pl.lit("a quality filter flagged it")))
    skipped = sorted({col for _, col, _, _ in checks if col not in candidates.columns})
    active = [c for c in checks if c[1] in candidates.columns]
    if not active:
        return candidates, pl.DataFrame(schema={"trace_id": pl.String, "reason_code": pl.String, "detail": pl.String}), skipped
    # first failing criterion is the reason recorded
    reason = pl.lit(None, dtype=pl.String)
    detail = pl.lit(None, dtype=pl.String)
    for code, _, fails, det in reversed(active):
        reason = pl.when(fails.fill_null(False)).then(pl.lit(code)).otherwise(reason)
        detail = pl.when(fails.fill_null(False)).then(det).otherwise(detail)
    marked = candidates.with_columns(reason.alias("_reason"), detail.alias("_detail"))
    pool = marked.filter(pl.col("_reason").is_null()).drop("_reason", "_detail")
    rejected = marked.filter(pl.col("_reason").is_not_null()).select(
        "trace_id", pl.col("_reason").alias("reason_code"), pl.col("_detail").fill_null("").alias("detail")
    )
    return pool, rejected, skipped


# -- policies -----------------------------------------------------------------------------------------
def _need(df: pl.DataFrame, policy: str, *cols: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise SelectionError(f"policy {policy!r} needs candidate column(s) {missing}; run the stage that computes them first")


def _random_prompts(picked: pl.DataFrame, cfg: SelectionConfig) -> pl.DataFrame:
    """The picked traces with their prompts in seeded random order: at a budget below the number of prompts,
    which prompts get in is chance (the same prompts for every per-prompt policy at one seed), not the score."""
    keyed = with_random_key(picked, cfg.seed + 1, "prompt_id", "_prand")
    return keyed.with_columns(pl.int_range(pl.len()).over("prompt_id").alias("_within")).sort(["_prand", "_within"]).drop("_within", "_prand")


def _best_per_prompt(pool: pl.DataFrame, cfg: SelectionConfig, policy: str, by: list[str], descending: list[bool]) -> tuple[pl.DataFrame, dict]:
    """Per prompt the best trace(s) under `by` (ties: fewer tokens, then trace id), prompts in random order."""
    cols = SCORE_COLUMNS.get(policy, ())
    _need(pool, policy, *cols)
    scored = pool.filter(pl.all_horizontal([pl.col(c).is_not_null() for c in cols])) if cols else pool
    if pool.height and not scored.height:
        absent = [c for c in cols if pool[c].is_null().all()]
        raise SelectionError(f"policy {policy!r}: none of the {pool.height} eligible traces has a {'/'.join(absent)} score; "
                             f"{SCORE_SOURCES.get(absent[0], 'run the stage that computes it')}")
    keys, desc = [*by, "n_completion_tokens"], [*descending, False]
    if "n_completion_tokens" in by:
        keys, desc = by, descending
    best = _per_prompt(scored, keys, desc, cfg.max_per_prompt)
    return _ranked(take_budget(_random_prompts(best, cfg), cfg)), {f"n_without_{policy}_score": pool.height - scored.height} if cols else {}


def _provenance(pool: pl.DataFrame, cfg: SelectionConfig) -> tuple[pl.DataFrame, dict]:
    # per prompt: most teacher sentences; ties -> fewer tokens, then trace id (our default)
    res, extra = _best_per_prompt(pool, cfg, "provenance", ["n_teacher"], [True])
    return res, {"n_without_provenance": extra["n_without_provenance_score"]}


def _teacher_ratio(pool: pl.DataFrame, cfg: SelectionConfig) -> tuple[pl.DataFrame, dict]:
    _need(pool, "teacher_ratio", "n_teacher", "n_sentences")
    ratio = pl.when(pl.col("n_sentences") > 0).then(pl.col("n_teacher") / pl.col("n_sentences")).otherwise(0.0)
    return _best_per_prompt(pool.with_columns(ratio.alias("_ratio")), cfg, "teacher_ratio", ["_ratio"], [True])


def _min_teacher(pool: pl.DataFrame, cfg: SelectionConfig) -> tuple[pl.DataFrame, dict]:
    return _best_per_prompt(pool, cfg, "min_teacher", ["n_teacher"], [False])


def _grape(pool: pl.DataFrame, cfg: SelectionConfig) -> tuple[pl.DataFrame, dict]:
    # GRAPE: the trace closest to the student = highest mean student log-prob over its completion tokens
    return _best_per_prompt(pool, cfg, "grape", ["student_mean_logprob"], [True])


def _rsr(pool: pl.DataFrame, cfg: SelectionConfig) -> tuple[pl.DataFrame, dict]:
    # rank-surprisal ratio (arXiv 2601.14249): lowest sum(min(rank, 100)) / sum(-log p_S) per prompt
    return _best_per_prompt(pool, cfg, "rsr", ["rsr"], [False])


def _length_matched_random(pool: pl.DataFrame, cfg: SelectionConfig) -> tuple[pl.DataFrame, dict]:
    """Random traces (one per prompt) whose length distribution matches the `cfg.length_reference` arm:
    quantile bins of the reference lengths get the reference's count each, filled in seeded random order;
    bins the pool cannot fill are topped up with random traces of unused prompts (`n_unmatched`)."""
    import numpy as np

    reference, _ = POLICY_FNS[cfg.length_reference](pool, cfg)
    ref_len = pool.join(reference.select("trace_id"), on="trace_id", how="semi")["n_completion_tokens"].fill_null(0).to_numpy()
    if ref_len.size == 0:
        return _ranked(pool.head(0)), {"length_reference": cfg.length_reference, "n_unmatched": 0}
    edges = np.unique(np.quantile(ref_len, np.linspace(0, 1, min(cfg.length_bins, ref_len.size) + 1)))
    bins = np.searchsorted(edges[1:-1], ref_len, side="right") if edges.size > 1 else np.zeros(ref_len.size, int)
    quota = np.bincount(bins, minlength=max(edges.size - 1, 1))
    keyed = with_random_key(pool, cfg.seed + 2).sort(["_rand", "trace_id"])
    lengths = keyed["n_completion_tokens"].fill_null(0).to_numpy()
    inside = (lengths >= edges[0]) & (lengths <= edges[-1])
    t_bins = np.searchsorted(edges[1:-1], lengths, side="right") if edges.size > 1 else np.zeros(lengths.size, int)
    used: set[str] = set()
    taken: list[int] = []
    for i, (prompt, ok, b) in enumerate(zip(keyed["prompt_id"].to_list(), inside, t_bins)):
        if ok and prompt not in used and quota[b] > 0:
            quota[b] -= 1
            used.add(prompt)
            taken.append(i)
    n_unmatched = int(quota.sum())
    for i, prompt in enumerate(keyed["prompt_id"].to_list()):
        if len(taken) >= ref_len.size:
            break
        if prompt not in used:
            used.add(prompt)
            taken.append(i)
    return _ranked(take_budget(keyed[taken], cfg)), {"length_reference": cfg.length_reference, "n_unmatched": n_unmatched}


def _oracle(pool: pl.DataFrame, cfg: SelectionConfig) -> tuple[pl.DataFrame, dict]:
    """Per prompt the trace with the most matches of `cfg.oracle_pattern` (a label the data's maker planted,
    e.g. the toy world's strategy sentences; real data has none): what the label is worth to an ablation.

    Ties are broken as the random policy draws at the same seed (not by length, as the score rules):
    where the label does not tell a prompt's traces apart (on most prompts none has it) the oracle
    keeps the random arm's trace, so oracle vs random measures the label and nothing else."""
    if not cfg.oracle_pattern:
        raise SelectionError("policy 'oracle' needs oracle_pattern (the recipe's select.oracle_pattern)")
    _need(pool, "oracle", "completion_text")
    hits = pl.col("completion_text").fill_null("").str.count_matches(cfg.oracle_pattern).alias("_oracle_hits")
    keyed = with_random_key(pool.with_columns(hits), cfg.seed)
    best = _per_prompt(keyed, ["_oracle_hits", "_rand"], [True, False], cfg.max_per_prompt)
    n_labelled = int(keyed.group_by("prompt_id").agg(pl.col("_oracle_hits").n_unique() > 1)["_oracle_hits"].sum())
    return _ranked(take_budget(_random_prompts(best, cfg), cfg)), {"oracle_pattern": cfg.oracle_pattern,
                                                                    "n_prompts_label_decides": n_labelled}


def _random(pool: pl.DataFrame, cfg: SelectionConfig) -> tuple[pl.DataFrame, dict]:
    keyed = with_random_key(pool, cfg.seed)
    picked = _per_prompt(keyed, ["_rand"], [False], cfg.max_per_prompt)
    ordered = with_random_key(picked, cfg.seed + 1, "prompt_id", "_prand").sort(["_prand", "_rand"])
    return _ranked(take_budget(ordered, cfg)), {}


def _longest(pool: pl.DataFrame, cfg: SelectionConfig) -> tuple[pl.DataFrame, dict]:
    return _best_per_prompt(pool, cfg, "longest", ["n_completion_tokens"], [True])


def _shortest_correct(pool: pl.DataFrame, cfg: SelectionConfig) -> tuple[pl.DataFrame, dict]:
    _need(pool, "shortest_correct", "verdict_status")
    correct = pool.filter(pl.col("verdict_status") == "correct")
    picked = _per_prompt(correct, ["n_completion_tokens"], [False], cfg.max_per_prompt)
    return _ranked(take_budget(picked.sort(["n_completion_tokens", "trace_id"]), cfg)), {}


def _pass_rate_band(pool: pl.DataFrame, cfg: SelectionConfig) -> tuple[pl.DataFrame, dict]:
    _need(pool, "pass_rate_band", "student_pass_rate")
    band = pool.filter(pl.col("student_pass_rate").is_between(cfg.pass_rate_low, cfg.pass_rate_high))
    res, _ = _random(band, cfg)
    n_prompts = pool["prompt_id"].n_unique()
    return res, {"n_prompts_in_band": band["prompt_id"].n_unique(), "n_prompts_out_of_band": n_prompts - band["prompt_id"].n_unique()}


def normalized_edit_distance(a: str, b: str) -> float:
    """Levenshtein distance / max length, in [0, 1]."""
    if not a and not b:
        return 0.0
    try:
        from rapidfuzz.distance import Levenshtein

        return Levenshtein.normalized_distance(a, b)
    except ImportError:  # plain dynamic programming (fine for short traces); pip install rapidfuzz for speed
        prev = list(range(len(b) + 1))
        for i, ca in enumerate(a, 1):
            cur = [i]
            for j, cb in enumerate(b, 1):
                cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
            prev = cur
        return prev[-1] / max(len(a), len(b))


def farthest_point(texts: list[str], k: int, start: int = 0) -> list[int]:
    """Greedy farthest-point selection: start at `start`, then repeatedly the text farthest from the chosen."""
    chosen = [start]
    nearest = [normalized_edit_distance(texts[start], t) for t in texts]
    while len(chosen) < min(k, len(texts)):
        nxt = max((i for i in range(len(texts)) if i not in chosen), key=lambda i: (nearest[i], -i))
        chosen.append(nxt)
        nearest = [min(d, normalized_edit_distance(texts[nxt], t)) for d, t in zip(nearest, texts)]
    return chosen


def _diverse(pool: pl.DataFrame, cfg: SelectionConfig) -> tuple[pl.DataFrame, dict]:
    _need(pool, "diverse", "verdict_status", "completion_text")
    correct = with_random_key(pool.filter(pl.col("verdict_status") == "correct"), cfg.seed)
    picked: list[pl.DataFrame] = []
    prompts = with_random_key(correct.select("prompt_id").unique(), cfg.seed + 1, "prompt_id", "_prand").sort("_prand")
    groups = {k[0]: g.sort("trace_id") for k, g in correct.group_by("prompt_id")}
    for pid in prompts["prompt_id"].to_list():
        g = groups[pid]
        start = int(g["_rand"].arg_min())  # seeded start, as DED's random first pick
        idx = farthest_point(g["completion_text"].to_list(), cfg.diverse_per_prompt, start)
        picked.append(g[idx])
    ordered = pl.concat(picked) if picked else correct.head(0)
    return _ranked(take_budget(ordered, cfg)), {"distance": "normalized_levenshtein"}


def _redi_pairs(pool: pl.DataFrame, negatives: pl.DataFrame, cfg: SelectionConfig) -> tuple[pl.DataFrame, dict]:
    _need(pool, "redi_pairs", "verdict_status")
    pos = _per_prompt(with_random_key(pool.filter(pl.col("verdict_status") == "correct"), cfg.seed), ["_rand"], [False], 1)
    neg = _per_prompt(with_random_key(negatives, cfg.seed), ["_rand"], [False], 1)
    pairs = pos.join(neg, on="prompt_id", suffix="_neg")
    pairs = with_random_key(pairs, cfg.seed + 1, "prompt_id", "_prand").sort("_prand")
    pairs = pairs.with_columns((pl.col("n_completion_tokens") + pl.col("n_completion_tokens_neg")).alias("_pair_tokens"))
    if cfg.budget_unit == "traces":
        pairs = pairs.head(cfg.budget // 2)
    else:
        pairs = pairs.filter(pl.col("_pair_tokens").cum_sum() <= cfg.budget)
    rank = pl.int_range(1, pl.len() + 1, dtype=pl.Int32).alias("rank")
    rows = pl.concat([
        pairs.select("trace_id", rank, pl.lit(POSITIVE).alias("stage")),
        pairs.select(pl.col("trace_id_neg").alias("trace_id"), rank, pl.lit(NEGATIVE).alias("stage")),
    ]).sort(["rank", "stage"], descending=[False, True])
    return rows, {"n_pairs": pairs.height, "negative_verdict": "incorrect", "budget_counts": "traces (2 per pair)"}


def _temperature_schedule(pool: pl.DataFrame, cfg: SelectionConfig) -> tuple[pl.DataFrame, dict]:
    _need(pool, "temperature_schedule", "temperature")
    keyed = with_random_key(pool.filter(pl.col("temperature").is_not_null()), cfg.seed)
    low_budget = round(cfg.budget * cfg.low_stage_fraction)
    stages = []
    for name, part, budget in (
        (LOW_T, keyed.filter(pl.col("temperature") <= cfg.temperature_split), low_budget),
        (HIGH_T, keyed.filter(pl.col("temperature") > cfg.temperature_split), cfg.budget - low_budget),
    ):
        picked = _per_prompt(part, ["_rand"], [False], cfg.schedule_per_prompt)
        ordered = with_random_key(picked, cfg.seed + 1, "prompt_id", "_prand").sort(["_prand", "_rand"])
        stages.append(take_budget(ordered, cfg, budget).select("trace_id", pl.lit(name).alias("stage")))
    rows = pl.concat(stages).with_columns(pl.int_range(1, pl.len() + 1, dtype=pl.Int32).alias("rank"))
    counts = rows.group_by("stage").len()
    n = dict(zip(counts["stage"].to_list(), counts["len"].to_list()))
    return rows.select("trace_id", "rank", "stage"), {"n_low_temp": n.get(LOW_T, 0), "n_high_temp": n.get(HIGH_T, 0)}


POLICY_FNS = {
    "provenance": _provenance, "random": _random, "longest": _longest, "shortest_correct": _shortest_correct,
    "pass_rate_band": _pass_rate_band, "diverse": _diverse, "temperature_schedule": _temperature_schedule,
    "teacher_ratio": _teacher_ratio, "min_teacher": _min_teacher, "grape": _grape, "rsr": _rsr,
    "length_matched_random": _length_matched_random, "oracle": _oracle,
}


def required_scores(policy: str, cfg: SelectionConfig = SelectionConfig()) -> tuple[str, ...]:
    """The score columns a trace needs to take part in `policy` (length_matched_random: its reference's)."""
    if policy == "length_matched_random":
        return SCORE_COLUMNS.get(cfg.length_reference, ())
    return SCORE_COLUMNS.get(policy, ())


def select_traces(candidates: pl.DataFrame, policy: str, cfg: SelectionConfig = SelectionConfig()) -> SelectionResult:
    """Apply the eligible pool, then `policy`, within the budget; rows are ranked 1..n in selection order."""
    if policy not in POLICIES:
        raise SelectionError(f"unknown policy {policy!r}; choose one of {', '.join(POLICIES)}")
    candidates = candidates.unique("trace_id", keep="first", maintain_order=True)
    pool, rejected, skipped = eligible_pool(candidates, cfg)
    extra: dict = {}
    if policy == "redi_pairs":
        # positives: correct under the pool; negatives: the same pool criteria but verdict `incorrect`
        pool, rejected, skipped = eligible_pool(candidates, cfg, require_verdict=None)
        verdict = pool["verdict_status"] if "verdict_status" in pool.columns else None
        if verdict is None:
            raise SelectionError("policy 'redi_pairs' needs candidate column(s) ['verdict_status']")
        negatives = pool.filter(pl.col("verdict_status") == "incorrect")
        rows, extra = _redi_pairs(pool, negatives, cfg)
    else:
        rows, extra = POLICY_FNS[policy](pool, cfg)
    sizes = candidates.select("trace_id", "n_completion_tokens").join(rows.select("trace_id"), on="trace_id", how="semi")
    reasons = rejected.group_by("reason_code").len().sort("reason_code")
    params = {
        "policy": policy,
        **{k: v for k, v in asdict(cfg).items()},
        "config_fingerprint": str(cfg),
        "criteria_skipped": skipped,
        "n_candidates": candidates.height,
        "n_pool": pool.height,
        "n_selected": rows.height,
        "n_prompts": candidates.filter(pl.col("trace_id").is_in(rows["trace_id"].implode()))["prompt_id"].n_unique(),
        "n_tokens": int(sizes["n_completion_tokens"].fill_null(0).sum()),
        "pool_rejections": dict(zip(reasons["reason_code"].to_list(), reasons["len"].to_list())),
        **extra,
    }
    return SelectionResult(rows=rows, params=params, rejections=rejected)
