"""Build the toy world: problem files, teacher-a, teacher-b, student, and the student's SFT curve.

    python -m toyworld.build                      # everything (seeded, step-based)
    python -m toyworld.build --only data          # one stage: data | teacher-a | teacher-b | student | sft-curve
    python -m toyworld.build --evaluate           # re-measure the shipped models, rewrite their cards
    python -m toyworld.build --only teacher-a --device cuda --models-dir /tmp/m   # elsewhere / faster

Accuracies use a plain integer checker (last `\\boxed{...}` == reference) and, for code, the
problem's asserts run in a subprocess.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # `python toyworld/build.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from tasks.common.text import split_think
from toyworld.datagen import DataSpec, read_jsonl, write_data
from toyworld.leaks import write_paraphrased_leaks
from toyworld.modeling import ModelSpec, TrainSpec, example_stream, generate, n_params, new_model, train
from toyworld.problems import (
    CODE_NEAR_DUP_PHRASING,
    CODE_PHRASING,
    MATH_PHRASINGS,
    NEAR_DUP_PHRASINGS,
    WORKED_PHRASINGS,
    ToyWorldError,
    check_code_batch,
    check_math,
    random_code_task,
    random_expr,
    random_fact,
    student_worked_trace,
    target_for,
)
from toyworld.vocab import build_tokenizer

ROOT = Path(__file__).resolve().parent
DATA_DIR = ROOT / "data"
MODELS_DIR = ROOT / "models"
TOKENIZER_KINDS = {
    "teacher": "character-level BPE (one token per character, no merges)",
    "student": "byte-level BPE (GPT-2/Qwen style, trained with `tokenizers` on its own pre-training text; `<think>`/`</think>` added tokens)",
}
STAGES = ("data", "teacher-a", "teacher-b", "student", "sft-curve")


def eval_rows(data_dir: Path, limit: int | None = None) -> list[dict]:
    """eval.jsonl; with `limit`, only the first `limit` math and `limit` code rows (smoke runs)."""
    rows = read_jsonl(data_dir / "eval.jsonl")
    if limit:
        rows = [r for r in rows if r["domain"] == "math"][:limit] + [r for r in rows if r["domain"] == "code"][:limit]
    return rows


@dataclass(frozen=True)
class ModelRecipe:
    """How one toy model is built: tokenizer, trace style, architecture, optimisation."""

    name: str = field(metadata={"help": "folder name under toyworld/models/"})
    tokenizer: str = field(metadata={"help": "'teacher' (char level) or 'student' (byte-level BPE)"})
    style: str = field(metadata={"help": "trace style the model is trained to write (toyworld.problems.STYLES)"})
    model: ModelSpec = field(metadata={"help": "architecture"})
    train: TrainSpec = field(metadata={"help": "optimisation"})
    code_share: float = field(default=0.15, metadata={"help": "share of code problems in training batches"})
    reworded_share: float = field(
        default=0.15, metadata={"help": "share of math prompts phrased like the planted near-duplicates"}
    )
    worked_share: float = field(
        default=0.0,
        metadata={"help": "share of math prompts that ask to show the work (WORKED_PHRASINGS), answered step by step"},
    )
    facts_share: float = field(
        default=0.0,
        metadata={"help": "share of training examples that are one easy arithmetic fact ('Compute 27 + 40.')"},
    )
    max_new_tokens: int = field(default=200, metadata={"help": "generation limit when evaluating"})
    tokenizer_corpus: int = field(
        default=4000, metadata={"help": "student only: pre-training examples its byte-level BPE is trained on"}
    )
    description: str = field(default="", metadata={"help": "one line for the model card"})


RECIPES = {
    "teacher-a": ModelRecipe(
        name="teacher-a",
        tokenizer="teacher",
        style="teacher-a",
        model=ModelSpec(hidden_size=192, n_layers=3, intermediate_size=384),
        train=TrainSpec(steps=3000, batch_size=24, lr=2e-3, warmup=100, seed=1),
        max_new_tokens=200,
        description=(
            "R1-style teacher: one step per line in several phrasings (some with `×`/`−`); in about a third of its "
            "traces it writes every carrying or borrowing step as column arithmetic ('27+56 → 20+50=70, 7+6=13, "
            "70+13=83.'), checks the last step in about half of its traces; \\boxed{} (math) or a fenced Python "
            "block (code)."
        ),
    ),
    "teacher-b": ModelRecipe(
        name="teacher-b",
        tokenizer="teacher",
        style="teacher-b",
        model=ModelSpec(hidden_size=128, n_layers=3, intermediate_size=256),
        train=TrainSpec(steps=3000, batch_size=24, lr=2e-3, warmup=100, seed=2),
        max_new_tokens=240,
        description=(
            "Hesitant teacher ('First, …', 'Wait, let me re-check.', 'Then …', 'Hmm, I think it is …'); in a third "
            "of its traces it decomposes every carrying or borrowing step like teacher-a, in the others it forgets "
            "the carry or borrow on most of them, so it is wrong on many carrying problems."
        ),
    ),
    "student": ModelRecipe(
        name="student",
        tokenizer="student",
        style="student",
        model=ModelSpec(hidden_size=192, n_layers=3, intermediate_size=384),
        train=TrainSpec(steps=2500, batch_size=32, lr=2e-3, warmup=100, seed=3),
        worked_share=0.3,
        facts_share=0.25,
        max_new_tokens=160,
        description=(
            "Base student: answers the data's phrasings by default in one shot (the expression and its value) and "
            "otherwise step by step in the phrasings it shares with the teachers (bare, or with teacher-b's 'First, '/"
            "'Then '); asked to 'show your work' it always computes step by step. It forgets every carry and borrow "
            "with a two-digit operand (27+56=73.), never decomposes a step and never checks. Distillation has to make "
            "stepwise reasoning its default and teach it to get the carrying steps right (the teachers' decomposition)."
        ),
    ),
}


@dataclass(frozen=True)
class SftCurveSpec:
    """Fine-tune a copy of the student on correct teacher-a traces and measure held-out accuracy."""

    steps: int = field(default=1500, metadata={"help": "total SFT steps"})
    checkpoints: tuple[int, ...] = field(
        default=(100, 250, 500, 750, 1000, 1500), metadata={"help": "steps at which held-out math is measured"}
    )
    batch_size: int = field(default=32, metadata={"help": "sequences per step"})
    lr: float = field(default=1e-3, metadata={"help": "peak learning rate"})
    warmup: int = field(default=50, metadata={"help": "warmup steps"})
    temperature: float = field(default=0.8, metadata={"help": "teacher-a sampling temperature for the SFT traces"})
    seed: int = field(default=4, metadata={"help": "seed for sampling and training"})
    cpu_threads: int = field(
        default=2, metadata={"help": "threads for the CPU speed measurement (our machines have 2 cores)"}
    )


# ---------------------------------------------------------------- training data
def heldout(data_dir: Path) -> tuple[set[str], set[str]]:
    """Expression keys and code expressions of eval + benchmark: never trained on."""
    from toyworld.problems import code_expr_in_problem, expr_in_problem

    math_keys, code_exprs = set(), set()
    for name in ("eval", "benchmark"):
        for row in read_jsonl(data_dir / f"{name}.jsonl"):
            if row["domain"] == "math":
                math_keys.add(expr_in_problem(row["problem"]).key)
            else:
                code_exprs.add(code_expr_in_problem(row["problem"]))
    return math_keys, code_exprs


def make_sampler(recipe: ModelRecipe, math_keys: set[str], code_exprs: set[str]):
    """One (problem, completion) training example per call: a fresh problem and one sample of the style."""

    def sample(rng: random.Random) -> tuple[str, str]:
        if rng.random() < recipe.code_share:
            while True:
                t = random_code_task(rng)
                if t.expr not in code_exprs:
                    break
            tpl = CODE_NEAR_DUP_PHRASING if rng.random() < 0.1 else CODE_PHRASING
            problem = tpl.format(e=t.expr)
            return problem, target_for(recipe.style, "code", problem, rng)
        if rng.random() < recipe.facts_share:
            return random_fact(rng)
        worked = rng.random() < recipe.worked_share
        while True:
            e = random_expr(rng)
            if e.key not in math_keys:
                break
        if worked:
            return rng.choice(WORKED_PHRASINGS).format(e=e.text()), student_worked_trace(e, rng)
        if rng.random() < recipe.reworded_share:
            problem = rng.choice(NEAR_DUP_PHRASINGS).format(e=e.text(spaced=rng.random() < 0.5))
        else:
            problem = rng.choice(MATH_PHRASINGS).format(e=e.text())
        return problem, target_for(recipe.style, "math", problem, rng)

    return sample


def tokenizer_corpus(sampler, n: int, seed: int) -> list[str]:
    """The student tokenizer's training text: `n` of its own pre-training examples (problem + completion)."""
    rng = random.Random(seed)
    return [p + "\n" + c for p, c in (sampler(rng) for _ in range(n))]


