"""Step-bounded training: a run cut by the wall-clock safety cap is marked truncated with its reason."""

import polars as pl

from tasks.train.config import TrainConfig
from tasks.train.sft import read_sidecar, train_sft, truncation

ROWS = pl.DataFrame({"prompt": [f"Compute {i}+1." for i in range(8)], "reasoning": [f"{i}+1={i + 1}." for i in range(8)],
                     "answer": [f"\\boxed{{{i + 1}}}" for i in range(8)]})


def test_truncation_rule():
    assert truncation(TrainConfig(max_steps=800, max_train_minutes=4), 696, 696)[0] is True
    assert truncation(TrainConfig(max_steps=800, max_train_minutes=4), 800, None) == (False, None)
    assert truncation(TrainConfig(num_train_epochs=1), 3, None) == (False, None)  # epoch-bounded: no step bound to miss


def test_time_cap_marks_the_run_truncated(tiny_lm, tmp_path):
    cfg = TrainConfig(max_steps=200, per_device_batch_size=2, device="cpu", max_train_minutes=1e-6, logging_steps=1)
    result = train_sft(ROWS, tiny_lm, cfg, tmp_path / "run")
    assert result.n_steps < 200 and result.is_truncated
    assert result.truncation_reason.startswith(f"time_cap: train.max_train_minutes=1e-06 reached at step {result.n_steps} of 200")
    sidecar = read_sidecar(result.checkpoint_path)
    assert sidecar["is_truncated"] is True and sidecar["truncation_reason"] == result.truncation_reason


def test_seed_reaches_training(tiny_lm, tmp_path):
    cfg = TrainConfig(max_steps=3, per_device_batch_size=2, device="cpu", learning_rate=5e-3, logging_steps=1)
    a = train_sft(ROWS, tiny_lm, cfg, tmp_path / "a")
    b = train_sft(ROWS, tiny_lm, cfg, tmp_path / "b")
    c = train_sft(ROWS, tiny_lm, TrainConfig(**{**cfg.__dict__, "seed": 1}), tmp_path / "c")
    assert a.loss_history == b.loss_history  # same seed, same data order: same run
    assert a.loss_history != c.loss_history  # another seed shuffles the data differently
