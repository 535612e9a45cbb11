"""Published reasoning datasets, a few rows each in the shape their dataset cards list: every row
accounted for, reasoning and answer split, traces per row, source verdicts and log-probs landed.

Fields follow the cards of open-thoughts/OpenThoughts-114k, bespokelabs/Bespoke-Stratos-17k,
open-thoughts/OpenThoughts3-1.2M, open-r1/OpenR1-Math-220k, a-m-team/AM-DeepSeek-R1-Distilled-1.4M,
AI-MO/NuminaMath-CoT, GAIR/LIMO and a DASD-style log-prob release (sample_uuid, token_ids, logprobs).
"""

from __future__ import annotations

import json

import polars as pl
import pytest

from flows.ingest import run_ingest

SYSTEM = ("Your role as an assistant involves thoroughly exploring questions through a systematic long "
          "thinking process before providing the final precise and accurate solutions.")


def _jsonl(path, rows) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _thought(reasoning: str, solution: str, closed: bool = True) -> str:
    text = f"<|begin_of_thought|>\n\n{reasoning}\n\n"
    if not closed:
        return text
    return text + f"<|end_of_thought|>\n\n<|begin_of_solution|>\n\n{solution}\n\n<|end_of_solution|>"


def _traces(wh) -> list[dict]:
    return wh.query(
        "select t.*, p.problem_text, p.reference_answer, p.domain, p.metadata_json from raw.raw_traces t "
        "join raw.raw_prompts p using (prompt_id) order by t.source_ref"
    ).to_dicts()


def _accounted(stats: dict, n_rows: int) -> None:
    assert stats["read"] == n_rows
    assert stats["accepted"] + stats["rejected"] == stats["read"]


# --- OpenThoughts-114k / Bespoke-Stratos-17k: system + conversations, thought/solution markers -------------

STRATOS = [
    {"system": SYSTEM, "conversations": [
        {"from": "user", "value": "Return your final response within \\boxed{}. Compute 2 + 3."},
        {"from": "assistant", "value": _thought("2 plus 3 is 5.\n\nCheck: 5 - 3 = 2.", "The sum is \\boxed{5}.")}]},
    {"system": SYSTEM, "conversations": [
        {"from": "user", "value": "Return your final response within \\boxed{}. Compute 4 * 6."},
        {"from": "assistant", "value": _thought("4 times 6 is 24.", "\\boxed{24}")}]},
    # cut off while thinking: an opening marker without its closing one
    {"system": SYSTEM, "conversations": [
        {"from": "user", "value": "Return your final response within \\boxed{}. Compute 9 * 9."},
        {"from": "assistant", "value": _thought("9 times 9 is", "", closed=False)}]},
    # no assistant turn
    {"system": SYSTEM, "conversations": [{"from": "user", "value": "Compute 1 + 1."}]},
]


def test_openthoughts_bespoke_thought_markers(wh, tmp_path):
    path = tmp_path / "bespoke_stratos.jsonl"
    _jsonl(path, STRATOS)
    stats = run_ingest(path, kind="traces", model="deepseek-r1", warehouse=wh.path)
    _accounted(stats, 4)
    assert (stats["accepted"], stats["reasons"]) == (3, {"missing_field": 1})
    first, second, cut = _traces(wh)
    assert first["reasoning_text"] == "2 plus 3 is 5.\n\nCheck: 5 - 3 = 2."
    assert first["answer_text"] == "The sum is \\boxed{5}."
    assert not first["is_truncated"] and "<|begin_of_solution|>" not in first["completion_text"]
    assert first["completion_text"].startswith("<think>\n2 plus 3") and first["problem_text"].endswith("Compute 2 + 3.")
    assert (second["reasoning_text"], second["answer_text"]) == ("4 times 6 is 24.", "\\boxed{24}")
    assert cut["is_truncated"] and cut["reasoning_text"] == "9 times 9 is" and cut["answer_text"] == ""
    assert json.loads(first["metadata_json"])["system_prompt_hash"]


# --- OpenThoughts3-1.2M: difficulty, source, domain, conversations (human/gpt) with <think> ----------------

