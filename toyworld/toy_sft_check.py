"""Fine-tune the toy-world student on teacher-a-style traces and evaluate it before and after.

A pipeline-free check of potstill's fine-tune + evaluate path on the toy world: the training rows
are teacher-a's canonical traces (`toyworld.problems.teacher_a_trace`, always correct) for the
math problems of `toyworld/data/train.jsonl`, not a curated dataset version. The acceptance figure
itself (provenance-selected dataset) comes from `potstill experiment compare-selections` or
`on_publish` after a curate run; this check tells whether a recipe can teach the student at all.

    python -m toyworld.toy_sft_check --recipe toy --device cuda --out results.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import polars as pl

REPO = Path(__file__).resolve().parents[1]


def teacher_rows(train_path: Path, limit: int | None) -> pl.DataFrame:
    from tasks.common.text import split_think
    from toyworld.problems import expr_in_problem, teacher_a_trace

    rows = []
    for line in train_path.read_text().splitlines():
        r = json.loads(line)
        if r["domain"] != "math":
            continue
        split = split_think(teacher_a_trace(expr_in_problem(r["problem"])))
        rows.append({"prompt": r["problem"], "reasoning": split.reasoning, "answer": split.answer})
    return pl.DataFrame(rows).head(limit) if limit else pl.DataFrame(rows)


def main(argv: list[str] | None = None) -> dict:
    from tasks.evaluate.backend import StageGenerator
    from tasks.evaluate.core import evaluate_problems
    from tasks.evaluate.metrics import summarize
    from tasks.evaluate.problems import load_eval_set
    from tasks.train.recipe import load_train_recipe
    from tasks.train.sft import train_sft

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default="toy")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--n-train", type=int, default=None)
    ap.add_argument("--eval-limit", type=int, default=None)
    ap.add_argument("--out-dir", default="/tmp/potstill-toy-sft-check")
    ap.add_argument("--out", default=None, help="write the result JSON here")
    args = ap.parse_args(argv)

    spec = load_train_recipe(args.recipe)
    cfg = replace(spec.train_config(), device=args.device)
    ecfg = replace(spec.eval_config(), device=args.device)
    base = spec.resolved_base_model()
    rows = teacher_rows(REPO / "toyworld" / "data" / "train.jsonl", args.n_train)
    problems = load_eval_set(spec.eval_set_path(), limit=args.eval_limit or ecfg.limit)
    t0 = time.monotonic()
    result = train_sft(rows, base, cfg, Path(args.out_dir) / "ckpt", run_info={"dataset": "toyworld-teacher-a-canonical"})
    train_s = time.monotonic() - t0
    out = {"recipe": spec.name, "train_config": str(cfg), "n_train_rows": rows.height, "n_steps": result.n_steps,
           "final_loss": result.final_loss, "train_seconds": round(train_s, 1), "device": result.device,
           "precision": result.precision, "eval_set": spec.eval_set_path(), "eval_config": str(ecfg), "models": {}}
    for name, model in (("base", base), ("finetuned", result.checkpoint_path)):
        t0 = time.monotonic()
        gen = StageGenerator(model, device=ecfg.device, batch_size=ecfg.batch_size)
        samples = evaluate_problems(problems, gen, ecfg)
        out["models"][name] = {"model": model, "eval_seconds": round(time.monotonic() - t0, 1),
                               "metrics": summarize(samples, ecfg.k).to_dicts()}
    allrow = {n: next(m for m in v["metrics"] if m["domain"] == "all") for n, v in out["models"].items()}
    out["delta_pass_at_1_points"] = round(100 * (allrow["finetuned"]["pass_at_1"] - allrow["base"]["pass_at_1"]), 1)
    text = json.dumps(out, indent=2)
    if args.out:
        Path(args.out).write_text(text)
    print(text)
    return out


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