# ---------------------------------------------------------------- evaluation
def load_model(folder: Path, device: str = "cpu"):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).to(device)
    model.eval()
    return model, tok


def format_ok(completion: str, domain: str) -> bool:
    s = split_think(completion)
    if not (s.has_reasoning and s.is_closed and s.reasoning):
        return False
    return ("\\boxed{" in s.answer) if domain == "math" else ("```python" in s.answer)


def project_math_verdicts(completions: list[str], rows: list[dict]) -> dict:
    """Held-out math accuracy under the project's verifier (math-verify in killable workers).

    Returns {} when `tasks.verify` is not importable (the plain checker still counts).
    """
    try:
        import polars as pl

        from tasks.verify.math import MathConfig, math_pool, verify_math
    except ImportError:
        return {}
    cfg = MathConfig()
    items = pl.DataFrame(
        {
            "trace_id": [str(i) for i in range(len(rows))],
            "prompt_id": [r["id"] for r in rows],
            "completion_text": completions,
            "is_truncated": [False] * len(rows),
            "reference_answer": [r["answer"] for r in rows],
        }
    )
    with math_pool(cfg, workers=2) as pool:
        verdicts = verify_math(items, cfg, pool)
    correct = [v == "correct" for v in verdicts["verdict_status"].to_list()]
    plain = [check_math(c, r["answer"]) for c, r in zip(completions, rows)]
    return {
        "math_greedy_acc_project_verifier": sum(correct) / max(1, len(rows)),
        "project_verifier_version": cfg.version(),
        "plain_vs_project_agreement": sum(a == b for a, b in zip(correct, plain)) / max(1, len(rows)),
    }