OPENTHOUGHTS3 = [
    {"difficulty": 6, "source": "ai2-adapt-dev/openmath-2-math", "domain": "math", "conversations": [
        {"from": "human", "value": "Find x if 2x + 1 = 7."},
        {"from": "gpt", "value": "<think>\nSubtract 1: 2x = 6, so x = 3.\n</think>\n\nx = \\boxed{3}"}]},
    {"difficulty": 7, "source": "nvidia/OpenCodeReasoning", "domain": "code", "conversations": [
        {"from": "human", "value": "Write a function add(a, b) returning the sum."},
        {"from": "gpt", "value": "<think>\nJust return a + b.\n</think>\n\n```python\ndef add(a, b):\n    return a + b\n```"}]},
    {"difficulty": 5, "source": "organic-chemistry-questions", "domain": "science", "conversations": [
        {"from": "human", "value": "Which is more acidic, phenol or ethanol?"},
        {"from": "gpt", "value": "<think>\nThe phenoxide ion is resonance stabilised.\n</think>\n\nPhenol."}]},
    # the model's turn is a number, not text
    {"difficulty": 1, "source": "x", "domain": "math", "conversations": [
        {"from": "human", "value": "Compute 3 + 4."}, {"from": "gpt", "value": 7}]},
]


def test_openthoughts3_domains_and_think(wh, tmp_path):
    path = tmp_path / "openthoughts3.parquet"
    # Parquet needs one type per column: the bad row goes to a JSONL file of the same shape
    pl.DataFrame(OPENTHOUGHTS3[:3]).write_parquet(path)
    stats = run_ingest(path, kind="traces", model="qwq-32b", warehouse=wh.path)
    _accounted(stats, 3)
    assert stats["accepted"] == 3
    math_trace, code_trace, science_trace = sorted(_traces(wh), key=lambda t: t["source_ref"])
    assert (math_trace["domain"], code_trace["domain"], science_trace["domain"]) == ("math", "code", "science")
    assert math_trace["reasoning_text"] == "Subtract 1: 2x = 6, so x = 3." and math_trace["answer_text"] == "x = \\boxed{3}"
    assert code_trace["answer_text"].startswith("```python")
    assert json.loads(math_trace["metadata_json"]) == {"source": "ai2-adapt-dev/openmath-2-math", "difficulty": 6}
    # the <think> text is kept verbatim
    assert math_trace["completion_text"] == OPENTHOUGHTS3[0]["conversations"][1]["value"]
    bad = tmp_path / "openthoughts3_bad.jsonl"
    _jsonl(bad, OPENTHOUGHTS3[3:])
    stats = run_ingest(bad, kind="traces", model="qwq-32b", warehouse=wh.path)
    assert stats["reasons"] == {"invalid_field": 1}
    assert "turn 1 (gpt) content must be text, got a number" in stats["examples"][0]
    assert stats["examples"][0].startswith(f"{bad}:1: invalid_field:")


# --- OpenR1-Math-220k: one row, many generations, correctness lists, finish reasons -----------------------

OPENR1 = [
    {"problem": "Compute 6 * 7.", "solution": "6 * 7 = 42.", "answer": "42", "problem_type": "Algebra",
     "question_type": "math-word-problem", "source": "olympiads", "uuid": "u-1",
     "is_reasoning_complete": [True, True],
     "generations": ["<think>\n6*7 = 42.\n</think>\n\\boxed{42}", "<think>\n6*7 = 48.\n</think>\n\\boxed{48}"],
     "correctness_math_verify": [True, False], "correctness_llama": None, "finish_reasons": None,
     "correctness_count": 1,
     "messages": [{"role": "user", "content": "Compute 6 * 7."},
                  {"role": "assistant", "content": "<think>\n6*7 = 42.\n</think>\n\\boxed{42}"}]},
    {"problem": "Compute 10 / 4.", "solution": "2.5", "answer": "\\frac{5}{2}", "problem_type": "Algebra",
     "question_type": "math-word-problem", "source": "cn_contest", "uuid": "u-2",
     "is_reasoning_complete": [True, False, True, True],
     "generations": ["<think>\n10/4 = 2.5\n</think>\n\\boxed{2.5}", "<think>\n10/4 is", "<think>\nhalf of 5\n</think>\n\\boxed{5/2}",
                     "<think>\n10/4 = 2\n</think>\n\\boxed{2}"],
     "correctness_math_verify": [True, False, True, False], "correctness_llama": [None, False, True, True],
     "finish_reasons": ["stop", "length", "stop", "stop"], "correctness_count": 2,
     "messages": []},
    # 3 generations but 2 correctness flags: the row cannot be aligned
    {"problem": "Compute 1 + 2.", "answer": "3", "generations": ["<think>a</think>3", "<think>b</think>3", "<think>c</think>3"],
     "correctness_math_verify": [True, True]},
    # one empty generation among good ones: that generation alone is rejected
    {"problem": "Compute 2 + 2.", "answer": "4", "generations": ["<think>2+2=4</think>\\boxed{4}", "   "],
     "correctness_math_verify": [True, False]},
]


