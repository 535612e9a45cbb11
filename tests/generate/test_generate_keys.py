"""Request keys, seeds and configs: every sampling parameter invalidates the cache, nothing else does."""

from __future__ import annotations

import dataclasses

import pytest

from tasks.generate.config import EngineConfig, GenerateConfigError, SamplingConfig
from tasks.generate.requests import build_requests, derive_seed, request_key, shard_id_for, shards

BASE = SamplingConfig(n=2, temperatures=(0.6, 1.0), max_tokens=64, seed=7, stop=("</s>",))


def keys(sampling=BASE, model_id="m@1", template="tpl", prompts=(("p_1", "Compute 1+2"),)):
    return [r.request_key for r in build_requests(list(prompts), model_id=model_id, template_hash=template, sampling=sampling)]


def test_one_key_per_sample_and_temperature():
    reqs = build_requests([("p_1", "x"), ("p_2", "y")], model_id="m@1", template_hash="t", sampling=BASE)
    assert len(reqs) == 8
    assert len({r.request_key for r in reqs}) == 8
    assert [r.sample_index for r in reqs[:4]] == [0, 1, 2, 3]
    assert [r.temperature for r in reqs[:4]] == [0.6, 0.6, 1.0, 1.0]
    assert reqs[0].seed == derive_seed(reqs[0].request_key)


def test_keys_are_stable():
    assert keys() == keys()


@pytest.mark.parametrize(
    "change",
    [
        {"temperatures": (0.7, 0.9)},
        {"top_p": 0.95},
        {"max_tokens": 65},
        {"seed": 8},
        {"stop": ("\n\n",)},
        {"system_prompt": "Think step by step."},
        {"prompt_template": "Q: {problem}"},
        {"use_chat_template": False},
    ],
)
def test_every_sampling_parameter_changes_the_keys(change):
    assert not set(keys()) & set(keys(dataclasses.replace(BASE, **change)))


def test_model_template_and_prompt_change_the_keys():
    base = set(keys())
    assert not base & set(keys(model_id="m@2"))
    assert not base & set(keys(template="other"))
    assert not base & set(keys(prompts=(("p_2", "Compute 1+2"),)))


def test_more_samples_keep_the_existing_keys():
    """Raising n adds keys and keeps the old ones (a resumed run with n=4 reuses n=2's samples)."""
    more = dataclasses.replace(BASE, n=4)
    assert set(keys(dataclasses.replace(BASE, temperatures=(0.6,)))) <= set(keys(dataclasses.replace(more, temperatures=(0.6,))))


def test_a_kept_temperature_keeps_its_keys():
    old, new = set(keys()), set(keys(dataclasses.replace(BASE, temperatures=(0.6, 0.9))))
    assert len(old & new) == 2  # the two samples at 0.6


def test_logprobs_top_k_is_not_a_sampling_parameter():
    assert keys() == keys(dataclasses.replace(BASE, logprobs_top_k=5))


def test_key_function_is_order_sensitive_in_arguments():
    assert request_key("a", "b", "t", None, {}, 0) != request_key("b", "a", "t", None, {}, 0)


def test_shards_and_shard_ids():
    reqs = build_requests([("p_1", "x"), ("p_2", "y")], model_id="m", template_hash="t", sampling=BASE)
    parts = shards(reqs, 3)
    assert [len(p) for p in parts] == [3, 3, 2]
    assert shard_id_for(r.request_key for r in parts[0]) == shard_id_for(r.request_key for r in reversed(parts[0]))
    with pytest.raises(ValueError):
        shards(reqs, 0)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"n": 0}, "sampling.n"),
        ({"temperatures": ()}, "sampling.temperatures"),
        ({"temperatures": (-1.0,)}, "sampling.temperatures"),
        ({"top_p": 0.0}, "sampling.top_p"),
        ({"max_tokens": 0}, "sampling.max_tokens"),
        ({"prompt_template": "no placeholder"}, "sampling.prompt_template"),
        ({"system_prompt": "s", "use_chat_template": False}, "sampling.system_prompt"),
        ({"logprobs_top_k": 21}, "sampling.logprobs_top_k"),
    ],
)
def test_sampling_config_errors_name_the_field(kwargs, field):
    with pytest.raises(GenerateConfigError, match=field):
        SamplingConfig(**kwargs)


def test_engine_config_errors_and_cost():
    with pytest.raises(GenerateConfigError, match="backend"):
        EngineConfig(model="m", backend="tgi")
    with pytest.raises(GenerateConfigError, match="base_url"):
        EngineConfig(model="m", backend="openai")
    assert EngineConfig(model="m").cost_usd(1000, 1000) is None
    priced = EngineConfig(model="m", price_in_per_1m=2.0, price_out_per_1m=8.0)
    assert priced.cost_usd(1_000_000, 500_000) == pytest.approx(6.0)
    assert str(priced).startswith("engine-") and str(priced) != str(EngineConfig(model="m"))