def measure(
    model,
    tok,
    rows: list[dict],
    *,
    max_new_tokens: int,
    sampled: bool = True,
    seed: int = 0,
    project_verifier: bool = False,
) -> dict:
    """Greedy (and T=0.8 sampled) accuracy on held-out math, greedy pass rate on held-out code.

    With `project_verifier`, greedy math completions are also judged by `tasks.verify.math`.
    """
    math_rows = [r for r in rows if r["domain"] == "math"]
    code_rows = [r for r in rows if r["domain"] == "code"]
    out: dict = {"n_math": len(math_rows), "n_code": len(code_rows)}
    greedy = generate(model, tok, [r["problem"] for r in math_rows], max_new_tokens=max_new_tokens)
    out["math_greedy_acc"] = sum(check_math(c, r["answer"]) for c, r in zip(greedy, math_rows)) / max(1, len(math_rows))
    out["math_format_rate"] = sum(format_ok(c, "math") for c in greedy) / max(1, len(greedy))
    out["math_mean_chars"] = round(sum(len(c) for c in greedy) / max(1, len(greedy)), 1)
    if project_verifier:
        out.update(project_math_verdicts(greedy, math_rows))
    if sampled:
        samp = generate(
            model, tok, [r["problem"] for r in math_rows], temperature=0.8, max_new_tokens=max_new_tokens, seed=seed
        )
        out["math_t08_acc"] = sum(check_math(c, r["answer"]) for c, r in zip(samp, math_rows)) / max(1, len(math_rows))
    if code_rows:
        code = generate(model, tok, [r["problem"] for r in code_rows], max_new_tokens=max_new_tokens)
        out["code_greedy_pass"] = sum(check_code_batch(code, [r["tests"] for r in code_rows])) / len(code_rows)
        out["code_format_rate"] = sum(format_ok(c, "code") for c in code) / len(code)
    out["example_completion"] = greedy[0] if greedy else ""
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in out.items()}


