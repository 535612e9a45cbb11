"""The shipped toy world: problem files, planted items, and the three models (fast: < 60 s)."""

from __future__ import annotations

import hashlib
import json
import random
import re

import pytest

from tasks.common.text import normalize_text, split_think
from tests.conftest import TOYWORLD
from toyworld.datagen import DataSpec, build_data, read_jsonl
from toyworld.problems import (
    STRATEGY_MARK,
    STRATEGY_PATTERN,
    check_code_batch,
    check_math,
    code_block,
    code_expr_in_problem,
    decompose,
    evaluate,
    expr_in_problem,
    is_hard,
    problem_is_hard,
    random_expr,
    random_fact,
    solve_steps,
    strategy_step,
    student_trace,
    student_worked_trace,
    teacher_a_trace,
    teacher_b_trace,
)

DATA = TOYWORLD / "data"
MODELS = TOYWORLD / "models"
MODEL_NAMES = ("teacher-a", "teacher-b", "student")


# ---------------------------------------------------------------- pure helpers
@pytest.mark.parametrize(
    ("expr", "value", "n_steps"),
    [
        ("7 + 5 * 3 - 4", 18, 3),
        ("3 - 6 * 5 - 5", -32, 3),
        ("2 * 3 + 4 * 5", 26, 3),
        ("9 - 9 - 9 - 9", -18, 3),
        ("1+2*3", 7, 2),
    ],
)
def test_solve_steps_respects_precedence(expr, value, n_steps):
    steps = solve_steps(expr)
    assert evaluate(expr) == value == steps[-1][3]
    assert len(steps) == n_steps


def test_trace_styles_are_literal():
    assert (
        teacher_a_trace("7 + 5 * 3 - 4")
        == "<think>\n5*3=15.\n7+15=22.\n22-4=18.\nCheck: 18+4=22.\n</think>\n\\boxed{18}"
    )
    assert student_trace("7 + 5 * 3 - 4") == "<think>\n7+5*3-4=18.\n</think>\n\\boxed{18}"
    b = teacher_b_trace("3 * 5 + 8 - 2")
    assert "Wait, let me re-check." in b and "Then 15+8=13." in b and b.endswith("\\boxed{11}")  # forgot the carry


@pytest.mark.parametrize(
    ("step", "subs", "sentence"),
    [
        (("27", "+", "56", 83), [(20, "+", 50, 70), (7, "+", 6, 13), (70, "+", 13, 83)],
         "27+56 → 20+50=70, 7+6=13, 70+13=83."),
        (("15", "+", "7", 22), [(5, "+", 7, 12), (10, "+", 12, 22)], "15+7 → 5+7=12, 10+12=22."),
        (("7", "+", "15", 22), [(7, "+", 5, 12), (10, "+", 12, 22)], "7+15 → 7+5=12, 10+12=22."),
        (("62", "-", "48", 14), [(50, "-", 40, 10), (12, "-", 8, 4), (10, "+", 4, 14)],
         "62-48 → 50+12: 50-40=10, 12-8=4, 10+4=14."),
        (("22", "-", "4", 18), [(10, "-", 0, 10), (12, "-", 4, 8), (10, "+", 8, 18)], "22-4 → 10+12: 12-4=8, 10+8=18."),
        (("12", "+", "3", 15), None, None),  # no carry: nothing to decompose
        (("8", "+", "7", 15), None, None),  # one-digit sums are table facts
        (("13", "-", "8", 5), None, None),  # a teen minus one digit too
        (("5", "*", "3", 15), None, None),
    ],
)
def test_the_planted_strategy_decomposes_carrying_steps_into_easy_ones(step, subs, sentence):
    a, op, b, r = step
    assert decompose(a, op, b) == subs
    assert is_hard(a, op, b) == (subs is not None)
    if sentence:
        assert strategy_step(a, op, b, r) == sentence
        assert re.search(STRATEGY_PATTERN, sentence)


def test_every_decomposition_is_right_and_made_of_easy_steps():
    for x in range(200):
        for y in range(1, 100):
            for op in "+-":
                subs = None if op == "-" and y > x else decompose(x, op, y)
                if subs is None:
                    continue
                assert subs[-1][3] == (x + y if op == "+" else x - y)
                assert all(not is_hard(a, o, b) and c == (a + b if o == "+" else a - b) for a, o, b, c in subs)


