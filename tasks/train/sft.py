"""The SFT entry point: one readable function from examples to a checkpoint with a JSON sidecar.

TRL's `SFTTrainer` on conversational prompt/completion examples rendered with the student's own
chat template; the loss falls on the completion (reasoning + answer) only. Full fine-tuning or LoRA
(peft; merged into the saved checkpoint so every consumer loads a plain model). CPU for the toy
world, CUDA with bf16 autocast when present.

Layout under `output_dir` (step-padded names, nanochat style):
    step-000120/            model + tokenizer (save_pretrained)
    step-000120.json        sidecar: resolved config, dataset version + content hash, base model, loss
    resolved_config.json    the config resolved once at the start

>>> result = train_sft(rows, "toyworld/models/student", TrainConfig(), "runs/ft1")   # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from tasks.common.ids import config_fingerprint
from tasks.common.threads import torch_threads
from tasks.train.config import TrainConfig, TrainError, resolve_device
from tasks.train.data import examples_hash, to_sft_examples

SIDECAR_FORMAT = "potstill.checkpoint/1"


@dataclass(frozen=True)
class TrainResult:
    checkpoint_path: str
    n_steps: int
    n_train_tokens: int
    n_completion_tokens: int
    final_loss: float | None
    n_examples: int
    examples_hash: str
    device: str
    precision: str
    train_seconds: float
    loss_history: tuple[tuple[int, float], ...]
    n_steps_planned: int | None = None  # the trainer's max_steps (from max_steps or epochs)
    stop_reason: str = "completed"      # completed | truncated: <why>
    is_truncated: bool = False  # a step-bounded run stopped before train.max_steps (the time cap)
    truncation_reason: str | None = None


def checkpoint_name(step: int) -> str:
    """Step-padded checkpoint name.

    >>> checkpoint_name(120)
    'step-000120'
    """
    return f"step-{step:06d}"


def read_sidecar(checkpoint_path: str | Path) -> dict[str, Any] | None:
    """The sidecar written next to a checkpoint folder, or None for a model that is not ours."""
    path = Path(checkpoint_path)
    sidecar = path.parent / f"{path.name}.json"
    return json.loads(sidecar.read_text()) if sidecar.is_file() else None


def _resolved_config(cfg: TrainConfig, base_model: str, device: str, precision: str, run_info: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": SIDECAR_FORMAT,
        "base_model": base_model,
        "train_config": dataclasses.asdict(cfg),
        "train_config_fingerprint": config_fingerprint(cfg),
        "recipe_fingerprint": str(cfg),
        "device": device,
        "precision": precision,
        **run_info,
    }


def _save_checkpoint(model, tokenizer, output_dir: Path, step: int, sidecar: dict[str, Any], *, merge_lora: bool) -> Path:
    path = output_dir / checkpoint_name(step)
    to_save = model
    if merge_lora and hasattr(model, "merge_and_unload"):
        to_save = model.merge_and_unload()
    to_save.save_pretrained(path)
    tokenizer.save_pretrained(path)
    tmp = path.parent / f"{path.name}.json.tmp"
    tmp.write_text(json.dumps({**sidecar, "step": step, "checkpoint_path": str(path)}, indent=2, default=str))
    tmp.replace(path.parent / f"{path.name}.json")  # sidecar written last: a checkpoint without one is incomplete
    return path


def _callbacks(cfg: TrainConfig, output_dir: Path, tokenizer, sidecar: dict[str, Any], losses: list[tuple[int, float]],
               stopped: dict[str, Any]):
    from transformers import TrainerCallback

    class PotstillCallback(TrainerCallback):
        """Loss history, the wall-clock budget, and step-padded intermediate checkpoints."""

        def __init__(self) -> None:
            self.started = time.monotonic()

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                losses.append((state.global_step, float(logs["loss"])))

        def on_step_end(self, args, state, control, model=None, **kwargs):
            if cfg.max_train_minutes is not None and time.monotonic() - self.started >= cfg.max_train_minutes * 60:
                stopped.setdefault("time_cap_step", state.global_step)
                control.should_training_stop = True
                control.should_log = True
            if cfg.save_every_steps and state.global_step % cfg.save_every_steps == 0 and not control.should_training_stop:
                _save_checkpoint(model, tokenizer, output_dir, state.global_step,
                                 {**sidecar, "is_final": False, "format_detail": "lora adapter" if cfg.method == "lora" else "full"},
                                 merge_lora=False)

    return [PotstillCallback()]


def add_callbacks(trainer, callbacks: list | None) -> None:
    """Attach extra `TrainerCallback`s (e.g. `tasks.train.progress.make_progress_callback`); progress then
    goes to their logger, not as raw dicts to stdout."""
    if not callbacks:
        return
    from transformers.trainer_callback import PrinterCallback

    for callback in callbacks:
        trainer.add_callback(callback)
    trainer.remove_callback(PrinterCallback)


def trainer_args(cfg: TrainConfig, output_dir: Path, device: str, precision: str) -> dict[str, Any]:
    """The `transformers.TrainingArguments` every potstill stage shares (SFT, REDI, OPD)."""
    return {
        "output_dir": str(output_dir / "trainer"),
        "learning_rate": cfg.learning_rate,
        "num_train_epochs": cfg.num_train_epochs,
        "max_steps": cfg.max_steps,
        "per_device_train_batch_size": cfg.per_device_batch_size,
        "gradient_accumulation_steps": cfg.gradient_accumulation_steps,
        "warmup_steps": cfg.warmup_ratio,
        "lr_scheduler_type": cfg.lr_scheduler_type,
        "weight_decay": cfg.weight_decay,
        "max_grad_norm": cfg.max_grad_norm,
        "logging_steps": cfg.logging_steps,
        "save_strategy": "no",
        "report_to": "none",
        "seed": cfg.seed,
        "data_seed": cfg.seed,
        "use_cpu": device == "cpu",
        "bf16": precision == "bf16",
        "include_num_input_tokens_seen": "non_padding",
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
        "activation_checkpointing": device == "cuda" if cfg.activation_checkpointing is None else cfg.activation_checkpointing,
    }


def load_student(base_model: str | Path):
    """(tokenizer, model) of a student in float32, with a chat template and a pad token; TrainError otherwise."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(base_model))
        model = AutoModelForCausalLM.from_pretrained(str(base_model), dtype=torch.float32)
    except (OSError, ValueError) as exc:
        raise TrainError(f"cannot load base model {base_model!r}: {exc}; give a local folder or a reachable hub id") from exc
    if not getattr(tokenizer, "chat_template", None):
        raise TrainError(f"base model {base_model!r} has no chat template; training renders prompts with the student's template")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer, model