# ---------------------------------------------------------------- model cards
def write_card(folder: Path, card: dict) -> None:
    (folder / "toyworld_card.json").write_text(json.dumps(card, indent=2) + "\n")
    (folder / "README.md").write_text(render_card(card))


def render_card(card: dict) -> str:
    r, m, a = card["recipe"], card["recipe"]["model"], card["accuracy"]
    lines = [
        f"# toy-world {card['name']}",
        "",
        card["recipe"]["description"],
        "",
        "## Architecture",
        (
            f"- LlamaForCausalLM, hidden {m['hidden_size']}, {m['n_layers']} layers, {m['hidden_size'] // 64} heads of dim 64, "
            f"MLP {m['intermediate_size']}, tied embeddings, {card['n_params']:,} parameters, weights stored as {card['dtype']}."
        ),
        (
            f"- Tokenizer: {card['tokenizer']} ({card['vocab_size']} tokens); chat template `<s><|user|>{{problem}}\\n<|assistant|>`, "
            "EOS `</s>` after the answer."
        ),
        "",
        "## Training",
        f"- Style `{r['style']}`: example for a held-out problem:",
        "",
        "```",
        card["accuracy"].get("example_completion", ""),
        "```",
        "",
        (
            f"- Synthetic problems from the toy-world generator (math share {1 - r['code_share']:.2f}, code {r['code_share']:.2f}), "
            "excluding every eval.jsonl and benchmark.jsonl expression"
            + (
                f"; {r['worked_share']:.0%} of the math prompts ask to show the work "
                f"({', '.join(repr(p.format(e='...')) for p in WORKED_PHRASINGS)}) and are answered step by step."
                if r.get("worked_share")
                else "."
            )
        ),
        (
            f"- {r['train']['steps']} steps, batch {r['train']['batch_size']}, AdamW lr {r['train']['lr']} (warmup {r['train']['warmup']}, cosine), "
            f"seed {r['train']['seed']}; loss on the assistant part only."
        ),
        (
            f"- Built on {card['build']['device']} in {card['build']['train_seconds']} s of training "
            f"(training speed on CPU with 2 threads, measured on the build machine while it was busy: "
            f"{card['build']['cpu_steps_per_s']} steps/s, i.e. at most about {card['build']['est_cpu_minutes']} CPU minutes); "
            f"final loss {card['build']['final_loss']:.4f}."
        ),
        "",
        "## Accuracy (toyworld/data/eval.jsonl, plain checker; re-measure: `python -m toyworld.build --evaluate`)",
        f"- math greedy: {a['math_greedy_acc']:.3f} (n={a['n_math']}); math T=0.8 sampled: {a.get('math_t08_acc', float('nan')):.3f}",
        f"- math format rate (closed `<think>` + `\\boxed{{}}`): {a['math_format_rate']:.3f}; mean completion {a['math_mean_chars']} chars",
        f"- code greedy pass rate (all asserts): {a.get('code_greedy_pass', float('nan')):.3f} (n={a['n_code']})",
        *(
            [
                (
                    f"- math greedy under the project's verifier ({a['project_verifier_version']}): "
                    f"{a['math_greedy_acc_project_verifier']:.3f}; agreement with the plain checker {a['plain_vs_project_agreement']:.3f}"
                )
            ]
            if "math_greedy_acc_project_verifier" in a
            else []
        ),
        f"- measured on {a.get('measured_on', 'cpu')} at {a.get('measured_at', '')}",
    ]
    if card.get("sft_curve"):
        sc = card["sft_curve"]
        lines += [
            "",
            "## SFT gain-vs-minutes curve (fine-tuning a copy of this student on correct teacher-a traces)",
            (
                f"- traces: teacher-a sampled at T={sc['spec']['temperature']} on train.jsonl ({sc['n_prompts']} prompts); "
                f"{sc['n_correct']} correct kept ({sc['n_correct_math']} math, {sc['n_correct_code']} code)."
            ),
            (
                f"- batch {sc['spec']['batch_size']}, lr {sc['spec']['lr']}, loss on the assistant part only; run on {sc['device']}; "
                f"CPU minutes estimated from {sc['cpu_steps_per_s']} steps/s measured with {sc['spec']['cpu_threads']} CPU threads."
            ),
            "",
            "| steps | est. CPU minutes | held-out math greedy | format rate |",
            "|---:|---:|---:|---:|",
        ]
        for p in sc["points"]:
            lines.append(
                f"| {p['step']} | {p['est_cpu_minutes']} | {p['math_greedy_acc']:.3f} | {p['math_format_rate']:.3f} |"
            )
        lines.append("")
        lines.append(f"Gain at the end: {sc['gain_points']:+.1f} points over the base student.")
    lines.append("")
    return "\n".join(lines)


