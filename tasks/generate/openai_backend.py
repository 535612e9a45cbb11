"""OpenAI-compatible backend (vllm serve, SGLang, hosted APIs): chat or completions endpoint, logprobs.

Bounded concurrency (a thread pool over one httpx client); retries with exponential backoff on
429, 5xx, timeouts and connection errors (Retry-After honoured). The API key is read from the env
var named in the engine config and never stored. Each request carries its own seed.
"""

from __future__ import annotations

import os
import random
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from tasks.common.ids import stable_hash
from tasks.common.text import join_think
from tasks.generate.backend import BackendUnavailableError, GenerateError, render_prompt_ids
from tasks.generate.config import EngineConfig, SamplingConfig
from tasks.generate.offsets import char_starts_from_bytes, char_starts_from_pieces
from tasks.generate.requests import GenerationRequest, GenerationResult

MAX_BACKOFF_S = 60.0
CHARS_PER_TOKEN = 4  # dry-run estimate without a tokenizer


class OpenAIBackend:
    def __init__(self, engine: EngineConfig, *, transport: httpx.BaseTransport | None = None) -> None:
        self.engine = engine
        self._transport = transport
        self._tokenizer = None

    def model_id(self) -> str:
        return f"{self.engine.display_name}@{self.engine.revision}" if self.engine.revision else self.engine.display_name

    def template_hash(self, sampling: SamplingConfig) -> str:
        """The server applies its own chat template: the key covers the endpoint and our prompt template."""
        endpoint = "chat" if sampling.use_chat_template else "completions"
        return stable_hash("openai", endpoint, sampling.prompt_template, length=16)

    def count_prompt_tokens(self, requests: list[GenerationRequest], use_chat_template: bool) -> tuple[list[int], bool]:
        if self.engine.tokenizer:
            if self._tokenizer is None:
                from transformers import AutoTokenizer

                self._tokenizer = AutoTokenizer.from_pretrained(self.engine.tokenizer)
            return [len(render_prompt_ids(self._tokenizer, r, use_chat_template)) for r in requests], True
        return [-(-(len(r.prompt_text) + len(r.system_prompt or "")) // CHARS_PER_TOKEN) for r in requests], False

    def close(self) -> None:
        return None

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.engine.api_key_env:
            key = os.environ.get(self.engine.api_key_env)
            if not key:
                raise GenerateError(
                    f"teacher {self.engine.display_name}: env var {self.engine.api_key_env} (engine.api_key_env) is not set"
                )
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def generate(self, requests: list[GenerationRequest], use_chat_template: bool) -> list[GenerationResult]:
        headers = self._headers()
        base = self.engine.base_url.rstrip("/")
        url = f"{base}/chat/completions" if use_chat_template else f"{base}/completions"
        timeout = httpx.Timeout(self.engine.timeout_s)
        workers = min(self.engine.concurrency, max(1, len(requests)))
        with (
            httpx.Client(timeout=timeout, headers=headers, transport=self._transport) as client,
            ThreadPoolExecutor(max_workers=workers) as pool,
        ):
            results = list(pool.map(lambda r: self._one(client, url, r, use_chat_template), requests))
        if results and all(not r.ok and r.retryable for r in results):
            first = results[0]
            raise BackendUnavailableError(
                f"teacher {self.engine.display_name} at {base}: every request of the shard failed "
                f"({first.error_code}: {first.error_detail})"
            )
        return results

    def payload(self, req: GenerationRequest, chat: bool) -> dict:
        body: dict = {
            "model": self.engine.model, "temperature": req.temperature, "top_p": req.top_p,
            "max_tokens": req.max_tokens, "seed": req.seed, "n": 1,
        }
        if req.stop:
            body["stop"] = list(req.stop)
        if chat:
            body.update(messages=req.messages(), logprobs=True)
            if req.logprobs_top_k:
                body["top_logprobs"] = req.logprobs_top_k
        else:
            body.update(prompt=req.prompt_text, logprobs=req.logprobs_top_k)
        return body

    def _one(self, client: httpx.Client, url: str, req: GenerationRequest, chat: bool) -> GenerationResult:
        body = self.payload(req, chat)
        code, detail, retry_after = "server_error", "", None
        t0 = time.perf_counter()
        for attempt in range(self.engine.max_retries + 1):
            if attempt:
                time.sleep(self._delay(attempt, retry_after))
            retry_after = None
            try:
                resp = client.post(url, json=body)
            except httpx.TimeoutException as exc:
                code, detail = "timeout", f"no answer within {self.engine.timeout_s} s ({type(exc).__name__})"
                continue
            except httpx.TransportError as exc:
                code, detail = "connection_error", f"{type(exc).__name__}: {exc}"
                continue
            if resp.status_code == 429 or resp.status_code >= 500:
                code = "rate_limited" if resp.status_code == 429 else "server_error"
                detail = f"HTTP {resp.status_code}: {resp.text[:300]}"
                retry_after = resp.headers.get("retry-after")
                continue
            if resp.status_code >= 400:
                return GenerationResult(req.request_key, finish_reason="error", error_code=f"http_{resp.status_code}",
                                        error_detail=f"{url}: {resp.text[:500]}")
            try:
                return self._parse(req, resp.json(), chat, (time.perf_counter() - t0) * 1000)
            except (KeyError, IndexError, TypeError, ValueError) as exc:
                return GenerationResult(req.request_key, finish_reason="error", error_code="bad_response",
                                        error_detail=f"{url}: cannot read the response ({type(exc).__name__}: {exc})")
        return GenerationResult(req.request_key, finish_reason="error", error_code=code, retryable=True,
                                error_detail=f"{detail} after {self.engine.max_retries} retries")

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            try:
                return min(float(retry_after), MAX_BACKOFF_S)
            except ValueError:
                pass
        base = self.engine.backoff_s * 2 ** (attempt - 1)
        return min(base * (1 + 0.25 * random.random()), MAX_BACKOFF_S)

    def _parse(self, req: GenerationRequest, data: dict, chat: bool, latency_ms: float) -> GenerationResult:
        choice = data["choices"][0]
        usage = data.get("usage") or {}
        finish = choice.get("finish_reason") or "stop"
        finish = finish if finish in ("stop", "length") else "stop"
        lp = choice.get("logprobs") or {}
        tokens, logprobs, starts, top_tokens, top_values = [], [], [], None, None
        prefix = ""
        if chat:
            message = choice["message"]
            content = message.get("content") or ""
            reasoning = message.get("reasoning_content") or message.get("reasoning")
            if reasoning:  # servers with a reasoning parser split the <think> part off
                text = join_think(reasoning, content)
                prefix = text[: len(text) - len(content)]
            else:
                text = content
            items = lp.get("content") or []
            tokens = [it["token"] for it in items]
            logprobs = [float(it["logprob"]) for it in items]
            raw = [it.get("bytes") for it in items]
            starts = char_starts_from_bytes([bytes(b) for b in raw]) if items and all(b is not None for b in raw) else char_starts_from_pieces(tokens)
            if req.logprobs_top_k and items:
                top_tokens = [[t["token"] for t in it.get("top_logprobs") or []][: req.logprobs_top_k] for it in items]
                top_values = [[float(t["logprob"]) for t in it.get("top_logprobs") or []][: req.logprobs_top_k] for it in items]
        else:
            text = choice.get("text") or ""
            tokens = list(lp.get("tokens") or [])
            logprobs = [float(x) for x in lp.get("token_logprobs") or []]
            starts = char_starts_from_pieces(tokens)
            if req.logprobs_top_k and lp.get("top_logprobs"):
                ranked = [sorted((d or {}).items(), key=lambda kv: -kv[1])[: req.logprobs_top_k] for d in lp["top_logprobs"]]
                top_tokens = [[t for t, _ in r] for r in ranked]
                top_values = [[float(v) for _, v in r] for r in ranked]
        has_lp = bool(logprobs) and len(logprobs) == len(tokens)
        starts = [min(s + len(prefix), len(text)) for s in starts]
        return GenerationResult(
            request_key=req.request_key,
            completion_text=text,
            token_ids=None,
            tokens=tokens if has_lp else None,
            logprobs=logprobs if has_lp else [],
            char_starts=starts if has_lp else [],
            top_tokens=top_tokens if has_lp else None,
            top_logprobs=top_values if has_lp else None,
            n_prompt_tokens=int(usage.get("prompt_tokens") or 0),
            n_completion_tokens=int(usage.get("completion_tokens") or len(tokens)),
            finish_reason=finish,
            latency_ms=latency_ms,
            has_logprobs=has_lp or not text,
            prompt_context=None if chat else req.prompt_text,  # the server's chat template is out of sight
        )
