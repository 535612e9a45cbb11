"""Offline on-policy distillation (Lightning OPD, arXiv 2604.13010): train on the SFT student's own rollouts.

Each rollout token y_t (sampled by the SFT student) carries a fixed advantage

    A_t = clip(log pi_T(y_t) - log pi_student(y_t), -c, c)

where log pi_T is the score of the teacher that wrote the SFT data (teacher consistency) and
log pi_student the rollout-time student's own log-prob (offline: it is not recomputed while
training). Rollouts are truncated to `max_tokens` student tokens. The loss is the policy-gradient
form with fixed advantages, normalised by the number of rollout tokens in the batch:

    L = -sum_t A_t * log pi_theta(y_t) / n_tokens

When teacher and student tokenize differently, the teacher's log-prob of a student token is the sum
of the teacher's log-probs over the characters that token spans (exact when every student token
boundary is also a teacher boundary; rows where that fails are rejected as
`opd_tokenization_mismatch`).

>>> align_teacher_logprobs([0, 2], [0, 1, 2], [-0.5, -0.25, -1.0], n_chars=3)
[-0.75, -1.0]
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tasks.train.config import TrainConfig, TrainError, resolve_device
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


def align_teacher_logprobs(student_starts: list[int], teacher_starts: list[int], teacher_logprobs: list[float],
                           *, n_chars: int) -> list[float] | None:
    """The teacher's log-prob of each student token (sum over the teacher tokens starting inside its span).

    None when a student token boundary is not a teacher token boundary (no exact alignment) or the
    teacher's tokens do not cover the student's text.
    """
    if not student_starts:
        return []
    bounds = set(teacher_starts) | {n_chars}
    ends = list(student_starts[1:]) + [n_chars]
    if any(s not in bounds for s in student_starts) or (teacher_starts and teacher_starts[0] != student_starts[0]):
        return None
    out: list[float] = []
    j, n_t = 0, len(teacher_starts)
    for start, end in zip(student_starts, ends):
        while j < n_t and teacher_starts[j] < start:
            j += 1
        total, seen = 0.0, False
        while j < n_t and teacher_starts[j] < end:
            total += teacher_logprobs[j]
            seen = True
            j += 1
        if not seen and end > start:
            return None  # the teacher's scores stop before this token (truncated scoring)
        out.append(total)
    return out


def clipped_advantages(teacher_logprobs: list[float], student_logprobs: list[float], clip: float) -> list[float]:
    """`clip(log pi_T - log pi_student, -clip, clip)` per token.

    >>> clipped_advantages([-0.1, -5.0], [-2.0, -0.5], 1.5)
    [1.5, -1.5]
    """
    return [max(-clip, min(clip, t - s)) for t, s in zip(teacher_logprobs, student_logprobs, strict=True)]


def opd_loss(logps, advantages, mask):
    """`-sum(A * log pi_theta * mask) / sum(mask)` over the batch (fixed advantages, token-normalised)."""
    mask = mask.to(logps.dtype)
    return -(advantages.to(logps.dtype) * logps * mask).sum() / mask.sum().clamp(min=1)


def opd_examples(rollouts: list[dict[str, Any]], tokenizer, *, clip: float, max_tokens: int,
                 system_prompt: str | None = None) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """Training examples (prompt_ids, completion_ids, advantages) from scored rollouts.

    Each rollout: trace_id, prompt, completion, token_ids, student_logprobs, student_char_starts
    (the rollout-time student's sampled tokens), teacher_logprobs, teacher_char_starts, and
    optionally prompt_context_text / is_chat_prompt (the recorded context it was sampled from,
    used verbatim). Returns the examples and (trace_id, reason) for rollouts that cannot be used.
    """
    from tasks.generate.backend import prompt_text_ids

    examples, rejected = [], []
    for r in rollouts:
        ids, s_lps, s_starts = list(r["token_ids"] or []), list(r["student_logprobs"] or []), list(r["student_char_starts"] or [])
        if not ids or len(ids) != len(s_lps) or len(ids) != len(s_starts):
            rejected.append((r["trace_id"], "opd_no_student_tokens"))
            continue
        t_lps = align_teacher_logprobs(s_starts, list(r["teacher_char_starts"]), list(r["teacher_logprobs"]),
                                       n_chars=len(r["completion"]))
        if t_lps is None:
            rejected.append((r["trace_id"], "opd_tokenization_mismatch"))
            continue
        n = min(len(ids), max_tokens)
        prompt_ids = _prompt_ids(tokenizer, r, system_prompt, prompt_text_ids)
        examples.append({"trace_id": r["trace_id"], "prompt_ids": prompt_ids, "completion_ids": ids[:n],
                         "advantages": clipped_advantages(t_lps[:n], s_lps[:n], clip), "is_truncated": len(ids) > n})
    return examples, rejected


def _prompt_ids(tokenizer, rollout: dict[str, Any], system_prompt: str | None, prompt_text_ids) -> list[int]:
    """The student's input before the rollout: the recorded context it sampled from, else its chat template."""
    if rollout.get("prompt_context_text"):
        is_chat = rollout.get("is_chat_prompt")
        return prompt_text_ids(tokenizer, rollout["prompt_context_text"], True if is_chat is None else bool(is_chat))
    messages = ([{"role": "system", "content": system_prompt}] if system_prompt else []) + [{"role": "user", "content": rollout["prompt"]}]
    return prompt_text_ids(tokenizer, tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False), True)


