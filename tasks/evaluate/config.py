"""Evaluation config: sampling for pass@1/pass@k, apart from the engine (where the model runs).

>>> str(EvalConfig(k=4)).startswith("eval-")
True
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from tasks.common.ids import config_fingerprint


class EvalError(RuntimeError):
    """An eval set, model or setting is unusable; the message names the file, row or field."""


@dataclass(frozen=True)
class EvalConfig:
    k: int = field(default=4, metadata={"help": "k of pass@k (sampled)"})
    n_samples: int | None = field(default=None, metadata={"help": "samples per problem for pass@k (>= k; default k); pass@k uses the unbiased estimator"})
    temperature: float = field(default=0.8, metadata={"help": "sampling temperature for pass@k (pass@1 is always greedy)"})
    top_p: float = field(default=1.0, metadata={"help": "nucleus mass for pass@k samples"})
    max_new_tokens: int = field(default=256, metadata={"help": "max completion tokens; a completion that hits it is truncated"})
    system_prompt: str | None = field(default=None, metadata={"help": "system message (use the one the student was trained with)"})
    limit: int | None = field(default=None, metadata={"help": "evaluate only the first N problems of the set (in file order)"})
    seed: int = field(default=0, metadata={"help": "sampling seed; the same seed gives the same pass@k"})
    # engine knobs (where/how to run) do not change results and stay out of the fingerprint
    backend: str = field(default="hf", metadata={"help": "generation backend: hf | openai | vllm (tasks.generate)", "engine": True})
    batch_size: int = field(default=64, metadata={"help": "prompts decoded together", "engine": True})
    device: str = field(default="auto", metadata={"help": "auto | cpu | cuda", "engine": True})
    shard_size: int = field(default=64, metadata={"help": "problems per Prefect task (one commit each)", "engine": True})
    cpu_threads: int | None = field(
        default=None, metadata={"help": "torch CPU threads for hf generation on CPU (None: torch's default)", "engine": True}
    )

    def __post_init__(self) -> None:
        if self.k < 1:
            raise EvalError(f"evaluate.k must be >= 1, not {self.k}")
        if self.n_samples is not None and self.n_samples < self.k:
            raise EvalError(f"evaluate.n_samples ({self.n_samples}) must be >= k ({self.k})")
        if self.temperature <= 0:
            raise EvalError(f"evaluate.temperature must be > 0 for pass@k sampling, not {self.temperature}")
        if self.max_new_tokens < 1 or self.batch_size < 1 or self.shard_size < 1:
            raise EvalError("evaluate.max_new_tokens, batch_size and shard_size must be >= 1")
        if self.backend not in ("hf", "openai", "vllm"):
            raise EvalError(f"evaluate.backend must be hf, openai or vllm, not {self.backend!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise EvalError(f"evaluate.device must be auto, cpu or cuda, not {self.device!r}")

    @property
    def samples_per_problem(self) -> int:
        return self.n_samples or self.k

    def result_params(self) -> dict[str, Any]:
        """The fields that change results (everything but engine knobs)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if not f.metadata.get("engine")}

    def __str__(self) -> str:
        return "eval-" + config_fingerprint(self.result_params())

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, *, where: str = "evaluate") -> EvalConfig:
        data = dict(data or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise EvalError(f"{where}: unknown key(s) {unknown}; valid keys: {sorted(known)}")
        return cls(**data)
