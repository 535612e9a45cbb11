"""bench/gpu_check.py: roofline arithmetic, bandwidth lookup, and its CPU path end to end at --size tiny."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

from tests.conftest import REPO


def _gpu_check():
    spec = importlib.util.spec_from_file_location("bench_gpu_check", REPO / "bench" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_gpu_check"] = module
    spec.loader.exec_module(module)
    return module


def test_shapes_are_the_released_qwen2_configs():
    g = _gpu_check()
    assert g.SHAPES["0.5b"] == g.Shape(hidden=896, layers=24, heads=14, kv_heads=2, intermediate=4864, vocab=151936)
    assert g.SHAPES["1.5b"] == g.Shape(hidden=1536, layers=28, heads=12, kv_heads=2, intermediate=8960, vocab=151936)


def test_bandwidth_from_device_name():
    g = _gpu_check()
    assert g.spec_bandwidth("NVIDIA H200") == 4.8e12
    assert g.spec_bandwidth("NVIDIA H100 80GB HBM3") == 3.35e12
    assert g.spec_bandwidth("NVIDIA H100 PCIe") == 2.0e12
    assert g.spec_bandwidth("NVIDIA A100-SXM4-80GB") == 2.039e12
    assert g.spec_bandwidth("Some Future GPU") is None and g.spec_bandwidth(None) is None


def test_decode_roofline_counts_weights_once_per_step_and_kv_per_sequence():
    torch = pytest.importorskip("torch")
    g = _gpu_check()
    shape = g.SHAPES["tiny"]
    model = torch.nn.Sequential(torch.nn.Embedding(100, 16), torch.nn.Linear(16, 32)).to(torch.bfloat16)  # any module
    n = sum(p.numel() for p in model.parameters())
    roof = g.decode_roofline(model, shape, batch=8, mean_context=100, bandwidth=1e12)
    kv = 2 * shape.layers * shape.kv_heads * (shape.hidden // shape.heads) * 2
    assert roof["weight_bytes"] == 2 * n and roof["kv_bytes_per_position"] == kv
    assert roof["bytes_per_token"] == pytest.approx((2 * n + 8 * 100 * kv) / 8)
    assert roof["roofline_tokens_per_s"] == pytest.approx(1e12 / roof["bytes_per_token"])


def test_tokenizer_covers_the_whole_vocabulary_with_offsets():
    g = _gpu_check()
    tok = g.build_tokenizer(512)
    assert len(tok) == 512
    enc = tok("w3 w10 <think> w500", return_offsets_mapping=True, add_special_tokens=False)
    assert tok.decode(enc["input_ids"]).startswith("w3 w10")
    assert [a for a, _ in enc["offset_mapping"]] == [0, 3, 7, 15]
    assert "<|assistant|>" in tok.apply_chat_template([{"role": "user", "content": "w1"}], add_generation_prompt=True, tokenize=False)


@pytest.mark.slow  # ~10 CPU-seconds, but imports dominate and take a minute on a busy machine
def test_cpu_path_runs_generation_and_scoring(tmp_path):
    out = tmp_path / "gpu_check.json"
    done = subprocess.run([sys.executable, str(REPO / "bench" / "gpu_check.py"), "--size", "tiny", "--device", "cpu",
                           "--checks", "generation,scoring", "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads(out.read_text())
    assert set(report["ratios"]) == {"generation", "scoring"}
    assert report["generation"]["hf_backend_tokens_per_s"] > 0 and report["scoring"]["completion_tokens"] > 0
    assert "ratio" in done.stdout and "goal >= 0.85" in done.stdout


@pytest.mark.slow
def test_cpu_path_runs_sft_through_trl(tmp_path):
    out = tmp_path / "gpu_check.json"
    done = subprocess.run([sys.executable, str(REPO / "bench" / "gpu_check.py"), "--size", "tiny", "--device", "cpu",
                           "--checks", "sft", "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    sft = json.loads(out.read_text())["sft"]
    assert sft["potstill_sft"]["steps"] == 3 and sft["plain_loop_steps_per_s"] > 0