def cpu_steps_per_s(model, tok, stream, spec: TrainSpec, threads: int = 2, steps: int = 15) -> float:
    """Training speed of a copy of `model` on CPU with `threads` threads (for the time estimate)."""
    prev = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        clone = copy.deepcopy(model).to("cpu").float()
        res = train(clone, tok, stream, dataclasses.replace(spec, steps=steps, warmup=1), log_every=0)
        return round(steps / max(1e-6, res["train_seconds"]), 2)
    finally:
        torch.set_num_threads(prev)


# ---------------------------------------------------------------- stages
def build_model(
    recipe: ModelRecipe, data_dir: Path, models_dir: Path, device: str, eval_limit: int | None = None
) -> dict:
    t0 = time.perf_counter()
    math_keys, code_exprs = heldout(data_dir)
    sampler = make_sampler(recipe, math_keys, code_exprs)
    corpus = tokenizer_corpus(sampler, recipe.tokenizer_corpus, recipe.train.seed) if recipe.tokenizer == "student" else None
    tok = build_tokenizer(recipe.tokenizer, corpus)
    model = new_model(recipe.model, tok, recipe.train.seed).to(device)
    print(f"[{recipe.name}] {n_params(model):,} params on {device}", flush=True)
    res = train(model, tok, example_stream(sampler, recipe.train.batch_size, recipe.train.seed), recipe.train)
    speed = cpu_steps_per_s(model, tok, example_stream(sampler, recipe.train.batch_size, 99), recipe.train)
    folder = models_dir / recipe.name
    folder.mkdir(parents=True, exist_ok=True)
    model.to(torch.bfloat16).save_pretrained(folder)
    tok.save_pretrained(folder)
    model, tok = load_model(folder, device)  # measure what ships (bf16 weights)
    acc = measure(
        model, tok, eval_rows(data_dir, eval_limit), max_new_tokens=recipe.max_new_tokens, project_verifier=True
    )
    acc.update(measured_on=device, measured_at=time.strftime("%Y-%m-%d %H:%M:%S"))
    card = {
        "name": recipe.name,
        "recipe": asdict(recipe),
        "n_params": n_params(model),
        "dtype": "bfloat16",
        "tokenizer": TOKENIZER_KINDS[recipe.tokenizer],
        "vocab_size": len(tok),
        "build": {
            "device": device,
            "train_seconds": res["train_seconds"],
            "total_seconds": round(time.perf_counter() - t0, 1),
            "final_loss": res["final_loss"],
            "cpu_steps_per_s": speed,
            "est_cpu_minutes": round(recipe.train.steps / speed / 60, 1),
        },
        "accuracy": acc,
    }
    write_card(folder, card)
    print(f"[{recipe.name}] {json.dumps({k: v for k, v in acc.items() if k != 'example_completion'})}", flush=True)
    return card


