"""Does the planted strategy help the student? Fine-tune it on oracle-picked vs randomly picked samples.

A pipeline-free check of the provenance world (no teachers' generation, no warehouse): for the first
N math train prompts (and N/6 code prompts) it draws 8 samples of the teachers' *styles* (the
training distributions of toyworld.problems, so every sample is what a perfect teacher would
write), keeps the correct ones, and builds two datasets of one trace per prompt: `oracle` (most
strategy markers, ties as the random pick falls, as the pipeline's `oracle` policy breaks them) and `random`. The student is fine-tuned on each (same steps, lr,
seed) and scored at T 0.8 and greedy on eval.jsonl. With `--seeds 0,1,2` the whole check (samples,
picks, fine-tunes) runs once per seed, and the greedy outcomes are compared as the selection
ablation compares arms (`tasks.experiment.stats`): pass@1 per arm and the paired oracle − random
difference with its 95% bootstrap interval over problems × seeds, overall, per domain and per kind of
math problem (`hard`: a step carries or borrows, the steps the strategy rewrites; `plain`: none),
with the share of each arm's answers that use the strategy (`--out` keeps every greedy answer). One seed
on 250 problems leaves that difference a standard error of about 4 points: read a single-seed
check as a screen, not a result.

    python -m toyworld.strategy_check toyworld/models/student 300 1000 1e-3 ab   # teachers a+b
    python -m toyworld.strategy_check toyworld/models/student 300 1000 1e-3 a    # teacher-a only
    python -m toyworld.strategy_check toyworld/models/student 350 800 1e-3 ab --seeds 0,1,2 --out s.jsonl
    python -m toyworld.strategy_check --report s0.jsonl s1.jsonl   # the reports of kept answers, seeds together

Where wrong answers go wrong (`first_errors`): each wrong math answer's written steps are compared
with the world's solution step by step, and the first that differs says why — other numbers than the
solution's step (a number carried wrong between steps), or the right numbers with a wrong result on a
carrying/borrowing step written directly, on a step in the strategy's form, or on another step.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import re
from pathlib import Path

import polars as pl

from tasks.experiment.stats import compare_arms, compare_by_domain
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
    is_hard,
    problem_is_hard,
    solve_steps,
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


def problem_kind(row: dict) -> str:
    """`code`; `hard` for a math problem with a step the strategy rewrites (a carry or borrow); else `plain`."""
    if row["domain"] != "math":
        return "code"
    return "hard" if problem_is_hard(expr_in_problem(row["problem"])) else "plain"


_ASCII_OP = {"×": "*", "−": "-"}
_HEAD = re.compile(r"(\d+)\s*([-+*×−])\s*(\d+)\s*$")  # the one operation a step line ends its left side with
FIRST_ERRORS = {
    "operands": "a step computes on other numbers than the solution's step (a number carried wrong, a step skipped or reordered)",
    "hard": "right numbers, wrong result, on a carrying or borrowing step written directly",
    "strategy": "right numbers, wrong result, on a step written in the strategy's form",
    "other": "right numbers, wrong result, on any other step",
    "one line": "several operations written as one line",
    "answer": "every step written is the solution's, the answer is not (boxed wrong, steps missing)",
}


def written_steps(completion: str) -> list[tuple[int, str, int, int, bool] | None]:
    """The steps an answer's reasoning writes, in order: (a, op, b, result, in the strategy's form),
    from each line with a result ('37 - 9 = 28.', 'Then 8+48 → 8+8=16, then 40+16=56.': its head's
    operation and its last result); None for a line that computes several operations at once. A
    step written again right after itself (a re-check) counts once; a check of the result
    ('Check: 18+4=22.', 'Verify: …') is not a step."""
    steps: list[tuple[int, str, int, int, bool] | None] = []
    for line in completion.split("</think>")[0].splitlines():
        if line.lstrip().startswith(("Check:", "Verify:")):
            continue
        strategic = STRATEGY_MARK in line
        head, sep, rest = line.partition(STRATEGY_MARK if strategic else "=")
        results = re.findall(r"=\s*(-?\d+)", sep + rest)
        match = _HEAD.search(head)
        if not sep or not results or match is None:
            continue
        if re.search(r"\d\s*[-+*×−]\s*$", head[:match.start()]):
            steps.append(None)
            continue
        step = (int(match[1]), _ASCII_OP.get(match[2], match[2]), int(match[3]), int(results[-1]), strategic)
        if not (steps and steps[-1] is not None and steps[-1][:3] == step[:3]):
            steps.append(step)
    return steps


def first_error(problem: str, completion: str) -> str:
    """Where a wrong answer first leaves the world's solution of `problem` (`solve_steps`, step by
    step): a key of FIRST_ERRORS."""
    for written, (a, op, b, result) in zip(written_steps(completion), solve_steps(expr_in_problem(problem))):
        if written is None:
            return "one line"
        if written[:3] != (int(a), op, int(b)):
            return "operands"
        if written[3] != result:
            return "strategy" if written[4] else "hard" if is_hard(a, op, b) else "other"
    return "answer"


def first_errors(greedy: pl.DataFrame, problems: dict[str, str]) -> str:
    """Per arm: the share of its greedy math answers (columns arm, problem_id, domain, correct,
    completion) that are wrong, by where each first leaves the solution (`first_error`; `problems`
    maps problem ids to their text)."""
    math = greedy.filter(pl.col("domain") == "math")
    wrong = math.filter(pl.col("correct") == 0)
    where = wrong.with_columns(pl.struct("problem_id", "completion").map_elements(
        lambda r: first_error(problems[r["problem_id"]], r["completion"] or ""), return_dtype=pl.String).alias("first_error"))
    lines = []
    for (arm,), frame in math.group_by("arm", maintain_order=True):
        counts = dict(where.filter(pl.col("arm") == arm).group_by("first_error").len().iter_rows())
        shares = ", ".join(f"{key} {counts.get(key, 0) / frame.height:.1%}" for key in FIRST_ERRORS)
        lines.append(f"{arm}: wrong {sum(counts.values()) / frame.height:.1%} of {frame.height} math answers; first error: {shares}")
    return "\n".join(lines)


def outcomes(model, tok, temperature: float, seed: int = 0) -> tuple[list[dict], list[str]]:
    """Per eval.jsonl problem: {problem_id, domain, correct}; and the completions (math first, then code)."""
    ev = read_jsonl(DATA_DIR / "eval.jsonl")
    em, ec = [r for r in ev if r["domain"] == "math"], [r for r in ev if r["domain"] == "code"]
    outs = generate(model, tok, [r["problem"] for r in em + ec], temperature=temperature, max_new_tokens=160, seed=seed)
    right = [check_math(o, r["answer"]) for o, r in zip(outs, em)] + check_code_batch(outs[len(em):], [r["tests"] for r in ec])
    return [{"problem_id": r["id"], "domain": r["domain"], "correct": int(ok)} for r, ok in zip(em + ec, right)], outs


def rates(rows: list[dict]) -> tuple[float, float]:
    """(math accuracy, code pass rate) of `outcomes` rows."""
    by = {d: [r["correct"] for r in rows if r["domain"] == d] for d in ("math", "code")}
    return tuple(round(sum(v) / len(v), 3) if v else float("nan") for v in (by["math"], by["code"]))  # type: ignore[return-value]


def score(model, tok, temperature: float) -> tuple[float, float, list[str]]:
    """(math accuracy, code pass rate, completions) on eval.jsonl."""
    rows, outs = outcomes(model, tok, temperature)
    return (*rates(rows), outs)


def batches(data: list[tuple[str, str]], seed: int = 0):
    r = random.Random(seed)
    while True:
        yield [r.choice(data) for _ in range(16)]


def main(argv: list[str] | None = None) -> int:
    import torch

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir", type=Path, nargs="?", help="the student to fine-tune")
    ap.add_argument("n_prompts", type=int, nargs="?", default=300, help="math train prompts (code: a sixth of it)")
    ap.add_argument("steps", type=int, nargs="?", default=300, help="fine-tuning steps of 16 per arm")
    ap.add_argument("lr", type=float, nargs="?", default=1e-3, help="peak learning rate")
    ap.add_argument("teachers", nargs="?", default="ab", choices=("ab", "a"), help="the styles sampled")
    ap.add_argument("--seeds", default="0", help="comma-separated seeds: one whole check per seed (samples, picks, fine-tunes)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--out", type=Path, help="write every greedy answer (arm, seed, problem, domain, correct, completion) here as JSON lines")
    ap.add_argument("--report", type=Path, nargs="+", metavar="FILE",
                    help="no fine-tuning: the reports of the greedy answers earlier checks kept with --out (their seeds together)")
    args = ap.parse_args(argv)
    if args.report:
        print(report([json.loads(line) for path in args.report for line in path.read_text().splitlines() if line]))
        return 0
    if args.model_dir is None:
        ap.error("model_dir is required (or --report FILE ...)")
    torch.set_num_threads(args.threads)
    teachers = (teacher_a_trace, teacher_b_trace) if args.teachers == "ab" else (teacher_a_trace,)
    base, tok = load_model(args.model_dir)
    res: dict = {"base": score(base, tok, 0.8)[:2]}
    print("base", res["base"], flush=True)
    greedy: list[dict] = []
    for seed in (int(x) for x in args.seeds.split(",")):
        rng = random.Random(seed)
        sel = pick(sample_pool(args.n_prompts, teachers, rng), rng)
        for k, v in sel.items():
            print(f"seed {seed}", k, len(v), f"with {STRATEGY_MARK}:", sum(STRATEGY_MARK in c for _, c in v), flush=True)
        for arm in ("random", "oracle"):
            model = copy.deepcopy(base)
            spec = TrainSpec(steps=args.steps, batch_size=16, lr=args.lr, warmup=15, min_lr_ratio=0.0, seed=seed)
            train(model, tok, batches(sel[arm], seed), spec, log_every=100)
            m, c, outs = score(model, tok, 0.8)
            rows, gouts = outcomes(model, tok, 0.0)
            greedy += [{"arm": arm, "seed": seed, **r, "completion": o} for r, o in zip(rows, gouts)]
            res[f"{arm}-s{seed}"] = (m, c, rates(rows))
            print(f"seed {seed}", arm, "T0.8 math", m, "code", c, "greedy", rates(rows), flush=True)
            for o in outs[:3]:
                print("   ", o.replace("\n", " | "))
    print(json.dumps(res))
    if args.out:
        args.out.write_text("".join(json.dumps(g, ensure_ascii=False) + "\n" for g in greedy))
    print(report(greedy))
    return 0


def report(greedy: list[dict]) -> str:
    """Every report of the greedy answers (`outcomes` rows with arm, seed and completion): the paired
    comparison overall, per domain and per kind of math problem (`problem_kind`), the strategy's use,
    the first errors."""
    problems = {r["id"]: r["problem"] for r in read_jsonl(DATA_DIR / "eval.jsonl")}
    frame = pl.DataFrame([{**g, "kind": problem_kind({"domain": g["domain"], "problem": problems[g["problem_id"]]}),
                           "uses_strategy": int(STRATEGY_MARK in g["completion"])} for g in greedy])
    return "\n".join([paired_report(frame), paired_report(frame.filter(pl.col("domain") == "math"), by="kind", overall=False),
                      strategy_use(frame), first_errors(frame, problems)])


def paired_report(greedy: pl.DataFrame, by: str = "domain", overall: bool = True) -> str:
    """Greedy pass@1 per arm and oracle − random with its paired 95% bootstrap interval over problems
    × seeds (the selection ablation's `compare_arms` / `compare_by_domain`), over all problems (with
    `overall`) and per value of the column `by` (the domain, or the kind of problem)."""
    parts = [compare_by_domain(greedy.with_columns(pl.col(by).alias("domain")), reference="random")]
    if overall:
        parts.insert(0, compare_arms(greedy, reference="random").select(pl.lit("all").alias("domain"), pl.all()))
    lines = []
    for (scope,), frame in pl.concat(parts).group_by("domain", maintain_order=True):
        ref, row = (frame.filter(pl.col("arm") == arm).row(0, named=True) for arm in ("random", "oracle"))
        lines.append(f"{scope}: random {ref['pass_at_1']:.3f}, oracle {row['pass_at_1']:.3f}, oracle − random "
                     f"{100 * row['diff_vs_reference']:+.1f} [{100 * row['diff_low']:+.1f}, {100 * row['diff_high']:+.1f}] pts, "
                     f"{row['verdict']} ({row['n_problems']} problems × {row['n_seeds']} seeds)")
    return "\n".join(lines)


def strategy_use(greedy: pl.DataFrame) -> str:
    """Per kind of problem and arm: the share of greedy answers that use the strategy and their pass@1."""
    table = (greedy.group_by("kind", "arm", maintain_order=True)
             .agg(pl.len().alias("n"), pl.col("uses_strategy").mean().alias("use"), pl.col("correct").mean().alias("acc"))
             .sort("kind", "arm", descending=[False, True]))
    return "\n".join(f"{r['kind']} {r['arm']}: {r['use']:.0%} of {r['n']} answers use {STRATEGY_MARK}, pass@1 {r['acc']:.3f}"
                     for r in table.iter_rows(named=True))


if __name__ == "__main__":
    raise SystemExit(main())
