"""A stand-in for the `vllm` package (the subset the worker uses), backed by potstill's hf decoder.

Put `tests/generate/fake_vllm` first on PYTHONPATH and run the real `tasks/generate/vllm_worker.py`:
the protocol, files and parsing are exercised without a GPU. Mimics vLLM's output shapes:
token_ids keep the EOS id, text drops it; a stop string is cut from the text, not from the ids;
each position's logprobs dict holds the sampled token and the top-k, with 1-based vocabulary ranks.
Log-probs follow the `logprobs_mode` engine argument like vLLM's: 'raw_logprobs' are the model's own,
'processed_logprobs' those of the temperature-scaled distribution it sampled from. The stand-in's
default is 'processed_logprobs', so a worker that does not pin raw mode stores the wrong values.
FAKE_VLLM_DIE=1 makes `generate` kill the process (a worker crash); FAKE_VLLM_OLD=1 plays a vLLM
from before `logprobs_mode` existed (no such engine argument).
"""

from __future__ import annotations

import dataclasses
import os
from types import SimpleNamespace

__version__ = "0.0.0+standin"
LOGPROBS_MODES = ("raw_logprobs", "processed_logprobs", "raw_logits", "processed_logits")

if os.environ.get("FAKE_VLLM_OLD") == "1":
    __version__ = "0.6.0+standin"

    @dataclasses.dataclass
    class EngineArgs:
        model: str = ""
        dtype: str = "auto"
else:

    @dataclasses.dataclass
    class EngineArgs:
        model: str = ""
        dtype: str = "auto"
        logprobs_mode: str = "processed_logprobs"


class SamplingParams:
    def __init__(self, n=1, temperature=1.0, top_p=1.0, max_tokens=16, seed=None, stop=None, logprobs=None):
        self.n, self.temperature, self.top_p, self.max_tokens = n, temperature, top_p, max_tokens
        self.seed, self.stop, self.logprobs = seed or 0, tuple(stop or ()), logprobs


class LLM:
    def __init__(self, model, dtype="auto", gpu_memory_utilization=0.9, revision=None, max_model_len=None, **kwargs):
        from tasks.generate.config import EngineConfig
        from tasks.generate.hf_backend import HFBackend

        unknown = set(kwargs) - {f.name for f in dataclasses.fields(EngineArgs)}
        if unknown:  # vLLM rejects engine arguments it does not know
            raise TypeError(f"unexpected engine arguments {sorted(unknown)}")
        self.logprobs_mode = kwargs.get("logprobs_mode", getattr(EngineArgs, "logprobs_mode", "processed_logprobs"))
        if self.logprobs_mode not in ("raw_logprobs", "processed_logprobs"):
            raise NotImplementedError(f"the stand-in does not play logprobs_mode={self.logprobs_mode!r}")
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
            if self.logprobs_mode == "processed_logprobs" and sp.temperature > 0:
                lps, top_lps = self._processed(prompt, token_ids, tops, sp.temperature)
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

    def _processed(self, prompt, token_ids, tops, temperature):
        """Log-probs of the temperature-scaled distribution (what vLLM's processed mode returns)."""
        import torch

        model = self._backend.model
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([prompt + token_ids])).logits[0].float()
        logp = torch.log_softmax(logits[len(prompt) - 1 : len(prompt) - 1 + len(token_ids)] / temperature, -1)
        lps = [logp[i, t].item() for i, t in enumerate(token_ids)]
        return lps, [[logp[i, t].item() for t in row] for i, row in enumerate(tops)]
