"""Training methods: which stages a method runs and which rows of a dataset version each stage reads.

A method is selectable by name (recipe key `method`, flow parameter `method`), so each can become an
arm of an ablation: `sft` (plain SFT), `sft+redi` (SFT on positives, then REDI on pairs),
`sft+opd` (SFT, then offline on-policy distillation on the student's own rollouts) and `schedule`
(the temperature-schedule curriculum: low-temperature rows, then high-temperature rows).

Every row of a dataset version carries the `stage` its selection policy gave it (`main`,
`positive`/`negative` for `redi_pairs`, `low_temp`/`high_temp` for `temperature_schedule`).
Fine-tuning checks those against the method before anything is trained.

>>> [s.name for s in plan_stages("sft+redi", "redi_pairs", ["positive", "negative"])]
['sft', 'redi']
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from tasks.train.config import TrainConfig, TrainError

METHODS = ("sft", "sft+redi", "sft+opd", "schedule")
MAIN, POSITIVE, NEGATIVE, LOW_T, HIGH_T = "main", "positive", "negative", "low_temp", "high_temp"


@dataclass(frozen=True)
class StagePlan:
    name: str                      # sft | redi | opd | low_temp | high_temp
    row_stages: tuple[str, ...]    # dataset-row stages this training stage reads (empty: none, e.g. OPD's rollouts)


@dataclass(frozen=True)
class RediConfig:
    alpha: float = field(default=0.8, metadata={"help": "weight of the negative term (REDI paper default 0.8)"})
    train: dict[str, Any] = field(
        default_factory=dict,
        metadata={"help": "overrides of the train section for the REDI stage (the paper uses learning_rate 1e-6 at scale)"},
    )

    def __post_init__(self) -> None:
        if not 0 <= self.alpha <= 1:
            raise TrainError(f"redi.alpha must be in [0, 1], not {self.alpha}")


@dataclass(frozen=True)
class RolloutConfig:
    n: int = field(default=1, metadata={"help": "rollouts per prompt from the SFT student"})
    temperature: float = field(default=1.0, metadata={"help": "sampling temperature of the rollouts"})
    max_tokens: int = field(default=256, metadata={"help": "max new tokens per rollout"})
    split: str = field(default="train", metadata={"help": "prompts of this split are rolled out"})
    limit: int | None = field(default=None, metadata={"help": "at most this many prompts (None = all of the split)"})
    batch_size: int = field(default=32, metadata={"help": "rollouts decoded per batch (hf backend)"})
    seed: int = field(default=0, metadata={"help": "sampling seed"})


@dataclass(frozen=True)
class OPDConfig:
    teacher: str = field(default="", metadata={"help": "the teacher that wrote the SFT data (its folder or hub id): it scores the rollouts"})
    clip: float = field(default=2.0, metadata={"help": "advantages log pi_T - log pi_student are clipped to [-clip, clip] (our default)"})
    max_tokens: int = field(default=256, metadata={"help": "rollouts are truncated to this many tokens for training"})
    rollouts: RolloutConfig = field(default_factory=RolloutConfig, metadata={"help": "how the SFT student is sampled"})
    train: dict[str, Any] = field(default_factory=dict, metadata={"help": "overrides of the train section for the OPD stage"})

    def __post_init__(self) -> None:
        if isinstance(self.rollouts, dict):
            object.__setattr__(self, "rollouts", _from_dict(RolloutConfig, self.rollouts, "opd.rollouts"))
        if self.clip <= 0:
            raise TrainError(f"opd.clip must be > 0, not {self.clip}")
        if self.max_tokens < 1:
            raise TrainError(f"opd.max_tokens must be >= 1, not {self.max_tokens}")


def _from_dict(cls, data: dict[str, Any] | None, where: str):
    data = dict(data or {})
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise TrainError(f"{where}: unknown key(s) {unknown}; valid keys: {sorted(known)}")
    return cls(**data)


def redi_config(data: dict[str, Any] | None, where: str = "redi") -> RediConfig:
    return _from_dict(RediConfig, data, where)


def opd_config(data: dict[str, Any] | None, where: str = "opd") -> OPDConfig:
    return _from_dict(OPDConfig, data, where)


def stage_train_config(base: TrainConfig, overrides: dict[str, Any], where: str) -> TrainConfig:
    """The train section with a stage's overrides applied (validated like the section itself)."""
    merged = {**dataclasses.asdict(base), **(overrides or {})}
    return TrainConfig.from_dict(merged, where=where)


def check_method(method: str, *, where: str = "method") -> str:
    if method not in METHODS:
        raise TrainError(f"{where}: unknown training method {method!r}; choose one of {', '.join(METHODS)}")
    return method


def plan_stages(method: str, policy: str, row_stages: list[str]) -> list[StagePlan]:
    """The training stages `method` runs on a dataset version of `policy` whose rows carry `row_stages`.

    Raises TrainError in one line when the method cannot train on that dataset (e.g. SFT on a
    dataset with negatives), naming the policy and the method to use instead.
    """
    check_method(method)
    present = set(row_stages)
    if method in ("sft", "sft+opd"):
        if NEGATIVE in present:
            raise TrainError(
                f"method {method!r} refuses a {policy!r} dataset: it contains negatives (incorrect traces), "
                "which SFT would learn as targets; use method 'sft+redi'"
            )
        if {LOW_T, HIGH_T} & present and method == "sft":
            raise TrainError(
                f"method 'sft' refuses a {policy!r} dataset: its rows are ordered low_temp then high_temp and SFT "
                "would shuffle them together; use method 'schedule'"
            )
        stages = [StagePlan("sft", tuple(sorted(present)))]
        return stages + [StagePlan("opd", ())] if method == "sft+opd" else stages
    if method == "sft+redi":
        if not {POSITIVE, NEGATIVE} <= present:
            raise TrainError(
                f"method 'sft+redi' needs (positive, negative) pairs, but the {policy!r} dataset has stages "
                f"{sorted(present)}; select with policy 'redi_pairs'"
            )
        return [StagePlan("sft", (POSITIVE,)), StagePlan("redi", (POSITIVE, NEGATIVE))]
    # schedule
    if not {LOW_T, HIGH_T} <= present or present - {LOW_T, HIGH_T}:
        raise TrainError(
            f"method 'schedule' needs only low_temp and high_temp rows, but the {policy!r} dataset has stages "
            f"{sorted(present)}; select with policy 'temperature_schedule'"
        )
    return [StagePlan(LOW_T, (LOW_T,)), StagePlan(HIGH_T, (HIGH_T,))]


def split_steps(total_steps: int, counts: list[int]) -> list[int]:
    """Optimiser steps per consecutive stage, proportional to its rows, at least 1 each, summing to `total_steps`.

    >>> split_steps(100, [30, 10])
    [75, 25]
    """
    if total_steps < len(counts):
        raise TrainError(f"train.max_steps={total_steps} is fewer than the {len(counts)} stages of the schedule")
    n = sum(counts)
    steps = [max(1, round(total_steps * c / n)) for c in counts]
    steps[-1] = total_steps - sum(steps[:-1])
    if steps[-1] < 1:
        steps[0] += steps[-1] - 1
        steps[-1] = 1
    return steps