def test_openr1_math_generations_verdicts_and_finish_reasons(wh, tmp_path):
    path = tmp_path / "openr1.jsonl"
    _jsonl(path, OPENR1)
    stats = run_ingest(path, kind="traces", model="deepseek-r1", warehouse=wh.path)
    _accounted(stats, 4)
    assert (stats["accepted"], stats["rejected"], stats["items_rejected"]) == (3, 1, 1)
    assert stats["reasons"] == {"invalid_field": 1, "empty_completion": 1}
    assert stats["new_traces"] == 2 + 4 + 1
    traces = wh.query("select * from raw.raw_traces order by prompt_id, sample_index").to_dicts()
    by_problem: dict[str, list[dict]] = {}
    for t in traces:
        by_problem.setdefault(t["source_ref"].split("#")[0], []).append(t)
    assert [len(v) for v in by_problem.values()] == [2, 4, 1]
    row2 = sorted(by_problem[f"{path}:2"], key=lambda t: t["sample_index"])
    assert [t["sample_index"] for t in row2] == [0, 1, 2, 3]
    assert [t["finish_reason"] for t in row2] == ["stop", "length", "stop", "stop"]
    assert [t["is_truncated"] for t in row2] == [False, True, False, False]
    assert row2[2]["reasoning_text"] == "half of 5" and row2[2]["answer_text"] == "\\boxed{5/2}"
    assert row2[1]["source_ref"] == f"{path}:2#generation[1]"

    verdicts = wh.query(
        "select t.source_ref, v.verifier, v.verdict_status from raw.raw_verifications v "
        "join raw.raw_traces t using (trace_id) order by t.source_ref, v.verifier"
    ).rows()
    assert verdicts == [
        (f"{path}:1#generation[0]", "source:correctness_math_verify", "correct"),
        (f"{path}:1#generation[1]", "source:correctness_math_verify", "incorrect"),
        (f"{path}:2#generation[0]", "source:correctness_math_verify", "correct"),  # llama: null, no verdict
        (f"{path}:2#generation[1]", "source:correctness_llama", "incorrect"),
        (f"{path}:2#generation[1]", "source:correctness_math_verify", "incorrect"),
        (f"{path}:2#generation[2]", "source:correctness_llama", "correct"),
        (f"{path}:2#generation[2]", "source:correctness_math_verify", "correct"),
        (f"{path}:2#generation[3]", "source:correctness_llama", "correct"),
        (f"{path}:2#generation[3]", "source:correctness_math_verify", "incorrect"),
        (f"{path}:4#generation[0]", "source:correctness_math_verify", "correct"),
    ]
    # correctness_count is a number, not a verdict; the row's own prompt fields are kept
    assert wh.scalar("select count(*) from raw.raw_verifications where verifier like '%count%'") == 0
    prompt = wh.query("select * from raw.raw_prompts where reference_answer = '42'").row(0, named=True)
    assert json.loads(prompt["metadata_json"])["external_id"] == "u-1"
    rejected = wh.query("select source_ref, reason_code, detail from raw.raw_rejections order by source_ref").rows()
    assert rejected == [
        (f"{path}:3", "invalid_field", "field 'correctness_math_verify' (column 'correctness_math_verify') has 2 entries for 3 generations"),
        (f"{path}:4#generation[1]", "empty_completion", "field 'generations[1]': the model's completion is empty"),
    ]
    # the source verdicts sit next to potstill's own in the staging view
    assert wh.scalar("select count(*) from staging.stg_verifications where verifier like 'source:%'") == 10
    again = run_ingest(path, kind="traces", model="deepseek-r1", warehouse=wh.path)
    assert (again["new_traces"], again["new_verdicts"]) == (0, 0)


# --- AM-DeepSeek-R1-Distilled-1.4M: messages with info, <think> + <answer> ---------------------------------