def sft_curve(spec: SftCurveSpec, data_dir: Path, models_dir: Path, device: str, eval_limit: int | None = None) -> dict:
    """Fine-tune a copy of the student on correct teacher-a traces; held-out accuracy per checkpoint."""
    teacher, ttok = load_model(models_dir / "teacher-a", device)
    rows = read_jsonl(data_dir / "train.jsonl")
    if eval_limit:
        rows = rows[: 4 * eval_limit]
    comps = generate(
        teacher, ttok, [r["problem"] for r in rows], temperature=spec.temperature, max_new_tokens=160, seed=spec.seed
    )
    code_rows = [(r, c) for r, c in zip(rows, comps) if r["domain"] == "code"]
    code_ok = check_code_batch([c for _, c in code_rows], [r["tests"] for r, _ in code_rows])
    ok_code = {id(r) for (r, _), ok in zip(code_rows, code_ok) if ok}
    kept = [
        (r, c)
        for r, c in zip(rows, comps)
        if (r["domain"] == "math" and check_math(c, r["answer"]) and format_ok(c, "math")) or id(r) in ok_code
    ]
    traces = [(r["problem"], c) for r, c in kept]
    if not traces:
        raise ToyWorldError(
            f"teacher-a in {models_dir / 'teacher-a'} produced no correct trace on {len(rows)} train prompts"
        )
    del teacher
    student, stok = load_model(models_dir / "student", device)
    math_eval = [r for r in eval_rows(data_dir, eval_limit) if r["domain"] == "math"]
    base = measure(student, stok, math_eval, max_new_tokens=160, sampled=False)

    def stream():
        rng = random.Random(spec.seed)
        order: list[int] = []
        while True:
            if len(order) < spec.batch_size:
                more = list(range(len(traces)))
                rng.shuffle(more)
                order += more
            yield [traces[i] for i in order[: spec.batch_size]]
            del order[: spec.batch_size]

    tspec = TrainSpec(steps=spec.steps, batch_size=spec.batch_size, lr=spec.lr, warmup=spec.warmup, seed=spec.seed)
    speed = cpu_steps_per_s(student, stok, stream(), tspec, threads=spec.cpu_threads)
    points = [
        {
            "step": 0,
            "est_cpu_minutes": 0.0,
            "train_seconds": 0.0,
            "math_greedy_acc": base["math_greedy_acc"],
            "math_format_rate": base["math_format_rate"],
        }
    ]

    def on_checkpoint(step: int, train_s: float) -> None:
        m = measure(student, stok, math_eval, max_new_tokens=160, sampled=False)
        points.append(
            {
                "step": step,
                "est_cpu_minutes": round(step / speed / 60, 1),
                "train_seconds": round(train_s, 1),
                "math_greedy_acc": m["math_greedy_acc"],
                "math_format_rate": m["math_format_rate"],
            }
        )
        print(f"[sft-curve] {points[-1]}", flush=True)

    train(student, stok, stream(), tspec, on_checkpoint=on_checkpoint, checkpoint_steps=spec.checkpoints)
    n_math = sum(r["domain"] == "math" for r, _ in kept)
    curve = {
        "spec": asdict(spec),
        "device": device,
        "n_prompts": len(rows),
        "n_correct": len(traces),
        "n_correct_math": n_math,
        "n_correct_code": len(traces) - n_math,
        "cpu_steps_per_s": speed,
        "points": points,
        "gain_points": round(100 * (points[-1]["math_greedy_acc"] - points[0]["math_greedy_acc"]), 1),
        "best_gain_points": round(100 * (max(p["math_greedy_acc"] for p in points) - points[0]["math_greedy_acc"]), 1),
    }
    card_path = models_dir / "student" / "toyworld_card.json"
    card = json.loads(card_path.read_text())
    card["sft_curve"] = curve
    write_card(models_dir / "student", card)
    return curve


