"""Problem files of the toy world, with planted duplicates, near-duplicates and benchmark leaks.

Writes under `toyworld/data/`: train.jsonl, eval.jsonl, benchmark.jsonl, imported_traces.jsonl
and manifest.json (every planted item by id, with counts). Deterministic for a given seed.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

from toyworld.problems import (
    CODE_NEAR_DUP_PHRASING,
    CODE_PHRASING,
    MATH_PHRASINGS,
    NEAR_DUP_PHRASINGS,
    CodeTask,
    Expr,
    evaluate,
    random_code_task,
    random_expr,
    solve_steps,
    teacher_a_trace,
)


@dataclass(frozen=True)
class DataSpec:
    """Sizes of the toy-world problem files."""

    seed: int = field(default=11, metadata={"help": "RNG seed for every file"})
    n_train_math: int = field(default=2000, metadata={"help": "math rows in train.jsonl, planted rows included"})
    n_train_code: int = field(default=300, metadata={"help": "code rows in train.jsonl, planted rows included"})
    n_eval_math: int = field(default=200, metadata={"help": "held-out math rows (eval.jsonl)"})
    n_eval_code: int = field(default=50, metadata={"help": "held-out code rows (eval.jsonl)"})
    n_bench_math: int = field(default=100, metadata={"help": "benchmark math rows"})
    n_bench_code: int = field(default=20, metadata={"help": "benchmark code rows"})
    n_exact_dup_math: int = field(default=20, metadata={"help": "exact duplicate rows planted in train (math)"})
    n_exact_dup_code: int = field(default=5, metadata={"help": "exact duplicate rows planted in train (code)"})
    n_near_dup_math: int = field(default=30, metadata={"help": "reworded near-duplicate rows planted in train (math)"})
    n_near_dup_code: int = field(default=8, metadata={"help": "reworded near-duplicate rows planted in train (code)"})
    n_leak_math: int = field(default=8, metadata={"help": "benchmark math items leaked into train"})
    n_leak_code: int = field(default=2, metadata={"help": "benchmark code items leaked into train"})
    n_imported: int = field(default=120, metadata={"help": "rows of imported_traces.jsonl"})
    imported_wrong_share: float = field(default=0.3, metadata={"help": "share of imported traces with a wrong answer"})


def math_row(id_: str, problem: str, e: Expr) -> dict:
    return {"id": id_, "domain": "math", "problem": problem, "answer": str(evaluate(e)), "tests": []}


def code_row(id_: str, problem: str, t: CodeTask) -> dict:
    return {"id": id_, "domain": "code", "problem": problem, "answer": None, "tests": t.tests()}


def _unique_exprs(rng: random.Random, n: int, taken: set[str]) -> list[Expr]:
    out = []
    while len(out) < n:
        e = random_expr(rng)
        if e.key not in taken:
            taken.add(e.key)
            out.append(e)
    return out


def _unique_code(rng: random.Random, n: int, taken: set[str]) -> list[CodeTask]:
    out = []
    while len(out) < n:
        t = random_code_task(rng)
        if t.expr not in taken:
            taken.add(t.expr)
            out.append(t)
    return out


def _math_problem(rng: random.Random, e: Expr) -> str:
    return rng.choice(MATH_PHRASINGS).format(e=e.text())


def _near_dup_math(rng: random.Random, e: Expr, original: str) -> tuple[str, str]:
    """A rewording of `original`: new verb, and/or operator spacing removed."""
    while True:
        variant = rng.choice(["verb", "spacing", "verb+spacing"])
        verb_tpl = rng.choice(NEAR_DUP_PHRASINGS) if "verb" in variant else None
        expr_text = e.text(spaced=False) if "spacing" in variant else e.text()
        if verb_tpl is None:
            text = original.replace(e.text(), expr_text)
        else:
            text = verb_tpl.format(e=expr_text)
        if text != original:
            return text, variant


def _wrong_trace(rng: random.Random, e: Expr) -> str:
    """A teacher-a style trace with one arithmetic slip that propagates to the answer."""
    k = rng.randrange(len(solve_steps(e)))
    steps = solve_steps(e, slip=(k, rng.choice([-10, -2, -1, 1, 2, 10])))
    lines = [f"{a}{op}{b}={r}." for a, op, b, r in steps]
    return "<think>\n" + "\n".join(lines) + "\n</think>\n\\boxed{" + str(steps[-1][3]) + "}"


def build_data(spec: DataSpec) -> dict[str, list[dict]]:
    """All problem files as lists of rows, plus the manifest under key 'manifest'."""
    rng = random.Random(spec.seed)
    taken_math: set[str] = set()
    taken_code: set[str] = set()

    eval_math = _unique_exprs(rng, spec.n_eval_math, taken_math)
    bench_math = _unique_exprs(rng, spec.n_bench_math, taken_math)
    eval_code = _unique_code(rng, spec.n_eval_code, taken_code)
    bench_code = _unique_code(rng, spec.n_bench_code, taken_code)

    eval_rows = [math_row(f"eval-math-{i + 1:05d}", _math_problem(rng, e), e) for i, e in enumerate(eval_math)]
    eval_rows += [
        code_row(f"eval-code-{i + 1:05d}", CODE_PHRASING.format(e=t.expr), t) for i, t in enumerate(eval_code)
    ]
    bench_rows = [math_row(f"bench-math-{i + 1:05d}", _math_problem(rng, e), e) for i, e in enumerate(bench_math)]
    bench_rows += [
        code_row(f"bench-code-{i + 1:05d}", CODE_PHRASING.format(e=t.expr), t) for i, t in enumerate(bench_code)
    ]

    # --- train: unique base rows, then planted rows (tagged before ids are assigned)
    n_base_math = spec.n_train_math - spec.n_exact_dup_math - spec.n_near_dup_math - spec.n_leak_math
    n_base_code = spec.n_train_code - spec.n_exact_dup_code - spec.n_near_dup_code - spec.n_leak_code
    base_math = [(_math_problem(rng, e), e) for e in _unique_exprs(rng, n_base_math, taken_math)]
    base_code = [(CODE_PHRASING.format(e=t.expr), t) for t in _unique_code(rng, n_base_code, taken_code)]
    staged: list[dict] = []  # rows with a temporary 'tag' for the manifest
    for k, (p, e) in enumerate(base_math):
        staged.append({**math_row("", p, e), "_tag": ("base", f"m{k}")})
    for k, (p, t) in enumerate(base_code):
        staged.append({**code_row("", p, t), "_tag": ("base", f"c{k}")})

    for k in rng.sample(range(len(base_math)), spec.n_exact_dup_math):
        p, e = base_math[k]
        staged.append({**math_row("", p, e), "_tag": ("exact", f"m{k}")})
    for k in rng.sample(range(len(base_code)), spec.n_exact_dup_code):
        p, t = base_code[k]
        staged.append({**code_row("", p, t), "_tag": ("exact", f"c{k}")})
    for k in rng.sample(range(len(base_math)), spec.n_near_dup_math):
        p, e = base_math[k]
        text, variant = _near_dup_math(rng, e, p)
        staged.append({**math_row("", text, e), "_tag": ("near", f"m{k}", variant)})
    for k in rng.sample(range(len(base_code)), spec.n_near_dup_code):
        p, t = base_code[k]
        staged.append({**code_row("", CODE_NEAR_DUP_PHRASING.format(e=t.expr), t), "_tag": ("near", f"c{k}", "verb")})
    for j, k in enumerate(rng.sample(range(len(bench_math)), spec.n_leak_math)):
        b = bench_rows[k]
        variant = "verbatim" if j % 2 == 0 else "reworded"
        text = b["problem"] if variant == "verbatim" else _near_dup_math(rng, bench_math[k], b["problem"])[0]
        staged.append({**math_row("", text, bench_math[k]), "_tag": ("leak", b["id"], variant)})
    for j, k in enumerate(rng.sample(range(len(bench_code)), spec.n_leak_code)):
        b = bench_rows[spec.n_bench_math + k]
        staged.append({**code_row("", b["problem"], bench_code[k]), "_tag": ("leak", b["id"], "verbatim")})

    rng.shuffle(staged)
    counters = {"math": 0, "code": 0}
    base_id: dict[str, str] = {}
    for row in staged:
        counters[row["domain"]] += 1
        row["id"] = f"{row['domain']}-{counters[row['domain']]:05d}"
        if row["_tag"][0] == "base":
            base_id[row["_tag"][1]] = row["id"]

    exact, near, leaks = [], [], []
    for row in staged:
        tag = row.pop("_tag")
        if tag[0] == "exact":
            exact.append({"id": row["id"], "duplicate_of": base_id[tag[1]], "domain": row["domain"]})
        elif tag[0] == "near":
            near.append(
                {"id": row["id"], "near_duplicate_of": base_id[tag[1]], "domain": row["domain"], "variant": tag[2]}
            )
        elif tag[0] == "leak":
            leaks.append({"train_id": row["id"], "benchmark_id": tag[1], "domain": row["domain"], "variant": tag[2]})
    train_rows = sorted(staged, key=lambda r: (r["domain"] != "math", r["id"]))

    # --- imported traces: teacher-a style, some with a planted arithmetic slip
    pool = [r for r in train_rows if r["domain"] == "math"]
    imported, wrong_ids = [], []
    fresh = _unique_exprs(rng, spec.n_imported // 4, taken_math)  # problems not in any other file
    picks = [(r["problem"], evaluate_row(r)) for r in rng.sample(pool, spec.n_imported - len(fresh))]
    picks += [(_math_problem(rng, e), e) for e in fresh]
    for i, (problem, e) in enumerate(picks):
        id_ = f"imp-{i + 1:05d}"
        wrong = rng.random() < spec.imported_wrong_share
        body = _wrong_trace(rng, e) if wrong else teacher_a_trace(e)
        if wrong:
            wrong_ids.append(id_)
        imported.append(
            {
                "id": id_,
                "messages": [{"role": "user", "content": problem}, {"role": "assistant", "content": body}],
                "reference_answer": str(evaluate(e)),
                "source": "toy-hub/arith-r1-traces",
            }
        )

    manifest = {
        "seed": spec.seed,
        "spec": asdict(spec),
        "counts": {
            "train": len(train_rows),
            "train_math": sum(r["domain"] == "math" for r in train_rows),
            "train_code": sum(r["domain"] == "code" for r in train_rows),
            "eval": len(eval_rows),
            "benchmark": len(bench_rows),
            "imported_traces": len(imported),
            "imported_wrong": len(wrong_ids),
            "exact_duplicates": len(exact),
            "near_duplicates": len(near),
            "leaks": len(leaks),
        },
        "exact_duplicates": exact,
        "near_duplicates": near,
        "leaks": leaks,
        "imported_wrong_ids": wrong_ids,
        "notes": (
            "exact_duplicates: same problem text as duplicate_of. near_duplicates: the same expression "
            "reworded (variant 'verb': new leading phrase; 'spacing': operator spaces removed). leaks: "
            "benchmark items copied into train ('verbatim') or reworded ('reworded'). Distinct problems "
            "that differ in one digit are NOT near-duplicates: they have different answers."
        ),
    }
    return {
        "train": train_rows,
        "eval": eval_rows,
        "benchmark": bench_rows,
        "imported_traces": imported,
        "manifest": manifest,
    }


def evaluate_row(row: dict) -> Expr:
    from toyworld.problems import expr_in_problem

    return expr_in_problem(row["problem"])


def write_data(spec: DataSpec, out_dir: Path) -> dict:
    """Write the JSONL files and manifest.json; returns the manifest (with file hashes)."""
    files = build_data(spec)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = files.pop("manifest")
    hashes = {}
    for name, rows in files.items():
        path = out_dir / f"{name}.jsonl"
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        path.write_text(text)
        hashes[path.name] = hashlib.sha256(text.encode()).hexdigest()
    manifest["files"] = hashes
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
