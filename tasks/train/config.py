"""Training config (algorithm knobs) and training recipes (versioned YAML under deployments/recipes/).

Engine/optimisation knobs live in `TrainConfig`; evaluation sampling lives in the recipe's `evaluate`
block (`tasks.evaluate.EvalConfig`), never mixed with training.

>>> cfg = TrainConfig(method="lora", lora_r=8)
>>> str(cfg).startswith("sft-lora-")
True
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks.common.ids import config_fingerprint

REPO = Path(__file__).resolve().parents[2]
RECIPES_DIR = REPO / "deployments" / "recipes"


class TrainError(RuntimeError):
    """A training input, config or run is unusable; the message says which and what to do."""


@dataclass(frozen=True)
class TrainConfig:
    method: str = field(default="full", metadata={"help": "full (all weights) or lora (peft adapters, merged into the saved checkpoint)"})
    learning_rate: float = field(default=1e-3, metadata={"help": "peak learning rate (toy students: 1e-3 full FT; real 1-8B students: ~1e-5 full, ~2e-4 LoRA)"})
    num_train_epochs: float = field(default=3.0, metadata={"help": "passes over the dataset (ignored when max_steps > 0)"})
    max_steps: int = field(default=-1, metadata={"help": "stop after this many optimiser steps; -1 = use num_train_epochs"})
    max_train_minutes: float | None = field(default=None, metadata={"help": "wall-clock budget: stop at the first step after it (keeps experiments within a time box)"})
    per_device_batch_size: int = field(default=16, metadata={"help": "sequences per device per micro-batch"})
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "micro-batches per optimiser step"})
    max_length: int = field(default=512, metadata={"help": "max tokens per training sequence (prompt + completion); longer ones are truncated on the right"})
    warmup_ratio: float = field(default=0.05, metadata={"help": "fraction of steps with linear warmup"})
    lr_scheduler_type: str = field(default="cosine", metadata={"help": "transformers scheduler name (cosine, linear, constant, ...)"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay"})
    max_grad_norm: float = field(default=1.0, metadata={"help": "gradient clipping norm"})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank (method=lora)"})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA scaling alpha (method=lora)"})
    lora_dropout: float = field(default=0.0, metadata={"help": "LoRA dropout (method=lora)"})
    lora_target_modules: tuple[str, ...] = field(
        default=("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
        metadata={"help": "module names that get LoRA adapters (method=lora)"},
    )
    device: str = field(default="auto", metadata={"help": "auto (cuda when present, else cpu), cpu or cuda"})
    cpu_threads: int | None = field(
        default=None,
        metadata={"help": "torch CPU threads while training on CPU (None: torch's default, one per core); 1 keeps a tiny "
                          "student fast when other processes share the cores (with 2 threads it can slow 30-50x there)",
                  "fingerprint": False},
    )
    precision: str = field(default="auto", metadata={"help": "auto (bf16 on CUDA with bf16 support, else fp32), bf16 or fp32"})
    activation_checkpointing: bool | None = field(
        default=None,
        metadata={"help": "recompute activations in the backward pass to save memory; default: on for CUDA (large students), off on CPU (~25% faster for tiny ones)"},
    )
    save_every_steps: int = field(default=0, metadata={"help": "also write an intermediate checkpoint every N steps; 0 = final checkpoint only"})
    logging_steps: int = field(default=10, metadata={"help": "log the loss every N steps"})
    system_prompt: str | None = field(default=None, metadata={"help": "system message prepended to every training prompt (must match evaluation)"})
    seed: int = field(default=0, metadata={"help": "seed for init of adapters, data order and dropout"})

    def __post_init__(self) -> None:
        if self.method not in ("full", "lora"):
            raise TrainError(f"train.method must be 'full' or 'lora', not {self.method!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise TrainError(f"train.device must be auto, cpu or cuda, not {self.device!r}")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise TrainError(f"train.precision must be auto, bf16 or fp32, not {self.precision!r}")
        if self.learning_rate <= 0:
            raise TrainError(f"train.learning_rate must be > 0, not {self.learning_rate}")
        if self.per_device_batch_size < 1 or self.gradient_accumulation_steps < 1:
            raise TrainError("train.per_device_batch_size and gradient_accumulation_steps must be >= 1")
        if self.max_steps <= 0 and self.num_train_epochs <= 0:
            raise TrainError("set train.max_steps > 0 or train.num_train_epochs > 0")
        if not 0 <= self.warmup_ratio < 1:
            raise TrainError(f"train.warmup_ratio must be in [0, 1), not {self.warmup_ratio}")
        if isinstance(self.lora_target_modules, list):
            object.__setattr__(self, "lora_target_modules", tuple(self.lora_target_modules))

    def __str__(self) -> str:
        return f"sft-{self.method}-{config_fingerprint(self)}"

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, *, where: str = "train") -> TrainConfig:
        """Build from a recipe block; unknown keys are an error naming the valid ones."""
        data = dict(data or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise TrainError(f"{where}: unknown key(s) {unknown}; valid keys: {sorted(known)}")
        return cls(**data)


def resolve_device(cfg: TrainConfig) -> tuple[str, str]:
    """(device, precision) actually used: CUDA + bf16 when present and asked for `auto`."""
    import torch

    has_cuda = torch.cuda.is_available()
    if cfg.device == "cuda" and not has_cuda:
        raise TrainError("train.device=cuda but torch sees no CUDA device; use device=auto or cpu")
    device = "cuda" if (cfg.device == "cuda" or (cfg.device == "auto" and has_cuda)) else "cpu"
    if cfg.precision == "bf16":
        if device == "cuda" and not torch.cuda.is_bf16_supported():
            raise TrainError("train.precision=bf16 but this GPU has no bf16 support; use precision=auto or fp32")
        precision = "bf16"
    elif cfg.precision == "fp32":
        precision = "fp32"
    else:
        precision = "bf16" if device == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
    return device, precision