AM = [
    {"messages": [
        {"role": "user", "content": "What is 15% of 80?",
         "info": {"source": "natural_reasoning", "reference_answer": "12", "test_case": None, "think_content": None, "answer_content": None}},
        {"role": "assistant", "content": "<think>\n0.15 * 80 = 12.\n</think>\n<answer>\n15% of 80 is **12**.\n</answer>",
         "info": {"source": "natural_reasoning", "reference_answer": "12", "test_case": None,
                  "think_content": "0.15 * 80 = 12.", "answer_content": "15% of 80 is **12**."}}]},
    {"messages": [
        {"role": "user", "content": "Say hello.", "info": {"source": "InfinityInstruct", "reference_answer": None,
                                                          "test_case": None, "think_content": None, "answer_content": None}},
        {"role": "assistant", "content": "<think>\nA greeting.\n</think>\n<answer>\nHello!\n</answer>",
         "info": {"source": "InfinityInstruct", "reference_answer": None, "test_case": None,
                  "think_content": "A greeting.", "answer_content": "Hello!"}}]},
]


def test_am_deepseek_r1_distilled(wh, tmp_path):
    path = tmp_path / "am.jsonl"
    _jsonl(path, AM)
    stats = run_ingest(path, kind="traces", model="deepseek-r1", warehouse=wh.path)
    _accounted(stats, 2)
    assert stats["accepted"] == 2
    pct, hello = sorted(_traces(wh), key=lambda t: t["source_ref"])
    assert (pct["reasoning_text"], pct["answer_text"]) == ("0.15 * 80 = 12.", "15% of 80 is **12**.")
    assert pct["reference_answer"] == "12" and json.loads(pct["metadata_json"])["source"] == "natural_reasoning"
    assert (hello["reasoning_text"], hello["answer_text"], hello["reference_answer"]) == ("A greeting.", "Hello!", None)
    assert not pct["is_truncated"] and "<answer>" not in pct["completion_text"]


# --- NuminaMath-CoT: source, problem, solution, messages (no reasoning block) ------------------------------

NUMINA = [
    {"source": "synthetic_math", "problem": "Compute 8 + 9.", "solution": "8 + 9 = 17, so the answer is $\\boxed{17}$.",
     "messages": [{"role": "user", "content": "Compute 8 + 9."},
                  {"role": "assistant", "content": "8 + 9 = 17, so the answer is $\\boxed{17}$."}]},
    {"source": "orca_math", "problem": "", "solution": "0", "messages": [{"role": "user", "content": ""},
                                                                          {"role": "assistant", "content": "0"}]},
]


def test_numinamath_cot_as_prompts_and_as_traces(wh, tmp_path):
    path = tmp_path / "numina.jsonl"
    _jsonl(path, NUMINA)
    prompts = run_ingest(path, warehouse=wh.path, mapping={"reference_answer": "solution"})
    _accounted(prompts, 2)
    assert prompts["reasons"] == {"empty_problem": 1}
    traces = run_ingest(path, kind="traces", model="gpt-4o", warehouse=wh.path)
    _accounted(traces, 2)
    (trace,) = _traces(wh)
    assert trace["reasoning_text"] is None and trace["answer_text"].endswith("$\\boxed{17}$.")


# --- LIMO: question, solution, answer ---------------------------------------------------------------------

LIMO = [
    {"question": "Find the remainder when 2^10 is divided by 7.", "solution": "2^3 = 8 = 1 mod 7, so 2^10 = 2 mod 7.\n\n**Final Answer**\n\\boxed{2}", "answer": "2"},
    {"question": "Compute 5!.", "solution": ["not", "text"], "answer": "120"},
]


def test_limo_with_map(wh, tmp_path):
    path = tmp_path / "limo.jsonl"
    _jsonl(path, LIMO)
    stats = run_ingest(path, kind="traces", model="limo-teacher", warehouse=wh.path, mapping={"completion": "solution"})
    _accounted(stats, 2)
    assert stats["reasons"] == {"invalid_field": 1}
    assert "field 'completion' (column 'solution') must be text, got a list" in stats["examples"][0]
    (trace,) = _traces(wh)
    assert trace["reference_answer"] == "2" and trace["answer_text"].endswith("\\boxed{2}")


# --- reasoning_content (OpenAI-compatible reasoning APIs) and custom markers --------------------------------

