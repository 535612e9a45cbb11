"""REDI (Reinforcement Distillation, arXiv 2505.24850): the stage after SFT that also learns from negatives.

On (positive y_w, negative y_l) pairs of the same prompt x:

    L = -log pi(y_w|x) / |y_w|  +  alpha * log pi(y_l|x) / |y_l|        (alpha = 0.8)

with |y| the number of completion tokens; averaged over the pairs of a batch. No reference model.
Data, tokenisation and collation are TRL's preference format (`prompt`/`chosen`/`rejected`,
`trl.DPOTrainer` + `DataCollatorForPreference`); only the loss is REDI's.

>>> import torch
>>> lp = torch.tensor([[-1.0, -3.0]]); m = torch.tensor([[1, 1]])
>>> float(redi_loss(lp, m, lp, m, alpha=0.5))   # -(-2) + 0.5 * (-2)
1.0
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from tasks.train.config import TrainConfig, TrainError, resolve_device
from tasks.train.data import examples_hash, to_sft_examples
from tasks.train.sft import (
    TrainResult,
    _callbacks,
    _resolved_config,
    add_callbacks,
    finish_training,
    load_student,
    lora_config,
    run_trainer,
    trainer_args,
)


def redi_loss(chosen_logps, chosen_mask, rejected_logps, rejected_mask, *, alpha: float):
    """Mean over pairs of `-mean_t log pi(y_w,t) + alpha * mean_t log pi(y_l,t)` (per-token log-probs, 0/1 masks)."""
    chosen_mask, rejected_mask = chosen_mask.to(chosen_logps.dtype), rejected_mask.to(rejected_logps.dtype)
    chosen = (chosen_logps * chosen_mask).sum(-1) / chosen_mask.sum(-1).clamp(min=1)
    rejected = (rejected_logps * rejected_mask).sum(-1) / rejected_mask.sum(-1).clamp(min=1)
    return (-chosen + alpha * rejected).mean()


def to_pair_examples(rows: pl.DataFrame, *, system_prompt: str | None = None) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """TRL preference examples (prompt/chosen/rejected, conversational) from a dataset's positive and negative rows.

    Rows need `trace_id`, `prompt_id`, `stage` (positive | negative), `prompt`, `reasoning`, `answer`.
    Positives and negatives of one prompt are paired in rank order; a prompt without both sides is
    returned in the second list as (trace_id, reason) with reason `redi_unpaired`.
    """
    missing = [c for c in ("trace_id", "prompt_id", "stage", "prompt", "answer") if c not in rows.columns]
    if missing:
        raise TrainError(f"REDI pairs need columns {missing}")
    order = "rank" if "rank" in rows.columns else "trace_id"
    pos = rows.filter(pl.col("stage") == "positive").sort(order)
    neg = rows.filter(pl.col("stage") == "negative").sort(order)
    pos = pos.with_columns(pl.int_range(pl.len()).over("prompt_id").alias("_k"))
    neg = neg.with_columns(pl.int_range(pl.len()).over("prompt_id").alias("_k"))
    pairs = pos.join(neg, on=["prompt_id", "_k"], suffix="_neg", how="inner").sort(order)
    paired = set(pairs["trace_id"].to_list()) | set(pairs["trace_id_neg"].to_list())
    unpaired = [(t, "redi_unpaired") for t in pl.concat([pos, neg])["trace_id"].to_list() if t not in paired]
    if pairs.height == 0:
        raise TrainError("REDI: the dataset has no prompt with both a positive and a negative trace")
    chosen = to_sft_examples(pairs.select("prompt", "reasoning", "answer"), system_prompt=system_prompt)
    rejected = to_sft_examples(
        pairs.select("prompt", pl.col("reasoning_neg").alias("reasoning"), pl.col("answer_neg").alias("answer")),
        system_prompt=system_prompt,
    )
    examples = [{"prompt": c["prompt"], "chosen": c["completion"], "rejected": r["completion"]} for c, r in zip(chosen, rejected)]
    return examples, unpaired


def _redi_trainer_class():
    import torch
    from trl import DPOTrainer

    class RediTrainer(DPOTrainer):
        """`trl.DPOTrainer` with the REDI loss: no reference model, length-normalised pair terms."""

        def __init__(self, *args, redi_alpha: float = 0.8, **kwargs):
            super().__init__(*args, **kwargs)
            self.redi_alpha = redi_alpha
            self.ref_model = None  # REDI has no reference term: free the copy DPOTrainer loads

        def _compute_loss(self, model, inputs, return_outputs):
            mode = "train" if self.model.training else "eval"
            completion_mask = inputs["completion_mask"]
            model_kwargs = {k: v for k, v in inputs.items() if k not in {"completion_mask", "ref_chosen_logps", "ref_rejected_logps"}}
            labels = inputs["input_ids"].masked_fill(completion_mask == 0, -100)
            outputs = model(**model_kwargs, labels=labels, use_cache=False, fused_lm_head=True)
            shift_mask = completion_mask[..., 1:]
            per_token_logps = outputs.log_probs[:, -shift_mask.size(1):]
            chosen_logps, rejected_logps = per_token_logps.chunk(2, dim=0)  # the collator stacks [chosen; rejected]
            chosen_mask, rejected_mask = shift_mask.chunk(2, dim=0)
            loss = redi_loss(chosen_logps, chosen_mask, rejected_logps, rejected_mask, alpha=self.redi_alpha)
            with torch.no_grad():
                cm, rm = chosen_mask.float(), rejected_mask.float()
                chosen_mean = (chosen_logps * cm).sum(-1) / cm.sum(-1).clamp(min=1)
                rejected_mean = (rejected_logps * rm).sum(-1) / rm.sum(-1).clamp(min=1)
                self._metrics[mode]["logps/chosen_per_token"].append(chosen_mean.mean().item())
                self._metrics[mode]["logps/rejected_per_token"].append(rejected_mean.mean().item())
                self._metrics[mode]["margin_per_token"].append((chosen_mean - rejected_mean).mean().item())
            return (loss, outputs) if return_outputs else loss

    return RediTrainer


def train_redi(
    rows: pl.DataFrame,
    base_model: str | Path,
    cfg: TrainConfig,
    output_dir: str | Path,
    *,
    alpha: float = 0.8,
    run_info: dict[str, Any] | None = None,
    callbacks: list | None = None,
) -> TrainResult:
    """The REDI stage: train `base_model` (the SFT checkpoint) on the dataset's (positive, negative) pairs.

    Saves `output_dir/step-NNNNNN/` with its sidecar, like `train_sft`.
    """
    from datasets import Dataset
    from trl import DPOConfig

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    device, precision = resolve_device(cfg)
    examples, unpaired = to_pair_examples(rows, system_prompt=cfg.system_prompt)
    run_info = {**(run_info or {}), "n_examples": len(examples), "examples_hash": examples_hash(examples),
                "redi_alpha": alpha, "n_unpaired": len(unpaired)}
    sidecar = _resolved_config(cfg, str(base_model), device, precision, run_info)
    (output_dir / "resolved_config.json").write_text(json.dumps(sidecar, indent=2, default=str))

    tokenizer, model = load_student(base_model)
    args = DPOConfig(
        **trainer_args(cfg, output_dir, device, precision),
        max_length=cfg.max_length,
        truncation_mode="keep_start",
    )
    losses: list[tuple[int, float]] = []
    stopped: dict[str, Any] = {}
    trainer = _redi_trainer_class()(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(examples),
        processing_class=tokenizer,
        peft_config=lora_config(cfg, model, base_model),
        callbacks=_callbacks(cfg, output_dir, tokenizer, sidecar, losses, stopped),
        redi_alpha=alpha,
    )
    data = trainer.train_dataset
    add_callbacks(trainer, callbacks)
    n_completion_tokens = int(sum(len(x) for x in data["chosen_ids"]) + sum(len(x) for x in data["rejected_ids"]))
    output, seconds = run_trainer(trainer, cfg, device)
    return finish_training(trainer, cfg, tokenizer, output_dir, sidecar, losses, output, seconds, len(examples),
                           run_info["examples_hash"], device, precision, n_completion_tokens,
                           extra={"stage": "redi", "redi_alpha": alpha}, stopped=stopped)
