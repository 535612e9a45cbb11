"""Generation requests and results, and the request key that makes generation resumable.

The key hashes everything that changes what is sampled: prompt, model, template, system prompt,
every sampling parameter and the sample index. Change any of them and the key changes (cache
invalidation); re-run with the same ones and the key is found in the warehouse (resume).

>>> request_key("p_1", "m@abc", "tpl", None, {"temperature": 0.8}, 0) == request_key("p_1", "m@abc", "tpl", None, {"temperature": 0.8}, 0)
True
>>> request_key("p_1", "m@abc", "tpl", None, {"temperature": 0.8}, 0) == request_key("p_1", "m@abc", "tpl", None, {"temperature": 0.8}, 1)
False
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from tasks.common.ids import stable_hash
from tasks.generate.config import SamplingConfig

KEY_VERSION = "generate/v1"
SEED_MODULUS = 2**31 - 1


def request_key(
    prompt_id: str, model_id: str, template_hash: str, system_prompt: str | None, params: dict, sample_index: int
) -> str:
    """The resume key of one request (also the generated trace's `trace_id`)."""
    return "g_" + stable_hash(KEY_VERSION, prompt_id, model_id, template_hash, system_prompt, params, int(sample_index), length=24)


def derive_seed(key: str) -> int:
    """A per-request sampling seed from its key, so a resumed run draws the same sample.

    >>> derive_seed("g_abc") == derive_seed("g_abc")
    True
    """
    return int.from_bytes(hashlib.sha256(("seed:" + key).encode()).digest()[:8], "big") % SEED_MODULUS


@dataclass(frozen=True)
class GenerationRequest:
    """One sample to draw: the rendered prompt plus its sampling parameters."""

    request_key: str
    prompt_id: str
    sample_index: int
    prompt_text: str  # raw prompt (completions) or user message (chat)
    temperature: float
    top_p: float
    max_tokens: int
    seed: int
    stop: tuple[str, ...] = ()
    system_prompt: str | None = None
    logprobs_top_k: int = 0

    def messages(self) -> list[dict[str, str]]:
        """The chat messages of this request (system prompt first, when set), before any chat template."""
        system = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        return [*system, {"role": "user", "content": self.prompt_text}]


@dataclass
class GenerationResult:
    """What every backend returns per request. Token lists cover exactly `completion_text`.

    `token_ids` is None for endpoints that return token strings only; `tokens` then holds them.
    `logprobs` are the model's raw log-probabilities (temperature 1, no nucleus cut) of the sampled tokens.
    `prompt_context` is the exact text the model's tokenizer was given before the completion (chat:
    the template-rendered messages with the generation prompt; raw: the prompt itself); None when an
    endpoint renders the chat template out of sight (then the recorded messages are the context).
    """

    request_key: str
    completion_text: str = ""
    token_ids: list[int] | None = None
    tokens: list[str] | None = None
    logprobs: list[float] = field(default_factory=list)
    char_starts: list[int] = field(default_factory=list)
    top_token_ids: list[list[int]] | None = None
    top_tokens: list[list[str]] | None = None
    top_logprobs: list[list[float]] | None = None
    n_prompt_tokens: int = 0
    n_completion_tokens: int = 0
    finish_reason: str = "stop"  # stop | length | error
    latency_ms: float = 0.0
    error_code: str | None = None  # snake_case reason when finish_reason == "error"
    error_detail: str | None = None
    has_logprobs: bool = True  # False for endpoints that return none (teacher-forced scoring fills them later)
    retryable: bool = False  # the error was transient (rate limit, 5xx, timeout): worth a later retry
    prompt_context: str | None = None

    @property
    def ok(self) -> bool:
        return self.error_code is None

    def check(self) -> None:
        """Internal invariant of a successful result: parallel lists of equal length, offsets in range."""
        if not self.has_logprobs:
            return
        n = len(self.logprobs)
        lists = [self.char_starts, self.token_ids if self.token_ids is not None else self.tokens]
        if any(x is None or len(x) != n for x in lists):
            raise ValueError(f"{self.request_key}: token lists disagree with {n} logprobs")
        if any(not 0 <= s <= len(self.completion_text) for s in self.char_starts):
            raise ValueError(f"{self.request_key}: char_starts out of range of a {len(self.completion_text)}-char completion")


def build_requests(
    prompts: Iterable[tuple[str, str]],
    *,
    model_id: str,
    template_hash: str,
    sampling: SamplingConfig,
) -> list[GenerationRequest]:
    """All requests for (prompt_id, problem_text) pairs: n samples at each temperature.

    `sample_index` runs over temperatures then samples, so it is unique per (prompt, model).
    """
    out: list[GenerationRequest] = []
    for prompt_id, problem in prompts:
        user = sampling.render_user(problem)
        for t_index, temperature in enumerate(sampling.temperatures):
            params = sampling.key_params(temperature)
            for i in range(sampling.n):
                sample_index = t_index * sampling.n + i
                key = request_key(prompt_id, model_id, template_hash, sampling.system_prompt, params, sample_index)
                out.append(
                    GenerationRequest(
                        request_key=key,
                        prompt_id=prompt_id,
                        sample_index=sample_index,
                        prompt_text=user,
                        temperature=float(temperature),
                        top_p=float(sampling.top_p),
                        max_tokens=int(sampling.max_tokens),
                        seed=derive_seed(key),
                        stop=tuple(sampling.stop),
                        system_prompt=sampling.system_prompt,
                        logprobs_top_k=int(sampling.logprobs_top_k),
                    )
                )
    return out


def shards(requests: Sequence[GenerationRequest], size: int) -> list[list[GenerationRequest]]:
    """Consecutive shards of `size` requests (the samples of one prompt stay together when size allows)."""
    if size < 1:
        raise ValueError(f"shard size must be >= 1, got {size}")
    return [list(requests[i : i + size]) for i in range(0, len(requests), size)]


def shard_id_for(keys: Iterable[str]) -> str:
    """A shard is named by the keys it holds, so a retried shard keeps its id."""
    return "s_" + stable_hash("shard", sorted(keys), length=16)
