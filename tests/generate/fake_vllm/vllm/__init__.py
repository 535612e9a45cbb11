"""A stand-in for the `vllm` package (the subset the worker uses), backed by potstill's hf decoder.

Put `tests/generate/fake_vllm` first on PYTHONPATH and run the real `tasks/generate/vllm_worker.py`:
the protocol, files and parsing are exercised without a GPU. Mimics vLLM's output shapes:
token_ids keep the EOS id, text drops it; a stop string is cut from the text, not from the ids;
each position's logprobs dict holds the sampled token and the top-k, with 1-based vocabulary ranks.
FAKE_VLLM_DIE=1 makes `generate` kill the process (a worker crash).
"""

from __future__ import annotations

import os
from types import SimpleNamespace

__version__ = "0.0.0+standin"


class SamplingParams:
    def __init__(self, n=1, temperature=1.0, top_p=1.0, max_tokens=16, seed=None, stop=None, logprobs=None):
        self.n, self.temperature, self.top_p, self.max_tokens = n, temperature, top_p, max_tokens
        self.seed, self.stop, self.logprobs = seed or 0, tuple(stop or ()), logprobs


class LLM:
    def __init__(self, model, dtype="auto", gpu_memory_utilization=0.9, revision=None, max_model_len=None, **_):
        from tasks.generate.config import EngineConfig
        from tasks.generate.hf_backend import HFBackend

        self._backend = HFBackend(EngineConfig(model=model, batch_size=16, cpu_threads=1))
        self._tok = self._backend.tokenizer

    def generate(self, prompts, sampling_params, use_tqdm=False):
        from tasks.generate.requests import GenerationRequest

        if os.environ.get("FAKE_VLLM_DIE") == "1":
            os._exit(3)
        reqs = [
            GenerationRequest(f"r{i}", "-", 0, "", sp.temperature, sp.top_p, sp.max_tokens, sp.seed, sp.stop,
                              logprobs_top_k=max(sp.logprobs or 0, 1))
            for i, sp in enumerate(sampling_params)
        ]
        ids = [list(p["prompt_token_ids"]) for p in prompts]
        results = self._backend.generate_ids(reqs, ids)
        eos = self._tok.eos_token_id
        outs = []
        for prompt, sp, res in zip(ids, sampling_params, results):
            token_ids, lps = list(res.token_ids), list(res.logprobs)
            tops, top_lps = list(res.top_token_ids), list(res.top_logprobs)
            if res.finish_reason == "stop" and not sp.stop:  # ended by EOS: vLLM keeps its id
                token_ids.append(eos)
                lps.append(0.0)
                tops.append([eos])
                top_lps.append([0.0])
            positions = []
            for tid, lp, tid_top, lp_top in zip(token_ids, lps, tops, top_lps):
                k = sp.logprobs or 0
                d = {t: SimpleNamespace(logprob=v, rank=r + 1, decoded_token=None) for r, (t, v) in enumerate(zip(tid_top[:k], lp_top[:k]))}
                if tid not in d:
                    d[tid] = SimpleNamespace(logprob=lp, rank=1000, decoded_token=None)
                positions.append(d)
            comp = SimpleNamespace(text=res.completion_text, token_ids=token_ids, logprobs=positions,
                                   finish_reason=res.finish_reason, cumulative_logprob=sum(lps))
            outs.append(SimpleNamespace(prompt_token_ids=prompt, outputs=[comp]))
        return outs