def finish_training(trainer, cfg: TrainConfig, tokenizer, output_dir: Path, sidecar: dict[str, Any], losses: list[tuple[int, float]],
                    output, seconds: float, n_examples: int, examples_hash_: str, device: str, precision: str,
                    n_completion_tokens: int, extra: dict[str, Any] | None = None,
                    stopped: dict[str, Any] | None = None) -> TrainResult:
    """Check the loss, write the final checkpoint + sidecar, and return the TrainResult.

    `stopped` is the dict the training callbacks fill (`time_cap_step` when the time cap ended training).
    """
    state = trainer.state
    final_loss = losses[-1][1] if losses else (float(output.training_loss) if output.training_loss is not None else None)
    if final_loss is not None and not math.isfinite(final_loss):
        raise TrainError(f"training diverged: final loss {final_loss}; lower train.learning_rate")
    n_tokens = int(getattr(state, "num_input_tokens_seen", 0) or 0)
    planned = int(state.max_steps or 0) or None
    is_truncated, reason = truncation(cfg, state.global_step, (stopped or {}).get("time_cap_step"))
    stop_reason = f"truncated: {reason}" if is_truncated else "completed"
    final_sidecar = {
        **sidecar,
        "is_final": True,
        "n_steps": state.global_step,
        "n_steps_planned": planned,
        "stop_reason": stop_reason,
        "is_truncated": is_truncated,
        "truncation_reason": reason,
        "n_train_tokens": n_tokens,
        "n_completion_tokens_per_epoch": n_completion_tokens,
        "final_loss": final_loss,
        "mean_train_loss": float(output.training_loss) if output.training_loss is not None else None,
        "loss_history": losses,
        "train_seconds": round(seconds, 3),
        "format_detail": "lora merged into base weights" if cfg.method == "lora" else "full",
        **(extra or {}),
    }
    path = _save_checkpoint(trainer.model, tokenizer, output_dir, state.global_step, final_sidecar, merge_lora=cfg.method == "lora")
    return TrainResult(
        checkpoint_path=str(path),
        n_steps=state.global_step,
        n_train_tokens=n_tokens,
        n_completion_tokens=n_completion_tokens,
        final_loss=final_loss,
        n_examples=n_examples,
        examples_hash=examples_hash_,
        device=device,
        precision=precision,
        train_seconds=seconds,
        loss_history=tuple(losses),
        n_steps_planned=planned,
        stop_reason=stop_reason,
        is_truncated=is_truncated,
        truncation_reason=reason,
    )