def evaluate_all(data_dir: Path, models_dir: Path, device: str, eval_limit: int | None = None) -> dict:
    """Re-measure every shipped model and rewrite its card's accuracy section."""
    rows = eval_rows(data_dir, eval_limit)
    report = {}
    for name in ("teacher-a", "teacher-b", "student"):
        folder = models_dir / name
        card = json.loads((folder / "toyworld_card.json").read_text())
        model, tok = load_model(folder, device)
        acc = measure(model, tok, rows, max_new_tokens=card["recipe"]["max_new_tokens"], project_verifier=True)
        acc.update(measured_on=device, measured_at=time.strftime("%Y-%m-%d %H:%M:%S"))
        before = card["accuracy"]
        card["accuracy"] = acc
        write_card(folder, card)
        report[name] = {k: (before.get(k), acc[k]) for k in ("math_greedy_acc", "math_t08_acc", "code_greedy_pass")}
        print(f"[evaluate] {name}: " + ", ".join(f"{k} {b} -> {a}" for k, (b, a) in report[name].items()), flush=True)
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", action="append", choices=STAGES, help="run only this stage (repeatable)")
    ap.add_argument("--evaluate", action="store_true", help="re-measure the shipped models and rewrite their cards")
    ap.add_argument("--device", default="cpu", help="torch device for training and measurement (cpu, cuda)")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--data-dir", type=Path, default=DATA_DIR)
    ap.add_argument("--models-dir", type=Path, default=MODELS_DIR)
    ap.add_argument("--steps", type=int, help="override the training steps of the --only stage(s) (for sweeps)")
    ap.add_argument(
        "--size", help="override the model size of the --only model stage(s): HIDDEN,LAYERS,MLP (for sweeps)"
    )
    ap.add_argument("--eval-limit", type=int, help="measure on the first N math and N code eval rows only (smoke runs)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.evaluate:
        evaluate_all(args.data_dir, args.models_dir, args.device, args.eval_limit)
        return 0
    stages = args.only or list(STAGES)
    t0 = time.perf_counter()
    for stage in stages:
        ts = time.perf_counter()
        if stage == "data":
            m = write_data(DataSpec(), args.data_dir)
            write_paraphrased_leaks(args.data_dir)  # toyworld/leaks.py: reworded benchmark items, a separate prompt file
            print(f"[data] {json.dumps(m['counts'])}", flush=True)
        elif stage in RECIPES:
            recipe = RECIPES[stage]
            if args.steps:
                recipe = dataclasses.replace(recipe, train=dataclasses.replace(recipe.train, steps=args.steps))
            if args.size:
                h, n, f = (int(x) for x in args.size.split(","))
                recipe = dataclasses.replace(recipe, model=ModelSpec(hidden_size=h, n_layers=n, intermediate_size=f))
            build_model(recipe, args.data_dir, args.models_dir, args.device, args.eval_limit)
        else:
            spec = SftCurveSpec()
            if args.steps:
                spec = dataclasses.replace(
                    spec,
                    steps=args.steps,
                    checkpoints=tuple(c for c in spec.checkpoints if c < args.steps) + (args.steps,),
                )
            sft_curve(spec, args.data_dir, args.models_dir, args.device, args.eval_limit)
        print(f"[{stage}] done in {time.perf_counter() - ts:.0f} s", flush=True)
    print(f"[build] total {time.perf_counter() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
