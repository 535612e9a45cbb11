"""Turn generation results into warehouse rows (polars): traces, token log-probs, shard record, rejections."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import polars as pl

from tasks.common.text import split_think
from tasks.generate.config import EngineConfig, SamplingConfig
from tasks.generate.requests import GenerationRequest, GenerationResult

LOGPROB_SCHEMA = {
    "trace_id": pl.String, "model_id": pl.String, "logprob_source": pl.String, "n_tokens": pl.Int32,
    "token_ids": pl.List(pl.Int32), "tokens": pl.List(pl.String), "logprobs": pl.List(pl.Float32),
    "char_starts": pl.List(pl.Int32), "top_k": pl.Int32, "top_token_ids": pl.List(pl.List(pl.Int32)),
    "top_tokens": pl.List(pl.List(pl.String)), "top_logprobs": pl.List(pl.List(pl.Float32)),
    "created_at": pl.Datetime("us"), "run_id": pl.String, "context_kind": pl.String,
}
TRACE_SCHEMA = {
    "trace_id": pl.String, "prompt_id": pl.String, "model_id": pl.String, "origin": pl.String,
    "sample_index": pl.Int32, "completion_text": pl.String, "reasoning_text": pl.String, "answer_text": pl.String,
    "n_prompt_tokens": pl.Int32, "n_completion_tokens": pl.Int32, "finish_reason": pl.String,
    "is_truncated": pl.Boolean, "temperature": pl.Float64, "top_p": pl.Float64, "max_tokens": pl.Int32,
    "seed": pl.Int64, "sampling_json": pl.String, "prompt_template_hash": pl.String, "request_key": pl.String,
    "latency_ms": pl.Float64, "cost_usd": pl.Float64, "source_ref": pl.String, "backend": pl.String,
    "shard_id": pl.String, "created_at": pl.Datetime("us"), "run_id": pl.String,
    "prompt_context_text": pl.String, "prompt_messages_json": pl.String, "is_chat_prompt": pl.Boolean,
}


@dataclass
class ShardRows:
    traces: pl.DataFrame
    logprobs: pl.DataFrame
    rejections: list[tuple[str, str, str, str]]  # (source_ref, reason_code, detail, payload)
    n_prompt_tokens: int
    n_completion_tokens: int
    cost_usd: float | None


def sampling_json(req: GenerationRequest, sampling: SamplingConfig) -> str:
    return json.dumps(
        {
            "temperature": req.temperature, "top_p": req.top_p, "max_tokens": req.max_tokens, "seed": req.seed,
            "run_seed": sampling.seed, "stop": list(req.stop), "n": sampling.n,
            "temperatures": list(sampling.temperatures), "use_chat_template": sampling.use_chat_template,
            "prompt_template": sampling.prompt_template, "system_prompt": sampling.system_prompt,
            "logprobs_top_k": req.logprobs_top_k,
        },
        sort_keys=True,
    )


def shard_rows(
    requests: list[GenerationRequest],
    results: list[GenerationResult],
    *,
    model_id: str,
    template_hash: str,
    engine: EngineConfig,
    sampling: SamplingConfig,
    shard_id: str,
    run_id: str,
    now: datetime,
) -> ShardRows:
    """Rows for one shard. Failed requests become rejections (re-tried by the next run), never traces."""
    if len(requests) != len(results):
        raise ValueError(f"shard {shard_id}: {len(requests)} requests but {len(results)} results")
    traces, lps, rejections = [], [], []
    tokens_in = tokens_out = 0
    cost_total: float | None = 0.0 if engine.is_priced else None
    for req, res in zip(requests, results):
        if res.request_key != req.request_key:
            raise ValueError(f"shard {shard_id}: result {res.request_key} answers request {req.request_key}")
        if not res.ok:
            payload = json.dumps({"request_key": req.request_key, "prompt_id": req.prompt_id, "model_id": model_id,
                                  "sample_index": req.sample_index})
            rejections.append((req.request_key, res.error_code or "generation_error", res.error_detail or "", payload))
            continue
        res.check()
        split = split_think(res.completion_text)
        cost = engine.cost_usd(res.n_prompt_tokens, res.n_completion_tokens)
        tokens_in += res.n_prompt_tokens
        tokens_out += res.n_completion_tokens
        if cost is not None:
            cost_total = (cost_total or 0.0) + cost
        traces.append({
            "trace_id": req.request_key, "prompt_id": req.prompt_id, "model_id": model_id, "origin": "generated",
            "sample_index": req.sample_index, "completion_text": res.completion_text,
            "reasoning_text": split.reasoning, "answer_text": split.answer,
            "n_prompt_tokens": res.n_prompt_tokens, "n_completion_tokens": res.n_completion_tokens,
            "finish_reason": res.finish_reason, "is_truncated": res.finish_reason == "length",
            "temperature": req.temperature, "top_p": req.top_p, "max_tokens": req.max_tokens, "seed": req.seed,
            "sampling_json": sampling_json(req, sampling), "prompt_template_hash": template_hash,
            "request_key": req.request_key, "latency_ms": res.latency_ms, "cost_usd": cost, "source_ref": None,
            "backend": engine.backend, "shard_id": shard_id, "created_at": now, "run_id": run_id,
            # the context the sample was drawn from (divergence scores every model on it)
            "prompt_context_text": res.prompt_context,
            "prompt_messages_json": json.dumps(req.messages()) if sampling.use_chat_template else None,
            "is_chat_prompt": sampling.use_chat_template,
        })
        if not res.has_logprobs:
            continue
        k = req.logprobs_top_k if (res.top_logprobs is not None) else 0
        lps.append({
            "trace_id": req.request_key, "model_id": model_id, "logprob_source": "sampled",
            "n_tokens": len(res.logprobs), "token_ids": res.token_ids,
            "tokens": res.tokens if res.token_ids is None else None, "logprobs": res.logprobs,
            "char_starts": res.char_starts, "top_k": k,
            "top_token_ids": res.top_token_ids if k else None,
            "top_tokens": res.top_tokens if k and res.top_token_ids is None else None,
            "top_logprobs": res.top_logprobs if k else None, "created_at": now, "run_id": run_id,
            "context_kind": "recorded",  # sampled from the trace's own context
        })
    return ShardRows(
        traces=pl.DataFrame(traces, schema=TRACE_SCHEMA),
        logprobs=pl.DataFrame(lps, schema=LOGPROB_SCHEMA),
        rejections=rejections,
        n_prompt_tokens=tokens_in,
        n_completion_tokens=tokens_out,
        cost_usd=cost_total,
    )