def test_reasoning_content_field_and_custom_markers(wh, tmp_path):
    path = tmp_path / "api.jsonl"
    _jsonl(path, [
        {"messages": [{"role": "user", "content": "Compute 3 * 3."},
                      {"role": "assistant", "content": "\\boxed{9}", "reasoning_content": "3*3 = 9."}]},
        {"problem": "Compute 5 - 2.", "completion": "<reasoning>5-2 = 3</reasoning>\n\\boxed{3}"},
        {"problem": "Compute 8 - 2.", "completion": "<reasoning>8-2 is"},
    ])
    stats = run_ingest(path, kind="traces", model="api-model", warehouse=wh.path, markers="<reasoning>,</reasoning>")
    assert stats["accepted"] == 3
    api, custom, cut = sorted(_traces(wh), key=lambda t: t["source_ref"])
    assert (api["reasoning_text"], api["answer_text"]) == ("3*3 = 9.", "\\boxed{9}")
    assert api["completion_text"] == "<think>\n3*3 = 9.\n</think>\n\n\\boxed{9}"
    assert (custom["reasoning_text"], custom["answer_text"], custom["is_truncated"]) == ("5-2 = 3", "\\boxed{3}", False)
    assert cut["is_truncated"] and cut["answer_text"] == ""


# --- token log-probs: in the trace row, and a DASD-style release joined by sample_uuid ----------------------

def test_logprobs_in_the_trace_row(wh, tmp_path):
    completion = "<think>\n1+1=2\n</think>\n\n2"
    tokens = ["<think>", "\n", "1", "+", "1", "=", "2", "\n", "</think>", "\n\n", "2"]
    path = tmp_path / "with_logprobs.jsonl"
    _jsonl(path, [
        {"problem": "Compute 1 + 1.", "completion": completion, "sample_uuid": "s-1",
         "token_ids": list(range(11)), "tokens": tokens, "logprobs": [-0.1] * 11},
        {"problem": "Compute 1 + 2.", "completion": "<think>3</think>3", "sample_uuid": "s-2",
         "token_ids": [1, 2], "logprobs": [-0.1, 0.5]},  # a positive log-prob: the log-probs are refused, the trace kept
    ])
    stats = run_ingest(path, kind="traces", model="teacher", warehouse=wh.path, logprob_model="teacher")
    assert (stats["accepted"], stats["new_traces"], stats["new_logprobs"], stats["items_rejected"]) == (2, 2, 1, 1)
    row = wh.query("select * from raw.raw_token_logprobs").row(0, named=True)
    assert row["model_id"] == "teacher" and row["logprob_source"] == "sampled" and row["n_tokens"] == 11
    assert row["char_starts"][:3] == [0, 7, 8] and row["token_ids"] == list(range(11))
    assert wh.query("select source_sample_id from raw.raw_traces order by 1")["source_sample_id"].to_list() == ["s-1", "s-2"]
    assert stats["reasons"] == {"invalid_field": 1}
    assert stats["examples"][0].startswith(f"{path}:2#logprobs: invalid_field: field 'logprobs': entry 1 is 0.5")


def test_dasd_logprob_release_joined_by_sample_uuid(wh, tmp_path):
    thought = _thought("2+2=4", "\\boxed{4}")
    traces = tmp_path / "dasd_traces.jsonl"
    _jsonl(traces, [
        {"sample_uuid": "a1", "problem": "Compute 2 + 2.", "answer": "4", "response": thought},
        {"sample_uuid": "a2", "problem": "Compute 3 + 3.", "answer": "6", "response": "<think>\n3+3=6\n</think>\n\n6"},
    ])
    run_ingest(traces, kind="traces", model="teacher-big", warehouse=wh.path)
    pieces = ["<|begin_of_thought|>", "\n\n", "2+2=4", "\n\n", "<|end_of_thought|>", "\n\n",
              "<|begin_of_solution|>", "\n\n", "\\boxed{4}", "\n\n", "<|end_of_solution|>"]
    assert "".join(pieces) == thought
    release = tmp_path / "dasd_logprobs.jsonl"
    _jsonl(release, [
        # the text the tokens spell is the release's, with thought markers: offsets follow the rewrite
        {"sample_uuid": "a1", "token_ids": list(range(11)), "tokens": pieces, "logprobs": [-0.5] * 11, "response": thought},
        {"sample_uuid": "a2", "token_ids": [5, 6], "logprobs": [-0.1, -0.2]},  # ids only, no tokenizer: kept unplaced
        {"sample_uuid": "zz", "token_ids": [1], "logprobs": [-0.1]},
        {"sample_uuid": "a1", "token_ids": [1, 2], "logprobs": [-0.1]},
    ])
    stats = run_ingest(release, kind="logprobs", model="teacher-big", warehouse=wh.path)
    _accounted(stats, 4)
    assert (stats["new_logprobs"], stats["logprobs_unplaced"]) == (2, 1)
    assert stats["reasons"] == {"trace_missing": 1, "logprob_length_mismatch": 1}
    query = ("select l.*, t.completion_text, t.source_sample_id from raw.raw_token_logprobs l "
             "join raw.raw_traces t using (trace_id) order by t.source_sample_id")
    row, unplaced = wh.query(query).iter_rows(named=True)
    assert (unplaced["source_sample_id"], unplaced["token_ids"], unplaced["char_starts"]) == ("a2", [5, 6], None)
    text = row["completion_text"]
    assert row["model_id"] == "teacher-big" and row["logprob_source"] == "sampled"
    assert text == "<think>\n2+2=4\n</think>\n\n\\boxed{4}"
    starts = row["char_starts"]
    assert text[starts[2]:starts[2] + 5] == "2+2=4" and text[starts[8]:starts[8] + 9] == "\\boxed{4}"
    assert starts == sorted(starts)


