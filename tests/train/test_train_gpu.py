"""CUDA path of fine-tuning and evaluation generation (run with `pytest -m gpu tests/train/test_train_gpu.py`)."""

import polars as pl
import pytest

from tasks.train.config import TrainConfig
from tasks.train.sft import read_sidecar, train_sft

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]

ROWS = pl.DataFrame({
    "prompt": [f"Compute {a} + {b}." for a in range(6) for b in range(6)],
    "reasoning": [f"{a}+{b}={a + b}." for a in range(6) for b in range(6)],
    "answer": [f"\\boxed{{{a + b}}}" for a in range(6) for b in range(6)],
})


@pytest.mark.parametrize("method", ["full", "lora"])
def test_sft_on_cuda_uses_bf16_and_learns(tiny_lm, tmp_path, method):
    cfg = TrainConfig(method=method, max_steps=30, per_device_batch_size=12, learning_rate=5e-3, logging_steps=5, warmup_ratio=0.0)
    result = train_sft(ROWS, tiny_lm, cfg, tmp_path)
    assert result.device == "cuda" and result.precision == ("bf16" if torch.cuda.is_bf16_supported() else "fp32")
    assert result.loss_history[-1][1] < result.loss_history[0][1]
    assert read_sidecar(result.checkpoint_path)["device"] == "cuda"
    print(f"{method}: {result.n_steps} steps in {result.train_seconds:.1f}s, loss {result.loss_history[0][1]:.3f} -> {result.final_loss:.3f}")


def test_stage_generator_on_cuda(tiny_lm):
    from tasks.evaluate.backend import StageGenerator

    gen = StageGenerator(str(tiny_lm), device="cuda", batch_size=8)
    out = gen.generate(["Compute 1 + 2."] * 3, n=2, temperature=1.0, top_p=1.0, max_new_tokens=8, seed=0, system_prompt=None)
    assert [len(s) for s in out] == [2, 2, 2] and all(x.n_tokens <= 8 for s in out for x in s)
