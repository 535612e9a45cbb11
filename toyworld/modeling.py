"""Tiny Llama models for the toy world: config, a plain torch training loop, batched generation.

Everything is seeded and step-based (never time-based), so a rebuild on the same machine
gives the same weights.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field

import torch
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerBase


@dataclass(frozen=True)
class ModelSpec:
    """Architecture of one toy model (head_dim is fixed at 64 so vLLM could load it)."""

    hidden_size: int = field(default=256, metadata={"help": "model width; n_heads = hidden_size // 64"})
    n_layers: int = field(default=4, metadata={"help": "decoder layers"})
    intermediate_size: int = field(default=512, metadata={"help": "MLP width"})
    max_positions: int = field(default=384, metadata={"help": "max sequence length (prompt + completion)"})

    def llama_config(self, tok: PreTrainedTokenizerBase) -> LlamaConfig:
        return LlamaConfig(
            vocab_size=len(tok),
            hidden_size=self.hidden_size,
            intermediate_size=self.intermediate_size,
            num_hidden_layers=self.n_layers,
            num_attention_heads=self.hidden_size // 64,
            num_key_value_heads=self.hidden_size // 64,
            head_dim=64,
            max_position_embeddings=self.max_positions,
            tie_word_embeddings=True,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
        )


@dataclass(frozen=True)
class TrainSpec:
    """Optimisation of one training run (step-based so it is deterministic)."""

    steps: int = field(default=2000, metadata={"help": "optimizer steps"})
    batch_size: int = field(default=32, metadata={"help": "sequences per step"})
    lr: float = field(default=2e-3, metadata={"help": "peak AdamW learning rate (2e-3 measured best for 2.6M params)"})
    warmup: int = field(default=100, metadata={"help": "linear warmup steps"})
    min_lr_ratio: float = field(default=0.1, metadata={"help": "cosine decay floor as a fraction of lr"})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay"})
    seed: int = field(default=0, metadata={"help": "torch + data seed"})


def new_model(spec: ModelSpec, tok: PreTrainedTokenizerBase, seed: int) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    model = LlamaForCausalLM(spec.llama_config(tok))
    model.generation_config = GenerationConfig(
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        max_new_tokens=256,
    )
    return model


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


_TEMPLATE_CACHE: dict[tuple[str, str], tuple[str, str]] = {}  # (chat_template, bos) -> (head, tail)


def prompt_text(tok: PreTrainedTokenizerBase, problem: str) -> str:
    """The chat-template prompt for one user turn (template rendered once per tokenizer)."""
    key = (tok.chat_template, tok.bos_token)
    if key not in _TEMPLATE_CACHE:
        marker = "\x00PROBLEM\x00"
        rendered = tok.apply_chat_template(
            [{"role": "user", "content": marker}], add_generation_prompt=True, tokenize=False
        )
        head, tail = rendered.split(marker)
        _TEMPLATE_CACHE[key] = (head, tail)
    head, tail = _TEMPLATE_CACHE[key]
    return head + problem + tail


def prompt_ids(tok: PreTrainedTokenizerBase, problem: str) -> list[int]:
    return tok(prompt_text(tok, problem), add_special_tokens=False)["input_ids"]


def encode_example(tok: PreTrainedTokenizerBase, problem: str, completion: str) -> tuple[list[int], list[int]]:
    """(input_ids, labels): loss only on the completion and its EOS."""
    p = prompt_ids(tok, problem)
    c = tok(completion, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    return p + c, [-100] * len(p) + c


def collate(tok: PreTrainedTokenizerBase, examples: list[tuple[list[int], list[int]]]) -> dict[str, torch.Tensor]:
    width = max(len(ids) for ids, _ in examples)
    ids = torch.full((len(examples), width), tok.pad_token_id, dtype=torch.long)
    labels = torch.full((len(examples), width), -100, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for i, (x, y) in enumerate(examples):  # right padding for training
        ids[i, : len(x)] = torch.tensor(x)
        labels[i, : len(y)] = torch.tensor(y)
        mask[i, : len(x)] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


Example = tuple[str, str]  # (problem, completion)


def train(
    model: LlamaForCausalLM,
    tok: PreTrainedTokenizerBase,
    batches: Iterator[list[Example]],
    spec: TrainSpec,
    *,
    on_checkpoint: Callable[[int, float], None] | None = None,
    checkpoint_steps: tuple[int, ...] = (),
    log_every: int = 100,
    log: Callable[[str], None] = print,
) -> dict:
    """Plain AdamW loop with warmup + cosine decay. Returns {'steps', 'seconds', 'final_loss'}."""
    torch.manual_seed(spec.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay, betas=(0.9, 0.98))

    def lr_at(step: int) -> float:
        if step < spec.warmup:
            return spec.lr * (step + 1) / spec.warmup
        frac = (step - spec.warmup) / max(1, spec.steps - spec.warmup)
        return spec.lr * (spec.min_lr_ratio + (1 - spec.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * frac)))

    model.train()
    t0, train_s, running = time.perf_counter(), 0.0, None
    for step in range(spec.steps):
        ts = time.perf_counter()
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        batch = collate(tok, [encode_example(tok, p, c) for p, c in next(batches)])
        loss = model(**{k: v.to(model.device) for k, v in batch.items()}).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        train_s += time.perf_counter() - ts
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        if log_every and (step + 1) % log_every == 0:
            log(
                f"step {step + 1}/{spec.steps} loss {running:.4f} {(step + 1) / (time.perf_counter() - t0):.2f} steps/s"
            )
        if on_checkpoint and (step + 1) in checkpoint_steps:
            model.eval()
            on_checkpoint(step + 1, train_s)
            model.train()
    model.eval()
    return {
        "steps": spec.steps,
        "seconds": round(time.perf_counter() - t0, 1),
        "train_seconds": round(train_s, 1),
        "final_loss": running,
    }


def example_stream(sample: Callable[[random.Random], Example], batch_size: int, seed: int) -> Iterator[list[Example]]:
    rng = random.Random(seed)
    while True:
        yield [sample(rng) for _ in range(batch_size)]


@torch.no_grad()
def generate(
    model: LlamaForCausalLM,
    tok: PreTrainedTokenizerBase,
    problems: list[str],
    *,
    temperature: float = 0.0,
    max_new_tokens: int = 200,
    batch_size: int = 128,
    seed: int = 0,
) -> list[str]:
    """Completions (special tokens removed) for each problem; greedy when temperature == 0."""
    model.eval()
    torch.manual_seed(seed)
    out: list[str] = []
    for i in range(0, len(problems), batch_size):
        chunk = [prompt_ids(tok, p) for p in problems[i : i + batch_size]]
        width = max(len(x) for x in chunk)
        ids = torch.full((len(chunk), width), tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for j, x in enumerate(chunk):  # left padding for generation
            ids[j, width - len(x) :] = torch.tensor(x)
            mask[j, width - len(x) :] = 1
        kwargs = (
            {"do_sample": True, "temperature": temperature, "top_k": 0, "top_p": 1.0}
            if temperature > 0
            else {"do_sample": False}
        )
        gen = model.generate(
            input_ids=ids.to(model.device),
            attention_mask=mask.to(model.device),
            max_new_tokens=max_new_tokens,
            pad_token_id=tok.pad_token_id,
            eos_token_id=tok.eos_token_id,
            **kwargs,
        )
        out.extend(tok.batch_decode(gen[:, width:], skip_special_tokens=True))
    return out


def spec_dict(*specs) -> dict:
    return {type(s).__name__: asdict(s) for s in specs}