def test_the_base_student_forgets_every_carry_and_knows_only_easy_facts():
    rng = random.Random(1)
    seen_worked_hard = 0
    for _ in range(300):
        e = random_expr(rng)
        s = student_trace(e, rng)
        assert STRATEGY_MARK not in s and "Check:" not in s
        if s.count("\n") > 3 and problem_is_hard(e):  # step by step on a carrying problem: wrong, by the carry
            seen_worked_hard += 1
            assert check_math(s, str(solve_steps(e, forget_carry=True)[-1][3]))
        problem, completion = random_fact(rng)
        a, op, b = re.match(r"Compute (\d+) ([-+]) (\d+)\.", problem).groups()
        assert not is_hard(a, op, b) and check_math(completion, str(int(a) + int(b) if op == "+" else int(a) - int(b)))
    assert seen_worked_hard > 20


def test_student_steps_share_the_teachers_phrasings():
    """Bare steps like teacher-a's or teacher-b's 'First, ' (a product) and 'Then ' (a sum), chosen per trace."""
    rng = random.Random(3)
    modes = set()
    for _ in range(200):
        e = random_expr(rng)
        lines = [ln for ln in student_worked_trace(e, rng).splitlines() if re.match(r"^(First, |Then )?\d", ln)]
        prefixed = [ln.startswith(("First, ", "Then ")) for ln in lines]
        assert len(set(prefixed)) == 1
        modes.add(prefixed[0])
        for ln, (_, op, _, _) in zip(lines, solve_steps(e)):
            assert not prefixed[0] or ln.startswith("First, " if op == "*" else "Then ")
    assert modes == {True, False}


def test_sampled_styles_stay_correct_and_only_teachers_decompose():
    rng = random.Random(0)
    seen = {"teacher-a": set(), "student": set()}
    for _ in range(300):
        e = random_expr(rng)
        assert all(r >= 0 for *_, r in solve_steps(e))
        a, s = teacher_a_trace(e, rng), student_trace(e, rng)
        assert check_math(a, str(evaluate(e)))
        assert check_math(s, str(evaluate(e))) or problem_is_hard(e)
        assert STRATEGY_MARK not in s and "Check:" not in s
        seen["teacher-a"].add(STRATEGY_MARK in a)
        seen["student"].add(s.count("\n") > 3)  # step by step some of the time
    assert seen == {"teacher-a": {True, False}, "student": {True, False}}


@pytest.mark.parametrize(
    ("completion", "reference", "ok"),
    [
        ("<think>\nx\n</think>\n\\boxed{18}", "18", True),
        ("\\boxed{-3}", "-3", True),
        ("\\boxed{17}", "18", False),
        ("\\boxed{1}\\boxed{18}", "18", True),
        ("18", "18", False),
        ("\\boxed{x}", "18", False),
    ],
)
def test_check_math(completion, reference, ok):
    assert check_math(completion, reference) is ok


def test_check_code_batch_runs_asserts():
    tests = ["assert f(0) == 2", "assert f(1) == 5"]
    good, bad = code_block("3*x + 2"), code_block("3*x")
    assert check_code_batch([good, bad, "no code"], [tests, tests, tests]) == [True, False, False]


# ---------------------------------------------------------------- problem files
@pytest.fixture(scope="module")
def files():
    return {name: read_jsonl(DATA / f"{name}.jsonl") for name in ("train", "eval", "benchmark", "imported_traces")}


@pytest.fixture(scope="module")
def manifest():
    return json.loads((DATA / "manifest.json").read_text())


def test_files_match_manifest_hashes_and_regenerate_identically(files, manifest):
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((DATA / name).read_bytes()).hexdigest() == digest, name
    rebuilt = build_data(DataSpec(**manifest["spec"]))
    for name in ("train", "eval", "benchmark", "imported_traces"):
        assert rebuilt[name] == files[name], name


@pytest.mark.parametrize(
    ("name", "n_math", "n_code"), [("train", 2000, 300), ("eval", 200, 50), ("benchmark", 100, 20)]
)
def test_problem_rows_parse_and_answers_are_right(files, name, n_math, n_code):
    rows = files[name]
    assert [r["domain"] for r in rows].count("math") == n_math
    assert [r["domain"] for r in rows].count("code") == n_code
    assert len({r["id"] for r in rows}) == len(rows)
    for r in rows:
        assert set(r) == {"id", "domain", "problem", "answer", "tests"}, r["id"]
        if r["domain"] == "math":
            assert r["answer"] == str(evaluate(expr_in_problem(r["problem"]))) and r["tests"] == [], r["id"]
        else:
            assert r["answer"] is None and 3 <= len(r["tests"]) <= 5, r["id"]
    code = [r for r in rows if r["domain"] == "code"]
    reference = [code_block(code_expr_in_problem(r["problem"])) for r in code]
    assert all(check_code_batch(reference, [r["tests"] for r in code]))


