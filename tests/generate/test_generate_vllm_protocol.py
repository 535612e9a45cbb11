"""The vLLM backend's worker protocol, with the real worker script over a stand-in `vllm` package."""

from __future__ import annotations

import sys

import pytest

from tasks.generate.backend import GenerateError
from tasks.generate.config import EngineConfig, SamplingConfig
from tasks.generate.hf_backend import HFBackend
from tasks.generate.requests import build_requests
from tasks.generate.vllm_backend import VLLMBackend, VLLMWorkerError
from tests.conftest import REPO

FAKE = REPO / "tests" / "generate" / "fake_vllm"
SAMPLING = SamplingConfig(n=2, temperatures=(1.0,), max_tokens=20, logprobs_top_k=2)


@pytest.fixture
def worker_env(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", f"{FAKE}:{REPO}")
    monkeypatch.setenv("POTSTILL_VLLM_PYTHON", sys.executable)


@pytest.mark.slow  # starts a worker process that imports torch (20-60 s on a busy 2-core machine)
def test_vllm_backend_round_trip_matches_hf(tiny_model_dir, worker_env):
    backend = VLLMBackend(EngineConfig(model=str(tiny_model_dir), name="tiny", backend="vllm"))
    reqs = build_requests([("p_1", "Compute 1+2"), ("p_2", "Compute 4*4")], model_id=backend.model_id(),
                          template_hash=backend.template_hash(SAMPLING), sampling=SAMPLING)
    try:
        results = backend.generate(reqs, True)
        again = backend.generate(reqs[:1], True)  # the same worker serves a second shard
    finally:
        backend.close()
    assert backend.vllm_version == "0.0.0+standin"
    local = HFBackend(EngineConfig(model=str(tiny_model_dir), batch_size=8, cpu_threads=1)).generate(reqs, True)
    assert [r.completion_text for r in results] == [r.completion_text for r in local]
    assert again[0].completion_text == results[0].completion_text
    for res, ref in zip(results, local):
        res.check()
        assert res.token_ids == ref.token_ids and res.char_starts == ref.char_starts
        assert res.logprobs == pytest.approx(ref.logprobs, abs=1e-4)
        assert res.finish_reason == ref.finish_reason and res.n_prompt_tokens == ref.n_prompt_tokens
        assert [len(t) for t in res.top_token_ids] == [2] * len(res.token_ids)


@pytest.mark.slow
def test_a_dead_worker_is_a_retryable_error(tiny_model_dir, worker_env, monkeypatch):
    monkeypatch.setenv("FAKE_VLLM_DIE", "1")
    backend = VLLMBackend(EngineConfig(model=str(tiny_model_dir), name="tiny", backend="vllm"))
    reqs = build_requests([("p_1", "x")], model_id="m", template_hash="t", sampling=SAMPLING)
    with pytest.raises(VLLMWorkerError, match="exited with code 3"):
        backend.generate(reqs, True)


def test_missing_interpreter_says_what_to_set(tiny_model_dir, monkeypatch):
    monkeypatch.delenv("POTSTILL_VLLM_PYTHON", raising=False)
    backend = VLLMBackend(EngineConfig(model=str(tiny_model_dir), backend="vllm"))
    with pytest.raises(GenerateError, match="POTSTILL_VLLM_PYTHON"):
        backend.generate(build_requests([("p_1", "x")], model_id="m", template_hash="t", sampling=SAMPLING), True)


def test_worker_imports_only_vllm_and_pyarrow():
    source = (REPO / "tasks" / "generate" / "vllm_worker.py").read_text()
    imports = {line.split()[1].split(".")[0] for line in source.splitlines() if line.startswith(("import ", "from "))}
    assert imports <= {"argparse", "json", "os", "sys", "traceback", "pyarrow", "vllm", "__future__"}, imports


@pytest.mark.slow  # starts the worker process (imports torch)
def test_vllm_stores_the_models_own_logprobs_at_t07(tiny_model_dir, worker_env):
    """The stand-in returns temperature-scaled log-probs unless raw mode is pinned, as vLLM can."""
    import torch

    sampling = SamplingConfig(n=2, temperatures=(0.7,), max_tokens=20, system_prompt="Show every step.",
                              prompt_template="Q: {problem}")
    backend = VLLMBackend(EngineConfig(model=str(tiny_model_dir), name="tiny", backend="vllm"))
    reqs = build_requests([("p_1", "Compute 1+2"), ("p_2", "Compute 4*4")], model_id=backend.model_id(),
                          template_hash=backend.template_hash(sampling), sampling=sampling)
    try:
        results = backend.generate(reqs, True)
    finally:
        backend.close()
    hf = HFBackend(EngineConfig(model=str(tiny_model_dir), batch_size=8, cpu_threads=1))
    assert sum(len(r.token_ids) > 2 for r in results) >= 2
    for res in results:
        res.check()
        if not res.token_ids:
            continue
        assert res.prompt_context is not None and "Show every step." in res.prompt_context
        prompt = hf.tokenizer(res.prompt_context, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = hf.model(input_ids=torch.tensor([prompt + res.token_ids])).logits[0].float()
        rows = logits[len(prompt) - 1 : len(prompt) - 1 + len(res.token_ids)]
        raw = torch.log_softmax(rows, -1).gather(1, torch.tensor(res.token_ids)[:, None])[:, 0].tolist()
        scaled = torch.log_softmax(rows / 0.7, -1).gather(1, torch.tensor(res.token_ids)[:, None])[:, 0].tolist()
        assert res.logprobs == pytest.approx(raw, abs=1e-4)
        assert max(abs(a - b) for a, b in zip(res.logprobs, scaled)) > 1e-2  # processed values would fail above


@pytest.mark.slow
def test_a_vllm_without_logprobs_mode_is_refused_clearly(tiny_model_dir, worker_env, monkeypatch):
    monkeypatch.setenv("FAKE_VLLM_OLD", "1")
    backend = VLLMBackend(EngineConfig(model=str(tiny_model_dir), name="tiny", backend="vllm"))
    reqs = build_requests([("p_1", "x")], model_id="m", template_hash="t", sampling=SAMPLING)
    with pytest.raises(GenerateError, match=r"vllm 0\.6\.0\+standin has no `logprobs_mode`.*vllm>=0\.10\.2") as info:
        backend.generate(reqs, True)
    assert not isinstance(info.value, VLLMWorkerError)  # not retryable: a retry cannot fix the version
