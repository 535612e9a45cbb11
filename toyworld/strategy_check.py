"""Does the planted strategy help the student? Fine-tune it on oracle-picked vs randomly picked samples.

A pipeline-free check of the provenance world (no teachers' generation, no warehouse): for the first
N math train prompts (and N/6 code prompts) it draws 8 samples of the teachers' *styles* (the
training distributions of toyworld.problems, so every sample is what a perfect teacher would
write), keeps the correct ones, and builds two datasets of one trace per prompt: `oracle` (most
strategy markers, then shortest) and `random`. The student is fine-tuned on each (same steps, lr,
seed) and scored at T 0.8 and greedy on eval.jsonl.

    python -m toyworld.strategy_check toyworld/models/student 300 1000 1e-3 ab   # teachers a+b
    python -m toyworld.strategy_check toyworld/models/student 300 1000 1e-3 a    # teacher-a only
"""
import copy
import json
import random
import sys

import torch

from toyworld.build import load_model, read_jsonl
from toyworld.modeling import TrainSpec, generate, train
from toyworld.problems import (
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

torch.set_num_threads(1)
model_dir = sys.argv[1]; n_prompts = int(sys.argv[2]) if len(sys.argv) > 2 else 300
steps = int(sys.argv[3]) if len(sys.argv) > 3 else 300
lr = float(sys.argv[4]) if len(sys.argv) > 4 else 1e-3
teachers = (teacher_a_trace, teacher_b_trace) if (sys.argv[5] if len(sys.argv) > 5 else "ab") == "ab" else (teacher_a_trace,)
rows = read_jsonl("toyworld/data/train.jsonl")
math = [r for r in rows if r["domain"] == "math"][:n_prompts]
code = [r for r in rows if r["domain"] == "code"][: n_prompts // 6]
rng = random.Random(0)
pool = {}
for r in math:
    e = expr_in_problem(r["problem"]); ans = evaluate(e)
    cands = [f(e, rng) for f in teachers for _ in range(8 // len(teachers))]
    cands = [c for c in cands if extract_boxed(c) == str(ans)]
    if cands: pool[r["problem"]] = cands
for r in code:
    x = code_expr_in_problem(r["problem"])
    pool[r["problem"]] = [teacher_a_code(x, rng) for _ in range(2)] + [teacher_b_code(x, rng)]
sel = {"random": [], "oracle": []}
for p, cands in pool.items():
    sel["random"].append((p, rng.choice(cands)))
    best = max(cands, key=lambda c: (c.count("→"), -len(c)))
    sel["oracle"].append((p, best))
for k, v in sel.items():
    print(k, len(v), "with →:", sum("→" in c for _, c in v), flush=True)
ev = read_jsonl("toyworld/data/eval.jsonl")
em = [r for r in ev if r["domain"] == "math"]; ec = [r for r in ev if r["domain"] == "code"]
def score(model, tok, temp):
    outs = generate(model, tok, [r["problem"] for r in em + ec], temperature=temp, max_new_tokens=160, seed=0)
    m = sum(check_math(o, r["answer"]) for o, r in zip(outs, em))
    c = sum(check_code_batch(outs[len(em):], [r["tests"] for r in ec]))
    return round(m / len(em), 3), round(c / len(ec), 3), outs
base, tok = load_model(__import__("pathlib").Path(model_dir))
res = {"base": score(base, tok, 0.8)[:2]}
print("base", res["base"], flush=True)
for arm in ("random", "oracle"):
    model = copy.deepcopy(base)
    data = sel[arm]
    def stream(data=data, seed=0):
        r = random.Random(seed)
        while True:
            yield [r.choice(data) for _ in range(16)]
    train(model, tok, stream(), TrainSpec(steps=steps, batch_size=16, lr=lr, warmup=15, min_lr_ratio=0.0, seed=0), log_every=100)
    m, c, outs = score(model, tok, 0.8)
    g = score(model, tok, 0.0)[:2]
    res[arm] = (m, c, g)
    print(arm, "T0.8 math", m, "code", c, "greedy", g, flush=True)
    for o in outs[:3]: print("   ", o.replace("\n", " | "))
print(json.dumps(res))
