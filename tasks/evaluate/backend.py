"""The generation adapter evaluation runs on: `Generator.generate(prompts, ...) -> [[Sample]]`.

`StageGenerator` (the default) runs the generation stage's own backends (`tasks.generate`: hf,
openai-compatible, vllm), so a student is evaluated exactly as teachers are sampled, on any engine.
`HFGenerator` is a small self-contained transformers implementation with the same contract.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from tasks.evaluate.config import EvalError


@dataclass(frozen=True)
class Sample:
    text: str
    n_tokens: int
    finish_reason: str  # stop | length


class Generator(Protocol):
    model_id: str

    def generate(
        self, prompts: list[str], *, n: int, temperature: float, top_p: float, max_new_tokens: int,
        seed: int, system_prompt: str | None,
    ) -> list[list[Sample]]:
        """For each user prompt, `n` samples (temperature 0 = greedy, then n must be 1)."""
        ...


class StageGenerator:
    """Evaluation through `tasks.generate.backend.make_backend` (engine: hf | openai | vllm).

    Each sample's seed is derived from (seed, prompt, sample index), so results do not depend on
    batching or on which shard a problem falls in.
    """

    def __init__(self, model: str, *, backend: str = "hf", device: str = "auto", batch_size: int = 64, **engine_kwargs) -> None:
        from tasks.generate.backend import make_backend
        from tasks.generate.config import EngineConfig

        self.model_id = model
        self.engine = EngineConfig(model=model, backend=backend, device=device, batch_size=batch_size, **engine_kwargs)
        self.backend = make_backend(self.engine)

    def generate(self, prompts, *, n, temperature, top_p, max_new_tokens, seed, system_prompt):
        from tasks.common.ids import stable_hash
        from tasks.generate.requests import GenerationRequest, derive_seed

        if temperature == 0 and n != 1:
            raise EvalError("greedy decoding gives one sample per prompt; ask for n=1")
        requests = []
        for i, prompt in enumerate(prompts):
            for j in range(n):
                key = "ev_" + stable_hash(seed, temperature, top_p, max_new_tokens, system_prompt, prompt, j)
                requests.append(GenerationRequest(request_key=key, prompt_id=f"p{i}", sample_index=j, prompt_text=prompt,
                                                  temperature=float(temperature), top_p=float(top_p), max_tokens=int(max_new_tokens),
                                                  seed=derive_seed(key), system_prompt=system_prompt))
        results = self.backend.generate(requests, use_chat_template=True)
        out: list[list[Sample]] = [[] for _ in prompts]
        for req, res in zip(requests, results):
            if res.finish_reason == "error":
                raise EvalError(f"generation failed for {self.model_id} on prompt {req.prompt_id}: {res.error_code}: {res.error_detail}")
            out[int(req.prompt_id[1:])].append(Sample(res.completion_text, int(res.n_completion_tokens), res.finish_reason))
        return out

    def close(self) -> None:
        self.backend.close()


class HFGenerator:
    """Batched `model.generate` over chat-templated prompts.

    >>> gen = HFGenerator("toyworld/models/student")              # doctest: +SKIP
    >>> gen.generate(["Compute 1 + 2."], n=1, temperature=0, top_p=1, max_new_tokens=64, seed=0, system_prompt=None)  # doctest: +SKIP
    """

    def __init__(self, model: str, *, device: str = "auto", batch_size: int = 64) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.model_id = model
        self.batch_size = batch_size
        self.device = "cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device)
        dtype = torch.bfloat16 if self.device == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(model)
            self.model = AutoModelForCausalLM.from_pretrained(model, dtype=dtype).to(self.device).eval()
        except (OSError, ValueError) as exc:
            raise EvalError(f"cannot load model {model!r}: {exc}") from exc
        if not getattr(self.tokenizer, "chat_template", None):
            raise EvalError(f"model {model!r} has no chat template; evaluation renders prompts with it")
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.eos_ids = _eos_ids(self.model, self.tokenizer)

    def _render(self, prompt: str, system_prompt: str | None) -> list[int]:
        messages = ([{"role": "system", "content": system_prompt}] if system_prompt else []) + [
            {"role": "user", "content": prompt}
        ]
        text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def generate(self, prompts, *, n, temperature, top_p, max_new_tokens, seed, system_prompt):
        import torch

        if temperature == 0 and n != 1:
            raise EvalError("greedy decoding gives one sample per prompt; ask for n=1")
        encoded = [self._render(p, system_prompt) for p in prompts]
        order = sorted(range(len(prompts)), key=lambda i: (len(encoded[i]), i))
        out: list[list[Sample]] = [[] for _ in prompts]
        per_batch = max(1, self.batch_size // n)
        pad_id = self.tokenizer.pad_token_id
        for b, start in enumerate(range(0, len(order), per_batch)):
            idx = order[start : start + per_batch]
            width = max(len(encoded[i]) for i in idx)
            input_ids = torch.tensor([[pad_id] * (width - len(encoded[i])) + encoded[i] for i in idx], device=self.device)
            attention = (torch.arange(width, device=self.device)[None, :] >= torch.tensor(
                [width - len(encoded[i]) for i in idx], device=self.device)[:, None]).long()
            torch.manual_seed(seed * 1_000_003 + b)
            with torch.no_grad():
                generated = self.model.generate(
                    input_ids=input_ids,
                    attention_mask=attention,
                    do_sample=temperature > 0,
                    temperature=temperature if temperature > 0 else None,
                    top_p=top_p if temperature > 0 else None,
                    top_k=None,
                    num_return_sequences=n,
                    max_new_tokens=max_new_tokens,
                    pad_token_id=pad_id,
                    eos_token_id=self.eos_ids,
                )
            completions = generated[:, width:].tolist()
            for j, tokens in enumerate(completions):
                out[idx[j // n]].append(self._sample(tokens, pad_id))
        return out

    def _sample(self, tokens: list[int], pad_id: int) -> Sample:
        stop = next((i for i, t in enumerate(tokens) if t in self.eos_ids), None)
        kept = tokens if stop is None else tokens[:stop]
        if stop is None:  # no EOS: trailing pads cannot occur, the sequence ran to max_new_tokens
            return Sample(self.tokenizer.decode(kept, skip_special_tokens=True), len(kept), "length")
        return Sample(self.tokenizer.decode(kept, skip_special_tokens=True), len(kept), "stop")


def _eos_ids(model, tokenizer) -> list[int]:
    ids = model.generation_config.eos_token_id
    ids = [ids] if isinstance(ids, int) else list(ids or [])
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    if not ids:
        raise EvalError(f"model {model.name_or_path!r} has no EOS token; generation could not stop")
    return ids
