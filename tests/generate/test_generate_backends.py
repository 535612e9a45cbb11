"""One contract for every backend: hf in-process, and openai against a local stand-in server."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from standin_server import StandinServer

from tasks.generate.backend import BackendUnavailableError, GenerateError, render_prompt_ids
from tasks.generate.config import EngineConfig, SamplingConfig
from tasks.generate.hf_backend import HFBackend
from tasks.generate.openai_backend import OpenAIBackend
from tasks.generate.requests import GenerationRequest, build_requests

PROMPTS = [("p_1", "Compute 1+2"), ("p_2", "Compute 3*4-5"), ("p_3", "Compute 7-1*2+9")]
SAMPLING = SamplingConfig(n=2, temperatures=(1.0, 0.0), max_tokens=24, logprobs_top_k=3)
KEY_ENV = "POTSTILL_TEST_STANDIN_KEY"


@pytest.fixture(scope="module")
def hf_backend(tiny_model_dir):
    return HFBackend(EngineConfig(model=str(tiny_model_dir), name="tiny", batch_size=4, cpu_threads=1))


@pytest.fixture(scope="module")
def standin(tiny_model_dir):
    server = StandinServer(tiny_model_dir, api_key="sk-test").start()
    yield server
    server.stop()


def openai_backend(standin, **overrides) -> OpenAIBackend:
    cfg = {"model": "toy", "name": "tiny", "backend": "openai", "base_url": standin.base_url, "api_key_env": KEY_ENV,
           "concurrency": 4, "timeout_s": 30.0, "backoff_s": 0.01, "max_retries": 3}
    return OpenAIBackend(EngineConfig(**{**cfg, **overrides}))


@pytest.fixture(params=["hf", "openai"])
def backend(request, hf_backend, standin, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-test")
    return hf_backend if request.param == "hf" else openai_backend(standin)


def requests_for(sampling=SAMPLING, prompts=PROMPTS):
    return build_requests(prompts, model_id="tiny@test", template_hash="t", sampling=sampling)


def pieces_of(backend, res) -> list[str]:
    if res.token_ids is not None:
        return backend.tokenizer.batch_decode([[i] for i in res.token_ids], skip_special_tokens=False)
    return res.tokens


@pytest.mark.parametrize("chat", [True, False])
def test_results_satisfy_the_row_contract(backend, chat):
    sampling = dataclasses.replace(SAMPLING, use_chat_template=chat)
    reqs = requests_for(sampling)
    results = backend.generate(reqs, chat)
    assert [r.request_key for r in results] == [r.request_key for r in reqs]
    for req, res in zip(reqs, results):
        assert res.ok, res.error_detail
        res.check()
        assert res.n_prompt_tokens > 0
        assert res.finish_reason in ("stop", "length")
        assert res.n_completion_tokens == len(res.logprobs) <= req.max_tokens
        if res.finish_reason == "length":
            assert res.n_completion_tokens == req.max_tokens
        assert all(lp <= 1e-6 for lp in res.logprobs)
        assert res.char_starts == sorted(res.char_starts)
        pieces = pieces_of(backend, res)
        assert "".join(pieces) == res.completion_text
        assert res.char_starts == [sum(len(p) for p in pieces[:i]) for i in range(len(pieces))]
        assert len(res.top_logprobs) == len(res.logprobs)
        for lp, top in zip(res.logprobs, res.top_logprobs):
            assert len(top) == 3 and top == sorted(top, reverse=True) and lp <= top[0] + 1e-5
    greedy = [res for req, res in zip(reqs, results) if req.temperature == 0]
    assert greedy[0].completion_text == greedy[1].completion_text  # two greedy samples of p_1 agree


def test_a_request_samples_the_same_in_any_batch(backend):
    reqs = requests_for()
    first = backend.generate(reqs, True)
    again = backend.generate(list(reversed(reqs[1:4])), True)
    assert [r.completion_text for r in reversed(again)] == [r.completion_text for r in first[1:4]]
    assert len({r.completion_text for r in first if r.n_completion_tokens > 3}) > 1  # sampling does vary


def test_stop_strings_end_the_completion_and_are_excluded(backend):
    base = GenerationRequest("k1", "p_1", 0, "Compute 1+2", 1.0, 1.0, 24, seed=11)
    full = backend.generate([base], True)[0].completion_text
    assert len(full) >= 6, "fixture model should write a few characters at seed 11"
    stop = full[3:5]
    cut = full.find(stop)
    res = backend.generate([dataclasses.replace(base, stop=(stop,))], True)[0]
    assert res.completion_text == full[:cut]
    assert res.finish_reason == "stop"


def test_max_tokens_truncates_with_finish_reason_length(backend):
    reqs = [GenerationRequest(f"k{s}", "p_1", 0, "Compute 1+2", 1.0, 1.0, 2, seed=s) for s in range(6)]
    results = backend.generate(reqs, True)
    assert all(r.n_completion_tokens <= 2 for r in results)
    assert any(r.finish_reason == "length" for r in results)


def test_hf_logprobs_equal_a_teacher_forced_forward_pass(hf_backend):
    reqs = requests_for()[:4]
    results = hf_backend.generate(reqs, True)
    model, tok = hf_backend.model, hf_backend.tokenizer
    for req, res in zip(reqs, results):
        prompt = render_prompt_ids(tok, req, True)
        ids = torch.tensor([prompt + res.token_ids])
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), -1)
        forced = [logp[len(prompt) + i - 1, t].item() for i, t in enumerate(res.token_ids)]
        assert forced == pytest.approx(res.logprobs, abs=1e-4)


def test_openai_backend_answers_what_hf_generates(hf_backend, standin, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-test")
    reqs = requests_for()
    local = hf_backend.generate(reqs, True)
    remote = openai_backend(standin).generate(reqs, True)
    assert [r.completion_text for r in remote] == [r.completion_text for r in local]
    for a, b in zip(local, remote):
        assert b.logprobs == pytest.approx(a.logprobs, abs=1e-3)  # batch padding moves the last digits
        assert b.char_starts == a.char_starts and b.n_prompt_tokens == a.n_prompt_tokens


def test_openai_retries_429_and_500(standin, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-test")
    standin.faults.extend(["429", "500"])
    before = standin.n_requests
    res = openai_backend(standin, concurrency=1).generate(requests_for()[:1], True)[0]
    assert res.ok and standin.n_requests - before == 3


def test_openai_retries_a_timeout(standin, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-test")
    standin.faults.append("sleep:10")
    before = standin.n_requests
    res = openai_backend(standin, concurrency=1, timeout_s=4.0).generate(requests_for()[:1], True)[0]
    assert res.ok and standin.n_requests - before == 2  # the hung request, then a good retry


def test_openai_gives_up_after_max_retries(standin, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-test")
    standin.faults.extend(["500"] * 3)
    backend = openai_backend(standin, concurrency=1, max_retries=2)
    with pytest.raises(BackendUnavailableError, match="server_error"):
        backend.generate(requests_for()[:1], True)
    standin.faults.clear()
    standin.faults.extend(["500"] * 3)  # one request fails for good, the other succeeds: a per-row error
    results = backend.generate(requests_for()[:2], True)
    assert [r.ok for r in results] == [False, True]
    assert results[0].error_code == "server_error" and results[0].retryable


def test_openai_auth_errors_are_not_retried(standin, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "wrong")
    before = standin.n_requests
    res = openai_backend(standin).generate(requests_for()[:1], True)[0]
    assert res.error_code == "http_401" and not res.retryable and standin.n_requests - before == 1
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(GenerateError, match=KEY_ENV):
        openai_backend(standin).generate(requests_for()[:1], True)


def test_dry_run_token_counts(hf_backend, standin):
    reqs = requests_for()
    exact, is_exact = hf_backend.count_prompt_tokens(reqs, True)
    assert is_exact and exact == [len(render_prompt_ids(hf_backend.tokenizer, r, True)) for r in reqs]
    approx, is_exact = openai_backend(standin).count_prompt_tokens(reqs, True)
    assert not is_exact and all(a > 0 for a in approx)


def test_cpu_threads_apply_to_generation_only(tiny_model_dir):
    """A one-thread teacher must not leave later stages of the same process (fine-tuning in
    `potstill demo`) on one core: torch's thread count is process-wide."""
    before = torch.get_num_threads()
    seen = []
    backend = HFBackend(EngineConfig(model=str(tiny_model_dir), name="tiny", batch_size=4, cpu_threads=1))
    inner = backend.decode

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return inner(*args, **kwargs)

    backend.decode = spy
    assert all(r.ok for r in backend.generate(requests_for(), True))
    assert seen and set(seen) == {1}
    assert torch.get_num_threads() == before