def test_dasd_logprobs_with_a_tokenizer(wh, tmp_path):
    """Token ids only: a local tokenizer places them in the text (the toy world's char-level one)."""
    from transformers import AutoTokenizer

    from tests.conftest import TOYWORLD

    tok_dir = TOYWORLD / "models" / "teacher-a"
    tokenizer = AutoTokenizer.from_pretrained(str(tok_dir))
    completion = "<think>\n1+1=2\n</think>\n\n2"
    ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
    if tokenizer.decode(ids) != completion:
        pytest.skip("the toy tokenizer does not round-trip this text")
    traces = tmp_path / "t.jsonl"
    _jsonl(traces, [{"sample_uuid": "b1", "problem": "Compute 1 + 1.", "completion": completion}])
    run_ingest(traces, kind="traces", model="teacher-a", warehouse=wh.path)
    release = tmp_path / "lp.jsonl"
    _jsonl(release, [{"sample_uuid": "b1", "token_ids": ids, "logprobs": [-0.25] * len(ids)}])
    stats = run_ingest(release, kind="logprobs", model="student", warehouse=wh.path, tokenizer=str(tok_dir))
    assert stats["new_logprobs"] == 1, stats["examples"]
    row = wh.query("select * from raw.raw_token_logprobs").row(0, named=True)
    assert row["logprob_source"] == "teacher_forced" and row["model_id"] == "student"
    assert len(row["char_starts"]) == len(ids) and row["char_starts"][0] == 0


def test_release_text_with_a_prefilled_think_and_per_generation_logprobs(wh, tmp_path):
    traces = tmp_path / "t.jsonl"
    _jsonl(traces, [
        {"sample_uuid": "c1", "problem": "Compute 5 + 1.", "completion": "<think>\n5+1=6\n</think>\n\n6"},
        {"problem": "Compute 5 + 2.", "generations": ["<think>5+2=7</think>7", "<think>5+2=8</think>8"],
         "tokens": [["<think>", "5+2=7", "</think>", "7"], ["<think>", "5+2=8", "</think>", "8"]],
         "logprobs": [[-0.1, -0.2, -0.3, -0.4], [-1.0, -2.0, -3.0, -4.0]]},
    ])
    stats = run_ingest(traces, kind="traces", model="t", warehouse=wh.path)
    assert (stats["new_traces"], stats["new_logprobs"]) == (3, 2)
    gens = wh.query("select t.sample_index, l.logprobs, l.char_starts from raw.raw_token_logprobs l "
                    "join raw.raw_traces t using (trace_id) order by t.sample_index").rows()
    assert [(i, lp[0], cs) for i, lp, cs in gens] == [(0, pytest.approx(-0.1), [0, 7, 12, 20]), (1, pytest.approx(-1.0), [0, 7, 12, 20])]
    # the release spells the completion without the template's opening <think>
    release = tmp_path / "lp.jsonl"
    _jsonl(release, [{"sample_uuid": "c1", "tokens": ["5+1=6", "</think>", "\n\n", "6"], "logprobs": [-0.5] * 4,
                      "completion": "5+1=6</think>\n\n6"}])
    stats = run_ingest(release, kind="logprobs", model="t2", warehouse=wh.path)
    assert stats["new_logprobs"] == 1, stats["examples"]
    text, starts = wh.query("select t.completion_text, l.char_starts from raw.raw_token_logprobs l join raw.raw_traces t "
                            "using (trace_id) where l.model_id = 't2'").row(0)
    assert text[starts[0]:starts[0] + 5] == "5+1=6" and text[starts[3]:] == "6"


