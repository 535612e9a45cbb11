"""Pure pieces of the training-methods ablation: arms, presets, per-arm datasets from one shared set of
positives, the step budget of each arm's stages, and the equality checks.

An *arm* is a training method (`tasks.train.methods.METHODS`): `sft`, `sft+redi`, `sft+opd`,
`schedule`. Every arm starts from the same positives: per prompt of a seeded random draw of
`budget` prompts, one correct trace of the one teacher (the teacher OPD scores with), so

- `sft` trains on those rows (the reference arm);
- `sft+redi` trains SFT on the same rows, then REDI on (that positive, an incorrect trace of the same
  prompt) pairs; the negative is the teacher's own when it has one, else another teacher's;
- `sft+opd` trains SFT on the same rows, then OPD on the SFT student's own rollouts;
- `schedule` trains on the same rows ordered low temperature (<= `temperature_split`) then high.

Steps are optimiser steps, counted over all stages: every arm makes `total_steps`. A two-stage arm
spends `second_stage_steps` of them on its second stage (REDI or OPD) and the rest on SFT; the
schedule splits `total_steps` between its stages in proportion to their rows. A REDI step sees
`per_device_batch_size` pairs (2 sequences each), an OPD step that many rollouts.

>>> step_plan("sft+redi", 300, 60)
{'sft': 240, 'redi': 60}
>>> step_plan("schedule", 300, 60)
{'low_temp+high_temp': 300}
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from tasks.common.ids import stable_hash
from tasks.experiment.ablation import ExperimentError
from tasks.select.policies import (
    HIGH_T,
    LOW_T,
    MAIN,
    NEGATIVE,
    POSITIVE,
    SelectionConfig,
    eligible_pool,
    with_random_key,
)

METHOD_ARMS = ("sft", "sft+redi", "sft+opd", "schedule")
REFERENCE_METHOD = "sft"
SECOND_STAGE = {"sft+redi": "redi", "sft+opd": "opd"}
# the dataset each arm trains on (sft+opd: the sft rows; its second stage reads its own rollouts)
DATASET_OF = {"sft": "sft", "sft+opd": "sft", "sft+redi": "redi", "schedule": "schedule"}
POLICY_OF = {"sft": "method_positives", "redi": "redi_pairs", "schedule": "temperature_schedule"}
# the OPD stage stores its student's rollouts as traces of a model named sft-<training run id>
# (flows/finetune.py): they are never positives or negatives
ROLLOUT_MODEL_PREFIX = "sft-tr_"


@dataclass(frozen=True)
class MethodsPreset:
    arms: tuple[str, ...]
    seeds: tuple[int, ...]
    budget: int                 # prompts (= SFT rows) per arm
    total_steps: int | None     # None: the recipe's train.max_steps
    second_stage_steps: int | None  # None: a fifth of total_steps
    eval_k: int | None
    description: str


PRESETS = {
    # quick: the four methods, seed 0, 300 optimiser steps per arm (REDI/OPD: 240 SFT + 60), 120 prompts (the
    # demo's warehouse plus teacher-a at T=1.0 has ~147 prompts with both a correct teacher-a trace and an
    # incorrect trace); greedy pass@1 on the whole held-out set. Sized for the 2-core CPU machine.
    "quick": MethodsPreset(arms=METHOD_ARMS, seeds=(0,), budget=120, total_steps=300, second_stage_steps=60, eval_k=1,
                           description="sft, sft+redi, sft+opd, schedule; seed 0; 300 steps per arm (240 SFT + 60 second stage)"),
    # paper: the same arms x seeds 0,1,2 at the recipe's step bound; meant for a GPU worker
    "paper": MethodsPreset(arms=METHOD_ARMS, seeds=(0, 1, 2), budget=400, total_steps=None, second_stage_steps=None, eval_k=None,
                           description="every method x seeds 0,1,2 at the recipe's step bound (GPU)"),
}


def parse_method_arms(arms: list[str] | tuple[str, ...]) -> list[str]:
    arms = [a.strip() for a in arms if a and a.strip()]
    unknown = [a for a in arms if a not in METHOD_ARMS]
    if unknown:
        raise ExperimentError(f"unknown method arm(s) {unknown}; choose from {', '.join(METHOD_ARMS)}")
    if not arms or len(set(arms)) != len(arms):
        raise ExperimentError(f"method arms must be distinct and non-empty, got {arms}")
    return arms


def second_stage_default(total_steps: int) -> int:
    """A fifth of the steps (at least 1) for REDI / OPD when not given."""
    return max(1, total_steps // 5)


def step_plan(arm: str, total_steps: int, second_stage_steps: int) -> dict[str, int]:
    """Planned optimiser steps per stage of `arm`, summing to `total_steps` (the schedule's split is by rows, at training time)."""
    if total_steps < 2:
        raise ExperimentError(f"total steps per arm must be >= 2 (got {total_steps})")
    if arm in SECOND_STAGE:
        if not 1 <= second_stage_steps < total_steps:
            raise ExperimentError(f"second-stage steps must be in [1, {total_steps - 1}] (got {second_stage_steps}): "
                                  f"{arm} trains SFT for total - second-stage steps")
        return {"sft": total_steps - second_stage_steps, SECOND_STAGE[arm]: second_stage_steps}
    if arm == "schedule":
        return {f"{LOW_T}+{HIGH_T}": total_steps}
    return {"sft": total_steps}


def methods_experiment_id(arms: list[str], budget: int, seeds: list[int], teacher: str, base_model: str, train_fingerprint: str,
                          total_steps: int, second_stage_steps: int, eval_fingerprint: str, eval_set_hash: str,
                          data_fingerprint: str) -> str:
    """As `experiment_id_for`: the same settings on the same candidates (`data_fingerprint`) → the same id."""
    return "exm_" + stable_hash(sorted(arms), budget, sorted(seeds), teacher, base_model, train_fingerprint, total_steps,
                                second_stage_steps, eval_fingerprint, eval_set_hash, data_fingerprint)


def method_datasets(candidates: pl.DataFrame, *, teacher_model_id: str, budget: int, seed: int, temperature_split: float = 0.8,
                    cfg: SelectionConfig | None = None) -> tuple[dict[str, pl.DataFrame], dict]:
    """The rows (trace_id, rank, stage) of each dataset the arms train on, from one draw of positives.

    `candidates`: the selection candidates (trace_id, prompt_id, model_id, temperature, verdict_status,
    n_completion_tokens and the eligibility columns). Eligibility other than the verdict (dedup,
    contamination, quality) applies to positives and negatives alike. A prompt takes part only when it
    has a correct trace of `teacher_model_id` and an incorrect trace of any teacher (REDI needs the
    pair); `budget` of those prompts are drawn at random (seeded), never ranked by a score.
    Returns ({"sft": ..., "redi": ..., "schedule": ...}, report).
    """
    need = [c for c in ("trace_id", "prompt_id", "model_id", "temperature", "verdict_status", "n_completion_tokens")
            if c not in candidates.columns]
    if need:
        raise ExperimentError(f"candidates lack column(s) {need}: run generation and verification first")
    cfg = cfg or SelectionConfig()
    rollout = pl.col("model_id").fill_null("").str.starts_with(ROLLOUT_MODEL_PREFIX)
    n_rollouts = int(candidates.select(rollout.sum()).item())
    candidates = candidates.filter(~rollout)
    pool, rejected, skipped = eligible_pool(candidates.unique("trace_id", keep="first", maintain_order=True), cfg, require_verdict=None)
    teachers = sorted(pool["model_id"].drop_nulls().unique().to_list())
    if teacher_model_id not in teachers:
        raise ExperimentError(f"teacher {teacher_model_id!r} has no eligible traces (teachers in the pool: {teachers}); "
                              "generate with it first (the OPD arm needs the teacher that wrote the SFT data)")
    pos = with_random_key(pool.filter((pl.col("model_id") == teacher_model_id) & (pl.col("verdict_status") == "correct")
                                      & pl.col("temperature").is_not_null()), seed)
    neg = with_random_key(pool.filter(pl.col("verdict_status") == "incorrect"), seed)
    pos = pos.sort("_rand").unique("prompt_id", keep="first", maintain_order=True)
    # the teacher's own incorrect trace first, then any other teacher's, random within each
    neg = (neg.with_columns((pl.col("model_id") != teacher_model_id).alias("_other"))
           .sort(["_other", "_rand"]).unique("prompt_id", keep="first", maintain_order=True))
    both = pos.join(neg.select("prompt_id", pl.col("trace_id").alias("neg_trace_id"), pl.col("model_id").alias("neg_model_id"),
                               pl.col("n_completion_tokens").alias("neg_tokens")), on="prompt_id", how="inner")
    report = {"n_candidates": candidates.height, "n_student_rollouts_excluded": n_rollouts, "n_eligible_any_verdict": pool.height, "criteria_skipped": skipped,
              "pool_rejections": dict(zip(*[rejected.group_by("reason_code").len().sort("reason_code")[c].to_list()
                                            for c in ("reason_code", "len")])),
              "teacher": teacher_model_id, "n_prompts_with_teacher_positive": pos.height,
              "n_prompts_with_negative": neg.height, "n_prompts_with_both": both.height}
    if both.height < budget:
        raise ExperimentError(f"only {both.height} prompts have both a correct {teacher_model_id} trace and an incorrect trace "
                              f"(REDI needs the pair); lower --budget to at most {both.height} or generate more samples")
    drawn = with_random_key(both, seed + 1, "prompt_id", "_prand").sort("_prand").head(budget)
    rank = pl.int_range(1, pl.len() + 1, dtype=pl.Int32).alias("rank")
    sft = drawn.select("trace_id", rank, pl.lit(MAIN).alias("stage"))
    redi = pl.concat([
        drawn.select("trace_id", rank, pl.lit(POSITIVE).alias("stage")),
        drawn.select(pl.col("neg_trace_id").alias("trace_id"), rank, pl.lit(NEGATIVE).alias("stage")),
    ]).sort(["rank", "stage"], descending=[False, True])
    staged = drawn.with_columns(pl.when(pl.col("temperature") <= temperature_split).then(pl.lit(LOW_T)).otherwise(pl.lit(HIGH_T))
                                .alias("stage"))
    schedule = pl.concat([staged.filter(pl.col("stage") == LOW_T), staged.filter(pl.col("stage") == HIGH_T)]).select(
        "trace_id", rank, "stage")
    n_low = int((staged["stage"] == LOW_T).sum())
    if n_low in (0, budget):
        temps = sorted(drawn["temperature"].unique().to_list())
        raise ExperimentError(f"the positives' temperatures are {temps}: the schedule needs rows at or below {temperature_split} and "
                              f"above it; generate {teacher_model_id} at two temperatures (e.g. 0.6 and 1.0)")
    report.update(n_prompts=budget, n_sft_rows=sft.height, n_sft_tokens=int(drawn["n_completion_tokens"].fill_null(0).sum()),
                  n_redi_pairs=budget, n_negatives_same_teacher=int((drawn["neg_model_id"] == teacher_model_id).sum()),
                  n_negative_tokens=int(drawn["neg_tokens"].fill_null(0).sum()), n_low_temp=n_low, n_high_temp=budget - n_low,
                  temperature_split=temperature_split)
    return {"sft": sft, "redi": redi, "schedule": schedule}, report


def check_same_positives(datasets: dict[str, pl.DataFrame]) -> None:
    """Refuse unless every arm's SFT data are the same traces: sft rows = REDI positives = schedule rows."""
    sft = set(datasets["sft"]["trace_id"].to_list())
    positives = set(datasets["redi"].filter(pl.col("stage") == POSITIVE)["trace_id"].to_list())
    schedule = set(datasets["schedule"]["trace_id"].to_list())
    if not sft == positives == schedule:
        raise ExperimentError(f"the arms' SFT rows differ (sft {len(sft)}, REDI positives {len(positives)}, schedule {len(schedule)}, "
                              f"shared {len(sft & positives & schedule)}); an unequal comparison is refused")


def check_stage_steps(arms: list[dict]) -> None:
    """Refuse arms whose stages did not make their planned steps, or whose totals differ, or that were truncated.

    Each arm: {"arm", "seed", "stages": [{"stage", "n_steps", "max_steps", "is_truncated", "truncation_reason"}]}.
    """
    for a in arms:
        for s in a["stages"]:
            if s.get("is_truncated"):
                raise ExperimentError(f"arm {a['arm']} seed {a['seed']}: stage {s['stage']} was truncated ({s.get('truncation_reason')}); "
                                      "arms are compared only at their full step bound")
            if s.get("max_steps") is not None and s["n_steps"] != s["max_steps"]:
                raise ExperimentError(f"arm {a['arm']} seed {a['seed']}: stage {s['stage']} made {s['n_steps']} of {s['max_steps']} planned "
                                      "steps; an unequal comparison is refused")
    totals = {(a["arm"], a["seed"]): sum(int(s["n_steps"] or 0) for s in a["stages"]) for a in arms}
    if len(set(totals.values())) > 1:
        listing = ", ".join(f"{arm}/s{seed}={n}" for (arm, seed), n in totals.items())
        raise ExperimentError(f"arms made different total numbers of optimiser steps ({listing}); an unequal comparison is refused")