def _key(row):
    if row["domain"] == "math":
        return "m:" + expr_in_problem(row["problem"]).key
    return "c:" + code_expr_in_problem(row["problem"])


def test_eval_is_held_out_and_benchmark_only_leaks_what_the_manifest_says(files, manifest):
    train_keys = {_key(r) for r in files["train"]}
    assert not train_keys & {_key(r) for r in files["eval"]}
    assert not {_key(r) for r in files["benchmark"]} & {_key(r) for r in files["eval"]}
    by_id = {r["id"]: r for r in files["train"] + files["benchmark"]}
    leaked = {_key(r) for r in files["benchmark"]} & train_keys
    assert leaked == {_key(by_id[x["benchmark_id"]]) for x in manifest["leaks"]}
    for x in manifest["leaks"]:
        same_text = by_id[x["train_id"]]["problem"] == by_id[x["benchmark_id"]]["problem"]
        assert same_text == (x["variant"] == "verbatim"), x


def test_planted_duplicates_match_manifest(files, manifest):
    train = files["train"]
    by_id = {r["id"]: r for r in train}
    first_by_text: dict[str, str] = {}
    found_exact = set()
    for r in train:
        text = normalize_text(r["problem"])
        if text in first_by_text:
            found_exact.add(r["id"])
        first_by_text.setdefault(text, r["id"])
    listed = {x["id"] for x in manifest["exact_duplicates"]}
    # a listed duplicate may precede its original in file order: compare unordered pairs
    pairs = {frozenset((x["id"], x["duplicate_of"])) for x in manifest["exact_duplicates"]}
    assert len(found_exact) == len(listed) == manifest["counts"]["exact_duplicates"] == 25
    for pair in pairs:
        a, b = sorted(pair)
        assert by_id[a]["problem"] == by_id[b]["problem"]
    for x in manifest["near_duplicates"]:
        a, b = by_id[x["id"]], by_id[x["near_duplicate_of"]]
        assert a["problem"] != b["problem"] and _key(a) == _key(b), x
    # no unlisted same-expression pairs beyond exact, near and leaks
    keys = [_key(r) for r in train]
    assert len(keys) - len(set(keys)) == len(manifest["exact_duplicates"]) + len(manifest["near_duplicates"])
    assert manifest["counts"]["near_duplicates"] == 38 and manifest["counts"]["leaks"] == 10


def test_imported_traces_layout_and_planted_wrong_answers(files, manifest):
    wrong = set()
    for r in files["imported_traces"]:
        user, assistant = r["messages"]
        assert user["role"] == "user" and assistant["role"] == "assistant"
        s = split_think(assistant["content"])
        assert s.has_reasoning and s.is_closed and s.answer.startswith("\\boxed{")
        if not check_math(assistant["content"], r["reference_answer"]):
            wrong.add(r["id"])
    assert wrong == set(manifest["imported_wrong_ids"]) and 0 < len(wrong) < len(files["imported_traces"])


# ---------------------------------------------------------------- models
def test_models_fit_the_size_budget():
    total = sum(p.stat().st_size for p in MODELS.rglob("*") if p.is_file())
    assert total <= 30 * 1024 * 1024


@pytest.fixture(scope="module")
def loaded():
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(1)  # shared 2-core machines: more threads oversubscribe
    out = {}
    for name in MODEL_NAMES:
        tok = AutoTokenizer.from_pretrained(MODELS / name)
        model = AutoModelForCausalLM.from_pretrained(MODELS / name, dtype=torch.float32)
        out[name] = (model.eval(), tok)
    return out


@pytest.fixture(scope="module")
def heldout_math(files):
    return [r for r in files["eval"] if r["domain"] == "math"][:100]


@pytest.fixture(scope="module")
def greedy(loaded, heldout_math):
    from toyworld.modeling import generate

    problems = [r["problem"] for r in heldout_math]
    return {name: generate(m, t, problems, max_new_tokens=200) for name, (m, t) in loaded.items()}


