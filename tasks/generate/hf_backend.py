"""In-process transformers backend: batched, length-sorted, left-padded decoding with a KV cache.

Sampling is seeded per request (`tasks.generate.sampling`), so a request gives the same sample
in any batch. Log-probs are the model's raw log-softmax of each sampled token.
"""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass

import torch

from tasks.common.threads import torch_threads
from tasks.generate.backend import (
    GenerateError,
    local_model_id,
    local_template_hash,
    prompt_text_ids,
    render_prompt_ids,
    render_prompt_text,
)
from tasks.generate.config import EngineConfig, SamplingConfig
from tasks.generate.offsets import token_char_starts
from tasks.generate.requests import GenerationRequest, GenerationResult
from tasks.generate.sampling import sample_tokens

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if dtype not in DTYPES:
        raise GenerateError(f"engine.dtype must be auto or one of {sorted(DTYPES)}, got {dtype!r}")
    return DTYPES[dtype]


def _cache_keyword(model) -> str:
    """transformers >= 5.2x names the KV-cache argument `cache`; earlier versions `past_key_values`."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _output_cache(out):
    return out["cache"] if "cache" in out else out["past_key_values"]


@dataclass
class DecodedRow:
    """Raw decode output of one row: sampled ids (EOS excluded) and their log-probs."""

    token_ids: list[int]
    logprobs: list[float]
    top_token_ids: list[list[int]] | None
    top_logprobs: list[list[float]] | None
    hit_eos: bool
    hit_stop: bool


class HFBackend:
    """transformers backend. `decode` is the engine; `generate` adds rendering, sorting and offsets."""

    def __init__(self, engine: EngineConfig, *, model=None, tokenizer=None) -> None:
        self.engine = engine
        self._model = model
        self._tokenizer = tokenizer
        self._model_id: str | None = None

    # -- loading -----------------------------------------------------------------------------------
    @property
    def tokenizer(self):
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(self.engine.model, revision=self.engine.revision)
        return self._tokenizer

    @property
    def model(self):
        if self._model is None:
            from transformers import AutoModelForCausalLM

            device = resolve_device(self.engine.device)
            self._model = AutoModelForCausalLM.from_pretrained(
                self.engine.model, revision=self.engine.revision, dtype=resolve_dtype(self.engine.dtype, device)
            ).to(device)
            self._model.eval()
        return self._model

    def model_id(self) -> str:
        if self._model_id is None:
            self._model_id = local_model_id(self.engine)
        return self._model_id

    def template_hash(self, sampling: SamplingConfig) -> str:
        return local_template_hash(self.tokenizer, sampling)

    def context_length(self) -> int:
        cfg = getattr(self.model, "config", None)
        return int(getattr(cfg, "max_position_embeddings", None) or self.tokenizer.model_max_length)

    def eos_ids(self) -> list[int]:
        ids: set[int] = set()
        for source in (getattr(self.model, "generation_config", None), getattr(self.model, "config", None), self.tokenizer):
            value = getattr(source, "eos_token_id", None)
            if value is not None:
                ids.update([value] if isinstance(value, int) else value)
        if not ids:
            raise GenerateError(f"{self.engine.display_name}: no EOS token id in the tokenizer or generation config")
        return sorted(ids)

    def count_prompt_tokens(self, requests: list[GenerationRequest], use_chat_template: bool) -> tuple[list[int], bool]:
        return [len(render_prompt_ids(self.tokenizer, r, use_chat_template)) for r in requests], True

    def close(self) -> None:
        self._model = None

    # -- generation --------------------------------------------------------------------------------
    def generate(self, requests: list[GenerationRequest], use_chat_template: bool) -> list[GenerationResult]:
        texts = [render_prompt_text(self.tokenizer, r, use_chat_template) for r in requests]
        results = self.generate_ids(requests, [prompt_text_ids(self.tokenizer, t, use_chat_template) for t in texts])
        for res, text in zip(results, texts):
            res.prompt_context = text
        return results

    def generate_ids(self, requests: list[GenerationRequest], prompts: list[list[int]]) -> list[GenerationResult]:
        """Generate from pre-tokenized prompts (longest first, in batches of `engine.batch_size`).

        On CPU with `engine.cpu_threads`, torch runs with that many threads for this call only.
        """
        on_cpu = resolve_device(self.engine.device).type == "cpu"
        with torch_threads(self.engine.cpu_threads if on_cpu else None):
            return self._generate_ids(requests, prompts)

    def _generate_ids(self, requests: list[GenerationRequest], prompts: list[list[int]]) -> list[GenerationResult]:
        limit = self.context_length()
        results: dict[int, GenerationResult] = {}
        todo: list[int] = []
        for i, (req, ids) in enumerate(zip(requests, prompts)):
            if len(ids) >= limit:
                results[i] = GenerationResult(
                    req.request_key, n_prompt_tokens=len(ids), finish_reason="error", error_code="prompt_too_long",
                    error_detail=f"{len(ids)} prompt tokens >= context length {limit} of {self.engine.display_name}",
                )
            else:
                todo.append(i)
        todo.sort(key=lambda i: -len(prompts[i]))
        size = self.engine.batch_size
        for start in range(0, len(todo), size):
            batch = todo[start : start + size]
            t0 = time.perf_counter()
            rows = self.decode(
                [prompts[i] for i in batch],
                temperatures=[requests[i].temperature for i in batch],
                top_ps=[requests[i].top_p for i in batch],
                max_new_tokens=[min(requests[i].max_tokens, limit - len(prompts[i])) for i in batch],
                seeds=[requests[i].seed for i in batch],
                stops=[requests[i].stop for i in batch],
                top_k=max(requests[i].logprobs_top_k for i in batch),
            )
            latency = (time.perf_counter() - t0) * 1000
            for i, row in zip(batch, rows):
                results[i] = self._result(requests[i], prompts[i], row, latency)
        return [results[i] for i in range(len(requests))]

    def _result(self, req: GenerationRequest, prompt: list[int], row: DecodedRow, latency_ms: float) -> GenerationResult:
        text, starts = token_char_starts(self.tokenizer, row.token_ids)
        n = len(row.token_ids)
        stopped = row.hit_eos or row.hit_stop
        cuts = [text.find(s) for s in req.stop if s and s in text]
        if cuts:
            cut = min(cuts)
            n = sum(1 for s in starts if s < cut)
            text, stopped = text[:cut], True
        k = req.logprobs_top_k
        return GenerationResult(
            request_key=req.request_key,
            completion_text=text,
            token_ids=row.token_ids[:n],
            logprobs=row.logprobs[:n],
            char_starts=starts[:n],
            top_token_ids=[x[:k] for x in row.top_token_ids[:n]] if k and row.top_token_ids is not None else None,
            top_logprobs=[x[:k] for x in row.top_logprobs[:n]] if k and row.top_logprobs is not None else None,
            n_prompt_tokens=len(prompt),
            n_completion_tokens=n,
            finish_reason="stop" if stopped else "length",
            latency_ms=latency_ms,
        )

    @torch.inference_mode()
    def decode(
        self,
        prompts: list[list[int]],
        *,
        temperatures: list[float],
        top_ps: list[float],
        max_new_tokens: list[int],
        seeds: list[int],
        stops: list[tuple[str, ...]] | None = None,
        top_k: int = 0,
    ) -> list[DecodedRow]:
        """Decode one left-padded batch with a KV cache until every row hit EOS, a stop string or its limit.

        Finished rows are dropped from the batch (and the cache) once a quarter of it has finished,
        so short completions stop costing compute. Sampling is per row, so this changes no sample.
        """
        model, tok = self.model, self.tokenizer
        device = next(model.parameters()).device
        pad = tok.pad_token_id if tok.pad_token_id is not None else self.eos_ids()[0]
        eos = torch.tensor(self.eos_ids(), device=device)
        n_rows, width = len(prompts), max(len(p) for p in prompts)
        n_steps = int(max(max_new_tokens))
        input_ids = torch.full((n_rows, width), pad, dtype=torch.long)
        full_mask = torch.zeros((n_rows, width + n_steps), dtype=torch.long)  # prompt + every future step; sliced per step
        for j, ids in enumerate(prompts):
            input_ids[j, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
            full_mask[j, width - len(ids) :] = 1
        input_ids, full_mask = input_ids.to(device), full_mask.to(device)
        positions = (full_mask[:, :width].cumsum(-1) - 1).clamp(min=0)
        nucleus = any(p < 1 for p in top_ps)
        temps = torch.tensor(temperatures, dtype=torch.float32, device=device)
        tops = torch.tensor(top_ps, dtype=torch.float32, device=device)
        seed_t = torch.tensor(seeds, dtype=torch.int64, device=device)
        limits = torch.tensor(max_new_tokens, dtype=torch.long, device=device)
        stops = stops or [()] * n_rows
        any_stop = any(stops)
        tails = [""] * n_rows
        stop_hit = torch.zeros(n_rows, dtype=torch.bool)

        # outputs by original row; `active` maps batch rows to original rows
        toks = torch.full((n_rows, n_steps), pad, dtype=torch.long, device=device)
        lps = torch.zeros((n_rows, n_steps), dtype=torch.float32, device=device)
        lengths = torch.zeros(n_rows, dtype=torch.long, device=device)
        eos_hit = torch.zeros(n_rows, dtype=torch.bool, device=device)
        top_ids = torch.zeros((n_rows, n_steps, top_k), dtype=torch.long, device=device) if top_k else None
        top_lps = torch.zeros((n_rows, n_steps, top_k), dtype=torch.float32, device=device) if top_k else None
        active = torch.arange(n_rows, device=device)

        cache_kw = _cache_keyword(model)
        out = model(input_ids=input_ids, attention_mask=full_mask[:, :width], position_ids=positions, use_cache=True,
                    logits_to_keep=1)
        cache, next_pos = _output_cache(out), positions[:, -1] + 1
        finished = torch.zeros(n_rows, dtype=torch.bool, device=device)
        for step in range(n_steps):
            logits = out.logits[:, -1, :].float()
            logp = torch.log_softmax(logits, dim=-1)
            token = sample_tokens(logits, temps, tops, seed_t, step, nucleus=nucleus)
            live = active[~finished]
            toks[live, step] = token[~finished]
            lps[live, step] = logp.gather(-1, token[:, None])[:, 0][~finished]
            lengths[live] += 1
            if top_k:
                values, indices = logp.topk(top_k, dim=-1)
                top_ids[live, step] = indices[~finished]
                top_lps[live, step] = values[~finished]
            is_eos = torch.isin(token, eos) & ~finished
            eos_hit[active] |= is_eos
            finished |= is_eos | (limits <= step + 1)
            if any_stop:
                rows = active.tolist()
                pieces = tok.batch_decode(token[:, None].tolist(), skip_special_tokens=False)
                for b, j in enumerate(rows):
                    if stops[j] and not stop_hit[j]:
                        tails[j] = (tails[j] + pieces[b])[-(max(len(s) for s in stops[j]) * 4 + 8) :]
                        if any(s and s in tails[j] for s in stops[j]):
                            stop_hit[j] = True
                finished |= stop_hit[active.cpu()].to(device)
            n_finished, n_batch = int(finished.sum()), finished.shape[0]
            if n_finished == n_batch:
                break
            if n_finished * 4 >= n_batch:  # compact: drop finished rows from the batch and the cache
                keep = (~finished).nonzero().squeeze(1)
                cache.batch_select_indices(keep)
                full_mask, next_pos, temps, tops, seed_t, limits = (
                    t[keep] for t in (full_mask, next_pos, temps, tops, seed_t, limits)
                )
                token, active, finished = token[keep], active[keep], finished[keep]
            token = torch.where(finished, torch.full_like(token, pad), token)
            out = model(input_ids=token[:, None], attention_mask=full_mask[:, : width + step + 1],
                        position_ids=next_pos[:, None], use_cache=True, **{cache_kw: cache})
            cache, next_pos = _output_cache(out), next_pos + 1

        toks, lps, lengths = toks.cpu(), lps.cpu(), lengths.cpu().tolist()
        eos_hit_cpu = eos_hit.cpu()
        top_ids = top_ids.cpu() if top_ids is not None else None
        top_lps = top_lps.cpu() if top_lps is not None else None
        rows_out = []
        for j in range(n_rows):
            n = lengths[j] - int(eos_hit_cpu[j])  # the EOS token is not part of the completion
            rows_out.append(
                DecodedRow(
                    token_ids=toks[j, :n].tolist(),
                    logprobs=lps[j, :n].tolist(),
                    top_token_ids=top_ids[j, :n].tolist() if top_ids is not None else None,
                    top_logprobs=top_lps[j, :n].tolist() if top_lps is not None else None,
                    hit_eos=bool(eos_hit_cpu[j]),
                    hit_stop=bool(stop_hit[j]),
                )
            )
        return rows_out