def test_hf_logprobs_at_t08_are_the_models_own_not_temperature_scaled(hf_backend):
    """The toy recipe samples at T = 0.8 (top_p < 1 too here): stored log-probs must be the raw log-softmax."""
    sampling = SamplingConfig(n=2, temperatures=(0.8,), top_p=0.9, max_tokens=24, system_prompt="Be brief.",
                              prompt_template="Q: {problem}\nA:")
    reqs = requests_for(sampling)[:4]
    results = hf_backend.generate(reqs, True)
    model, tok = hf_backend.model, hf_backend.tokenizer
    n_scaled_apart = 0
    for req, res in zip(reqs, results):
        assert res.prompt_context == tok.apply_chat_template(req.messages(), add_generation_prompt=True, tokenize=False)
        assert "Be brief." in res.prompt_context and req.prompt_text.startswith("Q: ") and req.prompt_text in res.prompt_context
        prompt = tok(res.prompt_context, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([prompt + res.token_ids])
        with torch.no_grad():
            logits = model(input_ids=ids).logits[0].float()
        rows = range(len(prompt) - 1, len(prompt) - 1 + len(res.token_ids))
        raw = [torch.log_softmax(logits[r], -1)[t].item() for r, t in zip(rows, res.token_ids)]
        scaled = [torch.log_softmax(logits[r] / 0.8, -1)[t].item() for r, t in zip(rows, res.token_ids)]
        assert raw == pytest.approx(res.logprobs, abs=1e-4)
        n_scaled_apart += max(abs(a - b) for a, b in zip(scaled, res.logprobs)) > 1e-2
    assert n_scaled_apart == len(reqs)  # the check can tell raw from temperature-scaled values