def lora_config(cfg: TrainConfig, model, base_model: str | Path):
    """peft LoraConfig for method=lora (targets that exist in the model), else None."""
    if cfg.method != "lora":
        return None
    from peft import LoraConfig

    present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    targets = [m for m in cfg.lora_target_modules if m in present]
    if not targets:
        raise TrainError(f"none of train.lora_target_modules {list(cfg.lora_target_modules)} exist in {base_model!r}")
    return LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=targets, task_type="CAUSAL_LM")


def run_trainer(trainer, cfg: TrainConfig, device: str) -> tuple[Any, float]:
    """`trainer.train()` with the recipe's CPU thread count (`train.cpu_threads`, CPU only); returns (output, seconds)."""
    started = time.monotonic()
    with torch_threads(cfg.cpu_threads if device == "cpu" else None):
        output = trainer.train()
    return output, time.monotonic() - started


def train_sft(
    rows: pl.DataFrame,
    base_model: str | Path,
    cfg: TrainConfig,
    output_dir: str | Path,
    *,
    run_info: dict[str, Any] | None = None,
    callbacks: list | None = None,
) -> TrainResult:
    """Fine-tune `base_model` on `rows` and save `output_dir/step-NNNNNN/` with its sidecar.

    Args:
        rows: `messages` per row, or `prompt`/`reasoning`/`answer` columns (see `tasks.train.data`).
        base_model: a local folder or hub id loadable with `AutoModelForCausalLM`.
        run_info: extra sidecar fields (dataset name, version, content hash, training_run_id).
        callbacks: extra `TrainerCallback`s (e.g. `tasks.train.progress.make_progress_callback`).
    """
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    device, precision = resolve_device(cfg)
    examples = to_sft_examples(rows, system_prompt=cfg.system_prompt)
    run_info = {**(run_info or {}), "n_examples": len(examples), "examples_hash": examples_hash(examples)}
    sidecar = _resolved_config(cfg, str(base_model), device, precision, run_info)
    (output_dir / "resolved_config.json").write_text(json.dumps(sidecar, indent=2, default=str))

    tokenizer, model = load_student(base_model)
    peft_config = lora_config(cfg, model, base_model)
    args = SFTConfig(
        **trainer_args(cfg, output_dir, device, precision),
        max_length=cfg.max_length,
        completion_only_loss=True,
        packing=False,
    )
    losses: list[tuple[int, float]] = []
    stopped: dict[str, Any] = {}
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(examples),
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=_callbacks(cfg, output_dir, tokenizer, sidecar, losses, stopped),
    )
    add_callbacks(trainer, callbacks)
    n_completion_tokens = int(sum(sum(1 for t in labels if t != -100) for labels in trainer.train_dataset["labels"]))
    output, seconds = run_trainer(trainer, cfg, device)
    return finish_training(trainer, cfg, tokenizer, output_dir, sidecar, losses, output, seconds, len(examples),
                           run_info["examples_hash"], device, precision, n_completion_tokens, stopped=stopped)


def truncation(cfg: TrainConfig, n_steps: int, time_cap_step: int | None) -> tuple[bool, str | None]:
    """(is_truncated, reason): a step-bounded run that made fewer than `max_steps` steps is truncated.

    >>> truncation(TrainConfig(max_steps=800, max_train_minutes=4), 696, 696)
    (True, 'time_cap: train.max_train_minutes=4 reached at step 696 of 800')
    >>> truncation(TrainConfig(max_steps=800), 800, None)
    (False, None)
    """
    if cfg.max_steps <= 0 or n_steps >= cfg.max_steps:
        return False, None
    if time_cap_step is not None:
        return True, f"time_cap: train.max_train_minutes={cfg.max_train_minutes:g} reached at step {n_steps} of {cfg.max_steps}"
    return True, f"stopped at step {n_steps} of {cfg.max_steps}"