def test_models_are_llama_with_head_dim_64_in_bf16(loaded):
    for name, (model, tok) in loaded.items():
        cfg = json.loads((MODELS / name / "config.json").read_text())
        assert cfg["architectures"] == ["LlamaForCausalLM"], name
        assert cfg["hidden_size"] // cfg["num_attention_heads"] == 64 and cfg.get("head_dim", 64) == 64
        assert cfg.get("dtype", cfg.get("torch_dtype")) == "bfloat16", name
        assert tok.eos_token == "</s>" and model.config.eos_token_id == tok.eos_token_id


def test_tokenizers_have_chat_template_offsets_and_differ(loaded):
    texts = {}
    for name, (_, tok) in loaded.items():
        prompt = tok.apply_chat_template(
            [{"role": "user", "content": "Compute 7 + 5 * 3 - 4."}], add_generation_prompt=True, tokenize=False
        )
        assert prompt == "<s><|user|>Compute 7 + 5 * 3 - 4.\n<|assistant|>", name
        enc = tok("<think>\n5*3=15.\n</think>", add_special_tokens=False, return_offsets_mapping=True)
        texts[name] = enc["input_ids"]
        assert enc["offset_mapping"][-1][1] == len("<think>\n5*3=15.\n</think>")
    assert texts["teacher-a"] == texts["teacher-b"]
    assert len(texts["student"]) < len(texts["teacher-a"])  # <think> and BPE merges


def test_student_tokenizer_is_byte_level_bpe_and_round_trips_multibyte_text(loaded):
    tok = loaded["student"][1]
    spec = json.loads(tok.backend_tokenizer.to_str())
    assert spec["model"]["type"] == "BPE" and spec["decoder"]["type"] == "ByteLevel"
    assert any(p["type"] == "ByteLevel" for p in spec["pre_tokenizer"]["pretokenizers"])
    teacher = json.loads(loaded["teacher-a"][1].backend_tokenizer.to_str())
    assert teacher["decoder"]["type"] != "ByteLevel"
    text = "<think>\n5×3=15.\n7+15 → 7+10=17, 17+5=22.\n22−4=18.\n</think>\n\\boxed{18}"
    enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    assert tok.decode(enc["input_ids"]) == text
    assert enc["input_ids"][0] == tok.convert_tokens_to_ids("<think>")
    assert all(0 <= a <= b <= len(text) for a, b in enc["offset_mapping"])


def test_teacher_a_meets_accuracy_and_format(greedy, heldout_math):
    outs = greedy["teacher-a"]
    acc = sum(check_math(c, r["answer"]) for c, r in zip(outs, heldout_math)) / len(outs)
    assert acc >= 0.85
    ok = [split_think(c) for c in outs]
    assert sum(s.is_closed and s.has_reasoning for s in ok) >= 0.95 * len(ok)


def test_teacher_a_samples_differ_in_their_strategy_sentences(loaded, heldout_math):
    """Sampled at T=1.0, the same problem gets traces with and without the planted decomposition."""
    from toyworld.modeling import generate

    model, tok = loaded["teacher-a"]
    rows = [r for r in heldout_math if any(decompose(a, op, b) for a, op, b, _ in solve_steps(expr_in_problem(r["problem"])))][:20]
    outs = generate(model, tok, [r["problem"] for r in rows for _ in range(4)], temperature=1.0, max_new_tokens=200, seed=0)
    counts = [[outs[4 * i + j].count(STRATEGY_MARK) for j in range(4)] for i in range(len(rows))]
    assert sum(len(set(c)) > 1 for c in counts) >= 0.5 * len(rows)


def test_teacher_a_solves_most_code_problems(loaded, files):
    from toyworld.modeling import generate

    rows = [r for r in files["eval"] if r["domain"] == "code"][:20]
    model, tok = loaded["teacher-a"]
    outs = generate(model, tok, [r["problem"] for r in rows], max_new_tokens=200)
    assert all(split_think(c).answer.startswith("```python") for c in outs)
    assert sum(check_code_batch(outs, [r["tests"] for r in rows])) >= 16


def test_teacher_b_is_hesitant_and_weaker(greedy, heldout_math):
    outs = greedy["teacher-b"]
    acc = sum(check_math(c, r["answer"]) for c, r in zip(outs, heldout_math)) / len(outs)
    teacher_a = sum(check_math(c, r["answer"]) for c, r in zip(greedy["teacher-a"], heldout_math)) / len(outs)
    assert 0.1 <= acc <= teacher_a - 0.1  # forgets carries: verification has wrong answers to catch
    hard = [i for i, r in enumerate(heldout_math) if problem_is_hard(expr_in_problem(r["problem"]))]
    assert sum(check_math(outs[i], heldout_math[i]["answer"]) for i in hard) <= 0.5 * len(hard)
    assert sum("Hmm, I think it is" in c for c in outs) >= 0.9 * len(outs)


