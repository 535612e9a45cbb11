import json

import polars as pl
import pytest

from tasks.common.text import join_think
from tasks.train.config import TrainConfig, TrainError
from tasks.train.sft import checkpoint_name, read_sidecar, train_sft

ROWS = pl.DataFrame(
    {
        "prompt": [f"Compute {a} + {b}." for a in range(4) for b in range(4)],
        "reasoning": [f"{a}+{b}={a + b}." for a in range(4) for b in range(4)],
        "answer": [f"\\boxed{{{a + b}}}" for a in range(4) for b in range(4)],
    }
)
FAST = {"max_steps": 8, "per_device_batch_size": 8, "logging_steps": 2, "learning_rate": 5e-3, "warmup_ratio": 0.0}


def _weights(path):
    from transformers import AutoModelForCausalLM

    return {k: v.clone() for k, v in AutoModelForCausalLM.from_pretrained(path).state_dict().items()}


@pytest.mark.parametrize("method", ["full", "lora"])
def test_sft_writes_step_padded_checkpoint_with_sidecar_and_learns(tiny_lm, tmp_path, method):
    cfg = TrainConfig(method=method, save_every_steps=4, device="cpu", **FAST)
    result = train_sft(ROWS, tiny_lm, cfg, tmp_path, run_info={"dataset_name": "toy", "dataset_version": 3, "content_hash": "abc"})

    assert result.n_steps == 8 and result.checkpoint_path == str(tmp_path / "step-000008")
    assert (tmp_path / "step-000004.json").is_file() and (tmp_path / "step-000008" / "config.json").is_file()
    sidecar = read_sidecar(result.checkpoint_path)
    assert sidecar["dataset_name"] == "toy" and sidecar["dataset_version"] == 3 and sidecar["content_hash"] == "abc"
    assert sidecar["train_config"]["method"] == method and sidecar["recipe_fingerprint"] == str(cfg)
    assert sidecar["is_final"] is True and sidecar["n_steps"] == 8 and sidecar["base_model"] == str(tiny_lm)
    assert json.loads((tmp_path / "resolved_config.json").read_text())["train_config_fingerprint"]
    # loss falls on the assistant part only: every completion character plus the end-of-turn token
    expected = sum(len(join_think(r, a)) + 1 for r, a in zip(ROWS["reasoning"], ROWS["answer"]))
    assert result.n_completion_tokens == expected
    assert result.loss_history[-1][1] < result.loss_history[0][1]
    # the final checkpoint is a plain model (LoRA merged) whose weights moved
    before, after = _weights(tiny_lm), _weights(result.checkpoint_path)
    assert set(before) == set(after)
    assert any(not (before[k] == after[k]).all() for k in before)


@pytest.mark.slow
def test_same_seed_same_final_loss(tiny_lm, tmp_path):
    cfg = TrainConfig(device="cpu", **FAST)
    a = train_sft(ROWS, tiny_lm, cfg, tmp_path / "a")
    b = train_sft(ROWS, tiny_lm, cfg, tmp_path / "b")
    assert a.final_loss == pytest.approx(b.final_loss, rel=1e-6) and a.examples_hash == b.examples_hash


def test_missing_base_model_is_a_clear_error(tmp_path):
    with pytest.raises(TrainError, match="cannot load base model"):
        train_sft(ROWS, tmp_path / "nope", TrainConfig(device="cpu", **FAST), tmp_path / "out")


def test_checkpoint_name_is_step_padded():
    assert [checkpoint_name(s) for s in (0, 7, 123456)] == ["step-000000", "step-000007", "step-123456"]


def test_cpu_threads_apply_while_training_only_and_leave_the_fingerprint(tiny_lm, tmp_path):
    import torch
    from transformers import TrainerCallback

    seen: list[int] = []

    class Threads(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            seen.append(torch.get_num_threads())

    before = torch.get_num_threads()
    want = 1 if before != 1 else 2
    cfg = TrainConfig(device="cpu", cpu_threads=want, **{**FAST, "max_steps": 2})
    train_sft(ROWS, tiny_lm, cfg, tmp_path, callbacks=[Threads()])
    assert seen == [want, want] and torch.get_num_threads() == before
    # where/how it ran is not what it trained: run ids (fingerprints) do not change with the thread count
    assert str(cfg) == str(TrainConfig(device="cpu", **{**FAST, "max_steps": 2}))
