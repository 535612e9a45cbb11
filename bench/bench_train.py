"""Fine-tuning throughput: potstill's SFT (TRL `SFTTrainer` via `tasks.train.sft.train_sft`) vs a
plain PyTorch AdamW loop over the same examples, model, batch size and number of steps.

Run: python bench/bench_train.py [--examples 256] [--steps 60] [--batch-size 16] [--threads 2]
Writes bench/results/train.json. The baseline (`toyworld.modeling.train`) does only what SFT needs:
tokenise, right-pad, forward with completion-only labels, backward, clip, AdamW step. potstill's
path is the whole `train_sft` call's training loop (TRL's tokenisation and collation, loss on the
completion, logging, the wall-clock-budget callback), timed around `trainer.train()` (its
`train_seconds`); loading and saving are reported separately. Ratio = potstill steps/s over baseline steps/s.
Also reported: the same path with activation checkpointing on (TRL's default, off on CPU in
potstill); its cost grows with sequence length and batch (1-25% measured here).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import polars as pl
import torch

from tasks.common.text import join_think
from tasks.train.config import TrainConfig
from tasks.train.sft import train_sft
from toyworld.build import load_model
from toyworld.modeling import TrainSpec, train
from toyworld.toy_sft_check import teacher_rows

RESULTS = REPO / "bench" / "results"
STUDENT = REPO / "toyworld" / "models" / "student"


def baseline(rows: pl.DataFrame, steps: int, batch_size: int) -> float:
    """Steps/s of the plain loop on the same (problem, completion) pairs."""
    model, tok = load_model(STUDENT)
    pairs = [(p, join_think(r, a)) for p, r, a in zip(rows["prompt"], rows["reasoning"], rows["answer"])]

    def stream():
        rng = random.Random(0)
        while True:
            yield rng.sample(pairs, batch_size)

    res = train(model, tok, stream(), TrainSpec(steps=steps, batch_size=batch_size, lr=1e-3, warmup=5, seed=0), log_every=0)
    return steps / res["train_seconds"]


def potstill(rows: pl.DataFrame, steps: int, batch_size: int, checkpointing: bool | None) -> dict:
    cfg = TrainConfig(learning_rate=1e-3, max_steps=steps, per_device_batch_size=batch_size, max_length=256,
                      logging_steps=max(1, steps // 4), activation_checkpointing=checkpointing, device="cpu")
    with tempfile.TemporaryDirectory(prefix="bench-train-") as out:
        t0 = time.perf_counter()
        result = train_sft(rows, STUDENT, cfg, out)
        total = time.perf_counter() - t0
    return {"steps_per_s": result.n_steps / result.train_seconds, "train_seconds": result.train_seconds,
            "load_save_seconds": total - result.train_seconds, "n_train_tokens": result.n_train_tokens}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=256, help="teacher-a traces of the first N math train problems")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads for both paths")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = teacher_rows(REPO / "toyworld" / "data" / "train.jsonl", args.examples)
    base = baseline(rows, args.steps, args.batch_size)
    ours = potstill(rows, args.steps, args.batch_size, None)
    ckpt = potstill(rows, args.steps, args.batch_size, True)
    report = {
        "args": vars(args),
        "baseline_plain_loop_steps_per_s": base,
        "potstill_sft": ours,
        "potstill_sft_with_activation_checkpointing": ckpt,
        "ratio": ours["steps_per_s"] / base,
        "activation_checkpointing_ratio": ckpt["steps_per_s"] / base,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "train.json").write_text(json.dumps(report, indent=2))
    print(f"[train] plain loop {base:.2f} steps/s; potstill SFT {ours['steps_per_s']:.2f} steps/s -> ratio {report['ratio']:.2f}; "
          f"with activation checkpointing {ckpt['steps_per_s']:.2f} -> {report['activation_checkpointing_ratio']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
