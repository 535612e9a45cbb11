"""Does the planted strategy help the student? Fine-tune it on oracle-picked vs randomly picked samples.

A pipeline-free check of the provenance world (no teachers' generation, no warehouse): for the first
N math train prompts (and N/6 code prompts) it draws 8 samples of the teachers' *styles* (the
training distributions of toyworld.problems, so every sample is what a perfect teacher would
write), keeps the correct ones, and builds two datasets of one trace per prompt: `oracle` (most
strategy markers, ties as the random pick falls, as the pipeline's `oracle` policy breaks them) and `random`. The student is fine-tuned on each (same steps, lr,
seed) and scored at T 0.8 and greedy on eval.jsonl.

    python -m toyworld.strategy_check toyworld/models/student 300 1000 1e-3 ab   # teachers a+b
    python -m toyworld.strategy_check toyworld/models/student 300 1000 1e-3 a    # teacher-a only
"""

from __future__ import annotations

import argparse
import copy
import json
import random
from pathlib import Path

from toyworld.build import DATA_DIR, load_model, read_jsonl
from toyworld.modeling import TrainSpec, generate, train
from toyworld.problems import (
    STRATEGY_MARK,
    check_code_batch,
    check_math,
    code_expr_in_problem,
    evaluate,
    expr_in_problem,
    extract_boxed,
    teacher_a_code,
    teacher_a_trace,
    teacher_b_code,
    teacher_b_trace,
)


def sample_pool(n_prompts: int, teachers: tuple, rng: random.Random) -> dict[str, list[str]]:
    """Correct style samples per train prompt: 8 per math prompt (split over `teachers`), 3 per code prompt."""
    rows = read_jsonl(DATA_DIR / "train.jsonl")
    pool = {}
    for r in [r for r in rows if r["domain"] == "math"][:n_prompts]:
        e = expr_in_problem(r["problem"])
        cands = [f(e, rng) for f in teachers for _ in range(8 // len(teachers))]
        cands = [c for c in cands if extract_boxed(c) == str(evaluate(e))]
        if cands:
            pool[r["problem"]] = cands
    for r in [r for r in rows if r["domain"] == "code"][: n_prompts // 6]:
        x = code_expr_in_problem(r["problem"])
        pool[r["problem"]] = [teacher_a_code(x, rng) for _ in range(2)] + [teacher_b_code(x, rng)]
    return pool


def pick(pool: dict[str, list[str]], rng: random.Random) -> dict[str, list[tuple[str, str]]]:
    """One trace per prompt: a random one, and the oracle's (most strategy markers; the random pick when
    it has as many, else one drawn among those that do)."""
    sel: dict[str, list[tuple[str, str]]] = {"random": [], "oracle": []}
    for p, cands in pool.items():
        drawn = rng.choice(cands)
        most = max(c.count(STRATEGY_MARK) for c in cands)
        sel["random"].append((p, drawn))
        sel["oracle"].append((p, drawn if drawn.count(STRATEGY_MARK) == most
                              else rng.choice([c for c in cands if c.count(STRATEGY_MARK) == most])))
    return sel


def score(model, tok, temperature: float) -> tuple[float, float, list[str]]:
    """(math accuracy, code pass rate, completions) on eval.jsonl."""
    ev = read_jsonl(DATA_DIR / "eval.jsonl")
    em, ec = [r for r in ev if r["domain"] == "math"], [r for r in ev if r["domain"] == "code"]
    outs = generate(model, tok, [r["problem"] for r in em + ec], temperature=temperature, max_new_tokens=160, seed=0)
    m = sum(check_math(o, r["answer"]) for o, r in zip(outs, em))
    c = sum(check_code_batch(outs[len(em):], [r["tests"] for r in ec]))
    return round(m / len(em), 3), round(c / len(ec), 3), outs


def batches(data: list[tuple[str, str]], seed: int = 0):
    r = random.Random(seed)
    while True:
        yield [r.choice(data) for _ in range(16)]


def main(argv: list[str] | None = None) -> int:
    import torch

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir", type=Path, help="the student to fine-tune")
    ap.add_argument("n_prompts", type=int, nargs="?", default=300, help="math train prompts (code: a sixth of it)")
    ap.add_argument("steps", type=int, nargs="?", default=300, help="fine-tuning steps of 16 per arm")
    ap.add_argument("lr", type=float, nargs="?", default=1e-3, help="peak learning rate")
    ap.add_argument("teachers", nargs="?", default="ab", choices=("ab", "a"), help="the styles sampled")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    teachers = (teacher_a_trace, teacher_b_trace) if args.teachers == "ab" else (teacher_a_trace,)
    rng = random.Random(0)
    sel = pick(sample_pool(args.n_prompts, teachers, rng), rng)
    for k, v in sel.items():
        print(k, len(v), f"with {STRATEGY_MARK}:", sum(STRATEGY_MARK in c for _, c in v), flush=True)
    base, tok = load_model(args.model_dir)
    res: dict = {"base": score(base, tok, 0.8)[:2]}
    print("base", res["base"], flush=True)
    for arm in ("random", "oracle"):
        model = copy.deepcopy(base)
        spec = TrainSpec(steps=args.steps, batch_size=16, lr=args.lr, warmup=15, min_lr_ratio=0.0, seed=0)
        train(model, tok, batches(sel[arm]), spec, log_every=100)
        m, c, outs = score(model, tok, 0.8)
        res[arm] = (m, c, score(model, tok, 0.0)[:2])
        print(arm, "T0.8 math", m, "code", c, "greedy", res[arm][2], flush=True)
        for o in outs[:3]:
            print("   ", o.replace("\n", " | "))
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
