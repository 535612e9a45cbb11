"""The generation adapter evaluation runs on: `Generator.generate(prompts, ...) -> [[Sample]]`.

`StageGenerator` (the default) runs the generation stage's own backends (`tasks.generate`: hf,
openai-compatible, vllm), so a student is evaluated exactly as teachers are sampled, on any engine.
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
