"""Sampling config (what to sample) apart from engine config (how and where to run the model).

>>> str(SamplingConfig(n=2, temperatures=(0.6, 1.0)))[:9]
'sampling-'
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

from tasks.common.ids import stable_hash

BACKENDS = ("hf", "openai", "vllm")


class GenerateConfigError(ValueError):
    """A sampling or engine setting is invalid; the message names the field."""


@dataclass(frozen=True)
class SamplingConfig:
    """What to sample per prompt. Every field except `logprobs_top_k` is part of the request key."""

    n: int = field(default=4, metadata={"help": "samples per prompt and temperature"})
    temperatures: tuple[float, ...] = field(
        default=(0.8,),
        metadata={"help": "temperatures; n samples at each (DASD samples at 0.6 and 1.0). 0 = greedy"},
    )
    top_p: float = field(default=1.0, metadata={"help": "nucleus sampling mass in (0, 1]"})
    max_tokens: int = field(default=256, metadata={"help": "max completion tokens per sample"})
    seed: int = field(default=0, metadata={"help": "run seed; each request's seed is derived from its key"})
    stop: tuple[str, ...] = field(default=(), metadata={"help": "stop strings (excluded from the completion)"})
    use_chat_template: bool = field(
        default=True,
        metadata={"help": "render with the model's chat template (openai: the chat endpoint; else the completions endpoint)"},
    )
    prompt_template: str = field(
        default="{problem}", metadata={"help": "str.format template with {problem}: the user message or the raw prompt"}
    )
    system_prompt: str | None = field(default=None, metadata={"help": "system message (chat template only)"})
    logprobs_top_k: int = field(
        default=0, metadata={"help": "alternatives recorded per token besides the sampled one (0 = sampled token only; ~20 for entropy)"}
    )

    def __post_init__(self) -> None:
        if self.n < 1:
            raise GenerateConfigError(f"sampling.n must be >= 1, got {self.n}")
        if not self.temperatures:
            raise GenerateConfigError("sampling.temperatures must name at least one temperature")
        if any(t < 0 for t in self.temperatures):
            raise GenerateConfigError(f"sampling.temperatures must be >= 0, got {self.temperatures}")
        if not 0 < self.top_p <= 1:
            raise GenerateConfigError(f"sampling.top_p must be in (0, 1], got {self.top_p}")
        if self.max_tokens < 1:
            raise GenerateConfigError(f"sampling.max_tokens must be >= 1, got {self.max_tokens}")
        if "{problem}" not in self.prompt_template:
            raise GenerateConfigError(f"sampling.prompt_template must contain '{{problem}}', got {self.prompt_template!r}")
        if self.system_prompt is not None and not self.use_chat_template:
            raise GenerateConfigError("sampling.system_prompt needs use_chat_template=True (put it in prompt_template)")
        if not 0 <= self.logprobs_top_k <= 20:
            raise GenerateConfigError(f"sampling.logprobs_top_k must be in [0, 20], got {self.logprobs_top_k}")

    @property
    def samples_per_prompt(self) -> int:
        return self.n * len(self.temperatures)

    def key_params(self, temperature: float) -> dict:
        """The sampling parameters of one request that enter its key (everything but logprobs_top_k)."""
        return {
            "temperature": float(temperature),
            "top_p": float(self.top_p),
            "max_tokens": int(self.max_tokens),
            "seed": int(self.seed),
            "stop": list(self.stop),
            "use_chat_template": bool(self.use_chat_template),
            "prompt_template": self.prompt_template,
        }

    def render_user(self, problem: str) -> str:
        return self.prompt_template.replace("{problem}", problem)

    def __str__(self) -> str:
        return "sampling-" + stable_hash("SamplingConfig", asdict(self), length=12)


@dataclass(frozen=True)
class EngineConfig:
    """How and where one teacher runs. Nothing here changes what is sampled, except `model`/`revision`."""

    model: str = field(metadata={"help": "local model directory (hf, vllm) or the endpoint's model name (openai)"})
    name: str | None = field(default=None, metadata={"help": "teacher name used in model_id (default: the model's basename)"})
    backend: str = field(default="hf", metadata={"help": "hf | openai | vllm"})
    revision: str | None = field(
        default=None, metadata={"help": "model revision; default: a hash of the weight files (hf, vllm) or none (openai)"}
    )
    device: str = field(default="auto", metadata={"help": "auto | cpu | cuda | cuda:N (hf)"})
    dtype: str = field(default="auto", metadata={"help": "auto (bf16 on CUDA, fp32 on CPU) | float32 | bfloat16 | float16"})
    batch_size: int = field(default=32, metadata={"help": "sequences decoded together (hf)"})
    cpu_threads: int | None = field(
        default=None, metadata={"help": "torch CPU threads (hf on CPU; 1 is fastest for tiny models on a busy machine)"}
    )
    base_url: str | None = field(default=None, metadata={"help": "OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1"})
    api_key_env: str | None = field(default=None, metadata={"help": "name of the env var holding the API key (never stored)"})
    concurrency: int = field(default=8, metadata={"help": "requests in flight (openai)"})
    timeout_s: float = field(default=120.0, metadata={"help": "per-request timeout in seconds (openai)"})
    max_retries: int = field(default=5, metadata={"help": "retries on 429/5xx/timeouts (openai)"})
    backoff_s: float = field(default=1.0, metadata={"help": "first retry delay; doubles per retry, capped at 60 s"})
    tokenizer: str | None = field(default=None, metadata={"help": "local tokenizer dir for exact dry-run token counts (openai)"})
    price_in_per_1m: float | None = field(default=None, metadata={"help": "USD per 1M prompt tokens (None = not priced)"})
    price_out_per_1m: float | None = field(default=None, metadata={"help": "USD per 1M completion tokens"})
    vllm_python: str | None = field(default=None, metadata={"help": "interpreter with vllm installed (default $POTSTILL_VLLM_PYTHON)"})
    gpu_memory_utilization: float = field(default=0.85, metadata={"help": "vLLM's share of GPU memory"})
    startup_timeout_s: float = field(default=900.0, metadata={"help": "how long the vLLM worker may take to load the model"})

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise GenerateConfigError(f"engine.backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.backend == "openai" and not self.base_url:
            raise GenerateConfigError(f"engine.base_url is required for the openai backend (teacher {self.display_name})")
        if self.batch_size < 1 or self.concurrency < 1:
            raise GenerateConfigError("engine.batch_size and engine.concurrency must be >= 1")

    @property
    def display_name(self) -> str:
        return self.name or os.path.basename(os.path.normpath(self.model)) or self.model

    @property
    def is_priced(self) -> bool:
        return self.price_in_per_1m is not None or self.price_out_per_1m is not None

    def cost_usd(self, n_prompt_tokens: int, n_completion_tokens: int) -> float | None:
        """Cost of one request, or None when the engine has no price."""
        if not self.is_priced:
            return None
        return (n_prompt_tokens * (self.price_in_per_1m or 0.0) + n_completion_tokens * (self.price_out_per_1m or 0.0)) / 1e6

    def __str__(self) -> str:
        return "engine-" + stable_hash("EngineConfig", asdict(self), length=12)