def collate_opd(examples: list[dict[str, Any]], pad_token_id: int) -> dict[str, Any]:
    """Right-padded input_ids / attention_mask / completion_mask and per-position advantages."""
    import torch

    seqs = [e["prompt_ids"] + e["completion_ids"] for e in examples]
    width = max(len(s) for s in seqs)
    input_ids = torch.full((len(seqs), width), pad_token_id, dtype=torch.long)
    attention = torch.zeros((len(seqs), width), dtype=torch.long)
    completion = torch.zeros((len(seqs), width), dtype=torch.long)
    adv = torch.zeros((len(seqs), width), dtype=torch.float32)
    for i, (e, s) in enumerate(zip(examples, seqs)):
        p, c = len(e["prompt_ids"]), len(e["completion_ids"])
        input_ids[i, : len(s)] = torch.tensor(s)
        attention[i, : len(s)] = 1
        completion[i, p : p + c] = 1
        adv[i, p : p + c] = torch.tensor(e["advantages"], dtype=torch.float32)
    return {"input_ids": input_ids, "attention_mask": attention, "completion_mask": completion, "advantages": adv}


def _opd_trainer_class():
    from transformers import Trainer
    from trl.trainer.utils import add_fused_lm_head

    class OPDTrainer(Trainer):
        """transformers `Trainer` whose loss is the fixed-advantage policy gradient over rollout tokens."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            model = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
            add_fused_lm_head(model)  # TRL's chunked per-token log-probs (no full logits tensor)

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            mask = inputs["completion_mask"]
            labels = inputs["input_ids"].masked_fill(mask == 0, -100)
            outputs = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], labels=labels,
                            use_cache=False, fused_lm_head=True)
            shift_mask = mask[:, 1:]
            logps = outputs.log_probs[:, -shift_mask.size(1):]
            loss = opd_loss(logps, inputs["advantages"][:, 1:], shift_mask)
            return (loss, outputs) if return_outputs else loss

    return OPDTrainer


def train_opd(
    examples: list[dict[str, Any]],
    base_model: str | Path,
    cfg: TrainConfig,
    output_dir: str | Path,
    *,
    run_info: dict[str, Any] | None = None,
    callbacks: list | None = None,
) -> TrainResult:
    """The OPD stage: train `base_model` (the SFT checkpoint that wrote the rollouts) on `opd_examples`."""
    from datasets import Dataset
    from transformers import TrainingArguments

    from tasks.train.data import examples_hash

    if not examples:
        raise TrainError("OPD: no usable rollouts (every rollout was rejected; see the rejections)")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    device, precision = resolve_device(cfg)
    keep = [{k: e[k] for k in ("prompt_ids", "completion_ids", "advantages")} for e in examples]
    run_info = {**(run_info or {}), "n_examples": len(keep), "examples_hash": examples_hash(keep)}
    sidecar = _resolved_config(cfg, str(base_model), device, precision, run_info)
    (output_dir / "resolved_config.json").write_text(json.dumps(sidecar, indent=2, default=str))

    tokenizer, model = load_student(base_model)
    peft = lora_config(cfg, model, base_model)
    if peft is not None:
        from peft import get_peft_model

        model = get_peft_model(model, peft)
    args = TrainingArguments(**trainer_args(cfg, output_dir, device, precision), remove_unused_columns=False)
    losses: list[tuple[int, float]] = []
    stopped: dict[str, Any] = {}
    trainer = _opd_trainer_class()(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(keep),
        data_collator=lambda batch: collate_opd(batch, tokenizer.pad_token_id),
        processing_class=tokenizer,
        callbacks=_callbacks(cfg, output_dir, tokenizer, sidecar, losses, stopped),
    )
    add_callbacks(trainer, callbacks)
    n_completion_tokens = sum(len(e["completion_ids"]) for e in keep)
    output, seconds = run_trainer(trainer, cfg, device)
    return finish_training(trainer, cfg, tokenizer, output_dir, sidecar, losses, output, seconds, len(keep),
                           run_info["examples_hash"], device, precision, n_completion_tokens,
                           extra={"stage": "opd", "n_truncated": sum(bool(e.get("is_truncated")) for e in examples)}, stopped=stopped)