def test_openthoughts_metadata_config_with_stdin_tests_and_limo_without_map(wh, tmp_path):
    """OpenThoughts-114k's `metadata` config (problem, deepseek_reasoning, deepseek_solution,
    ground_truth_solution, domain, test_cases as stdin/stdout JSON) and LIMO read with no --map."""
    path = tmp_path / "ot_metadata.jsonl"
    _jsonl(path, [
        {"problem": "Read n and print n + 1.", "deepseek_reasoning": "Read, add one, print.",
         "deepseek_solution": "```python\nprint(int(input()) + 1)\n```", "ground_truth_solution": None, "domain": "code",
         "source": "apps", "test_cases": json.dumps({"inputs": ["1\n"], "outputs": ["2\n"]}), "starter_code": ""},
    ])
    stats = run_ingest(path, kind="traces", model="deepseek-r1", warehouse=wh.path,
                       mapping={"reasoning": "deepseek_reasoning", "answer": "deepseek_solution", "reference_answer": "ground_truth_solution"})
    assert stats["accepted"] == 1, stats["examples"]
    (trace,) = _traces(wh)
    assert trace["reasoning_text"] == "Read, add one, print." and trace["answer_text"].startswith("```python")
    assert trace["domain"] == "code" and "tests_unsupported" in json.loads(trace["metadata_json"])
    limo = tmp_path / "limo.jsonl"
    _jsonl(limo, LIMO[:1])
    assert run_ingest(limo, kind="traces", model="limo-teacher", warehouse=wh.path)["new_traces"] == 1


def test_dasd_sft_release_and_its_logprob_file(wh, tmp_path):
    """Superior-Reasoning-SFT-gpt-oss-120b rows (uuid, input, output, domain, meta), then log-probs by uuid."""
    sft = tmp_path / "sft.jsonl"
    _jsonl(sft, [
        {"uuid": "9f1c", "input": "Compute 12 / 4.", "output": "<think>\n12/4 = 3\n</think>\n\n\\boxed{3}", "domain": "math", "meta": "{}"},
        {"uuid": "9f1d", "input": "Follow the format: say hi.", "output": "<think>\nEasy.\n</think>\n\nhi", "domain": "instruction following",
         "meta": "{}"},
    ])
    stats = run_ingest(sft, kind="traces", model="gpt-oss-120b", warehouse=wh.path)
    assert stats["accepted"] == 2, stats["examples"]
    assert sorted(wh.query("select domain from raw.raw_prompts")["domain"]) == ["instruction_following", "math"]
    release = tmp_path / "logprob.jsonl"
    _jsonl(release, [{"sample_uuid": "9f1c", "token_ids": [1, 2, 3], "logprobs": [-0.1, -0.2, -0.3],
                      "output": "<think>\n12/4 = 3\n</think>\n\n\\boxed{3}"}])
    stats = run_ingest(release, kind="logprobs", model="gpt-oss-120b", warehouse=wh.path)
    assert (stats["new_logprobs"], stats["logprobs_unplaced"]) == (1, 1)
    row = wh.query("select l.*, t.source_sample_id from raw.raw_token_logprobs l join raw.raw_traces t using (trace_id)").row(0, named=True)
    assert (row["source_sample_id"], row["model_id"], row["logprob_source"], row["n_tokens"]) == ("9f1c", "gpt-oss-120b", "sampled", 3)


def test_identical_generations_of_one_row_are_two_samples(wh, tmp_path):
    path = tmp_path / "same.jsonl"
    row = {"problem": "Compute 0 + 0.", "answer": "0", "generations": ["<think>0</think>0", "<think>0</think>0"],
           "correctness_math_verify": [True, True]}
    _jsonl(path, [row, row])
    stats = run_ingest(path, kind="traces", model="m", warehouse=wh.path)
    assert (stats["accepted"], stats["reasons"], stats["new_traces"], stats["new_verdicts"]) == (1, {"duplicate": 1}, 2, 2)
    assert wh.query("select sample_index from raw.raw_traces order by 1")["sample_index"].to_list() == [0, 1]
    assert run_ingest(path, kind="traces", model="m", warehouse=wh.path)["new_traces"] == 0