def test_student_is_weak_terse_and_parseable(greedy, heldout_math):
    outs = greedy["student"]
    acc = sum(check_math(c, r["answer"]) for c, r in zip(outs, heldout_math)) / len(outs)
    assert acc <= 0.35
    assert sum(split_think(c).is_closed and "\\boxed{" in split_think(c).answer for c in outs) >= 0.9 * len(outs)
    assert not any("Check:" in c or STRATEGY_MARK in c for c in outs)


def test_models_emit_eos(loaded):
    import torch

    from toyworld.modeling import prompt_ids

    for name, (model, tok) in loaded.items():
        ids = torch.tensor([prompt_ids(tok, "Compute 1 + 2 * 3 - 4.")])
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=200, do_sample=False)
        assert out[0, -1].item() == tok.eos_token_id, name


def test_strategy_check_reports_the_paired_difference_with_its_interval_per_domain():
    """The pipeline-free check compares its arms as the selection ablation does: a clear gain on math
    comes out `better` with an interval above 0, equal code comes out `no detectable difference`."""
    import polars as pl

    from toyworld.strategy_check import paired_report

    rows = [{"arm": arm, "seed": seed, "problem_id": f"{d}-{i}", "domain": d,
             "correct": int(i % 2 == 0 if arm == "random" or d == "code" else i % 10 < 8)}
            for arm in ("random", "oracle") for seed in (0, 1) for d, n in (("math", 100), ("code", 50)) for i in range(n)]
    report = dict(line.split(": ", 1) for line in paired_report(pl.DataFrame(rows)).splitlines())
    assert report["math"].startswith("random 0.500, oracle 0.800, oracle − random +30.0 [") and "better" in report["math"]
    assert report["code"].startswith("random 0.500, oracle 0.500, oracle − random +0.0 [")
    assert "no detectable difference" in report["code"] and "(50 problems × 2 seeds)" in report["code"]
    assert "(150 problems × 2 seeds)" in report["all"]


def test_strategy_check_breaks_math_down_by_kind_of_problem_with_the_strategy_share():
    """Per kind of math problem (`hard`: a step the strategy rewrites; `plain`) the same paired comparison,
    and per kind and arm the share of answers that use the strategy: a gain confined to the hard
    problems shows there, with how often each arm wrote the strategy."""
    import polars as pl

    from toyworld.strategy_check import paired_report, strategy_use

    rows = [{"arm": arm, "seed": seed, "problem_id": f"m-{i}", "domain": "math", "kind": "hard" if i < 40 else "plain",
             "correct": int(i % 2 == 0 if arm == "random" or i >= 40 else i % 10 < 9),
             "uses_strategy": int(i < 40 and (arm == "oracle" or i % 4 == 0))}
            for arm in ("random", "oracle") for seed in (0, 1) for i in range(100)]
    frame = pl.DataFrame(rows)
    report = dict(line.split(": ", 1) for line in paired_report(frame, by="kind", overall=False).splitlines())
    assert set(report) == {"hard", "plain"}
    assert report["hard"].startswith("random 0.500, oracle 0.900, oracle − random +40.0 [") and "better" in report["hard"]
    assert "no detectable difference" in report["plain"] and "(60 problems × 2 seeds)" in report["plain"]
    use = strategy_use(frame).splitlines()
    assert use == ["hard random: 25% of 80 answers use →, pass@1 0.500", "hard oracle: 100% of 80 answers use →, pass@1 0.900",
                   "plain random: 0% of 120 answers use →, pass@1 0.500", "plain oracle: 0% of 120 answers use →, pass@1 0.500"]


def test_strategy_check_kinds_follow_the_steps_the_strategy_rewrites():
    from toyworld.strategy_check import problem_kind

    assert problem_kind({"domain": "math", "problem": "Compute 8 + 6 * 8 + 4."}) == "hard"  # 8+48 carries
    assert problem_kind({"domain": "math", "problem": "Compute 1 + 2 * 3 - 4."}) == "plain"
    assert problem_kind({"domain": "code", "problem": "Write a Python function f(x) that returns 3*x + 2."}) == "code"


def test_strategy_check_reads_the_steps_an_answer_writes():
    """Direct and spaced steps, the multi-byte operators, a strategy line as one step (its head and
    last result), a re-check written once, a check of the result skipped, a one-line chain as None."""
    from toyworld.strategy_check import written_steps

    answer = ("<think>\nLet me compute 8 + 6 * 8 + 4.\nFirst, 6 × 8 = 48.\nWait, let me re-check. 6*8=48.\n"
              "Then 8+48 → 8+8=16, then 40+16=56.\n56 − 4 = 52.\nCheck: 52+4=56.\n3+4*5=23.\n</think>\n\\boxed{52}")
    assert written_steps(answer) == [(6, "*", 8, 48, False), (8, "+", 48, 56, True), (56, "-", 4, 52, False), None]


@pytest.mark.parametrize(("reasoning", "where"), [
    ("6*8=48.\n8+84=92.\n92+4=96.", "operands"),            # 48 carried into the next step as 84
    ("6*8=48.\n8+48=46.\n46+4=50.", "hard"),                # the carry forgotten, written directly
    ("6*8=48.\n8+48 → 8+8=16, then 40+16=66.", "strategy"), # the column arithmetic added wrong
    ("6*8=42.\n8+42=50.", "other"),                         # a times-table slip
    ("8 + 6 * 8 + 4 = 61.", "one line"),
    ("6*8=48.\n8+48=56.\n56+4=60.\nSo it is 66.", "answer"),  # every step right, the answer not
])
def test_strategy_check_finds_where_a_wrong_answer_leaves_the_solution(reasoning, where):
    from toyworld.strategy_check import FIRST_ERRORS, first_error

    assert where in FIRST_ERRORS
    assert first_error("Compute 8 + 6 * 8 + 4.", f"<think>\n{reasoning}\n</think>\n\\boxed{{0}}") == where


def test_strategy_check_first_errors_are_shares_of_each_arms_math_answers():
    import polars as pl

    from toyworld.strategy_check import first_errors

    problems = {"m1": "Compute 8 + 6 * 8 + 4.", "m2": "Compute 1 + 2 * 3 - 4."}
    right, carry_lost = "<think>\n6*8=48.\n8+48=56.\n56+4=60.\n</think>", "<think>\n6*8=48.\n8+48=46.\n</think>"
    in_strategy = "<think>\n6*8=48.\n8+48 → 8+8=16, then 40+16=66.\n</think>"
    rows = [("random", "m1", 0, carry_lost), ("random", "m2", 1, right), ("oracle", "m1", 0, in_strategy),
            ("oracle", "m2", 1, right), ("oracle", "c1", 0, "def f(x): pass")]
    frame = pl.DataFrame([{"arm": a, "problem_id": p, "domain": "code" if p == "c1" else "math", "correct": c, "completion": t}
                          for a, p, c, t in rows])
    lines = first_errors(frame, problems).splitlines()
    assert lines[0].startswith("random: wrong 50.0% of 2 math answers; first error: operands 0.0%, hard 50.0%, strategy 0.0%")
    assert lines[1].startswith("oracle: wrong 50.0% of 2 math answers; first error: operands 0.0%, hard 0.0%, strategy 50.0%")


def test_strategy_check_reports_kept_answers_without_fine_tuning(tmp_path, capsys):
    """`--report FILE ...` reads the greedy answers earlier checks kept (`--out`) and prints every
    report, the kind of each problem and the strategy's use found from the world's eval set."""
    from toyworld.build import DATA_DIR, read_jsonl
    from toyworld.problems import evaluate, expr_in_problem
    from toyworld.strategy_check import main

    math = [r for r in read_jsonl(DATA_DIR / "eval.jsonl") if r["domain"] == "math"][:6]
    kept = [{"arm": arm, "seed": 0, "problem_id": r["id"], "domain": "math", "correct": int(arm == "oracle" or i % 2 == 0),
             "completion": f"<think>\nIt is {evaluate(expr_in_problem(r['problem'])) + (0 if arm == 'oracle' or i % 2 == 0 else 1)}.\n</think>"}
            for arm in ("random", "oracle") for i, r in enumerate(math)]
    (tmp_path / "kept.jsonl").write_text("".join(json.dumps(k) + "\n" for k in kept))
    assert main(["--report", str(tmp_path / "kept.jsonl")]) == 0
    out = capsys.readouterr().out
    assert "all: random 0.500, oracle 1.000" in out and "(6 problems × 1 seeds)" in out
    assert "random: wrong 50.0% of 6 math answers; first error:" in out and "answer 50.0%" in out
