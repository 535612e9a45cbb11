"""Every model is scored on the context a trace was sampled from (issue #25).

Generate with a non-default system prompt and prompt template, score with a student whose chat
template differs from the teacher's, and check every stored sentence score against an independent
forward pass (plain `model(input_ids)` + log_softmax, written here apart from the scoring code) on
the recorded context. Then change the scoring template / system prompt and the recipe's template:
stored scores do not move.
"""

from __future__ import annotations

import json
import shutil

import polars as pl
import pytest

from flows.divergence import DivergenceConfig, resolve_model_id, run_divergence
from flows.generate import SamplingParams, TeacherSpec, run_generate
from tasks.divergence.context import ContextError, recorded_context
from tasks.divergence.scoring import PromptContext, ScoringConfig, ScoringError, ScoringItem, TeacherForcedScorer

SYSTEM = "You are a careful solver. Think step by step."
TEMPLATE = "Problem:\n{problem}\nPut the final answer in \\boxed{}."
STUDENT_TEMPLATE = (  # not the teacher's: the student is scored on its own rendering of the same messages
    "{% for m in messages %}### {{ m['role'] | upper }}\n{{ m['content'] }}\n\n{% endfor %}"
    "{% if add_generation_prompt %}### ASSISTANT\n{% endif %}"
)


@pytest.fixture(scope="module")
def student_own_template(tiny_models, tmp_path_factory):
    from transformers import AutoTokenizer

    path = tmp_path_factory.mktemp("student-own-template") / "student"
    shutil.copytree(tiny_models["student"], path)
    tok = AutoTokenizer.from_pretrained(path)
    tok.chat_template = STUDENT_TEMPLATE
    tok.save_pretrained(path)
    return path


def _seed_prompts(wh, problems: list[str]) -> None:
    from warehouse.runs import utcnow

    wh.load("raw.raw_prompts", pl.DataFrame([
        {"prompt_id": f"p{i}", "source": "test", "domain": "math", "problem_text": p, "split": "train",
         "ingested_at": utcnow(), "run_id": "seed"} for i, p in enumerate(problems)
    ]), key=["prompt_id"])


def _plain_forward(model_dir, prompt_ids: list[int], completion_ids: list[int]) -> list[float]:
    """log P(completion token | everything before) from one plain forward pass, float32."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    ids = torch.tensor([prompt_ids + completion_ids])
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)
    n = len(prompt_ids)
    return [logp[n - 1 + i, t].item() for i, t in enumerate(completion_ids)]


def _sentence_means(text: str, starts: list[int], lps: list[float], spans: list[tuple[int, int]]) -> list[float | None]:
    """Mean log-prob per [start, end) span over the tokens whose first non-space character lies in it."""
    sums, counts = [0.0] * len(spans), [0] * len(spans)
    for i, s in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(text)
        first = next((j for j in range(s, max(end, s + 1)) if j < len(text) and not text[j].isspace()), None)
        for k, (a, b) in enumerate(spans):
            if first is not None and a <= first < b:
                sums[k] += lps[i]
                counts[k] += 1
    return [sums[k] / counts[k] if counts[k] else None for k in range(len(spans))]


def _independent_scores(wh, tiny_models, student_dir, student_id) -> dict[tuple[str, str, int], float | None]:
    from transformers import AutoTokenizer

    traces = wh.query("select trace_id, model_id, completion_text, prompt_context_text, prompt_messages_json from raw.raw_traces")
    sent = wh.query("select trace_id, model_id, sentence_index, char_start, char_end from raw.raw_sentence_scores order by sentence_index")
    sampled = wh.query("select trace_id, token_ids, char_starts from raw.raw_token_logprobs where logprob_source = 'sampled'")
    s_tok = AutoTokenizer.from_pretrained(student_dir)
    t_tok = AutoTokenizer.from_pretrained(tiny_models["teacher"])
    out = {}
    for tr in traces.iter_rows(named=True):
        text = tr["completion_text"]
        messages = json.loads(tr["prompt_messages_json"])
        # teacher: its own rendered prompt, verbatim, and the token ids it sampled
        tok_row = sampled.filter(pl.col("trace_id") == tr["trace_id"]).row(0, named=True)
        t_prompt = t_tok(tr["prompt_context_text"], add_special_tokens=False)["input_ids"]
        t_lps = _plain_forward(tiny_models["teacher"], t_prompt, list(tok_row["token_ids"]))
        # student: the same messages under its own chat template, the completion re-tokenized
        s_prompt = s_tok(s_tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False),
                         add_special_tokens=False)["input_ids"]
        enc = s_tok(text, add_special_tokens=False, return_offsets_mapping=True)
        s_lps = _plain_forward(student_dir, s_prompt, enc["input_ids"])
        for model_id, starts, lps in ((tr["model_id"], list(tok_row["char_starts"]), t_lps),
                                      (student_id, [a for a, _ in enc["offset_mapping"]], s_lps)):
            rows = sent.filter((pl.col("trace_id") == tr["trace_id"]) & (pl.col("model_id") == model_id))
            spans = list(zip(rows["char_start"].to_list(), rows["char_end"].to_list()))
            for idx, mean in zip(rows["sentence_index"].to_list(), _sentence_means(text, starts, lps, spans)):
                out[(tr["trace_id"], model_id, idx)] = mean
    return out


def _stored(wh) -> dict[tuple[str, str, int], float | None]:
    df = wh.query("select trace_id, model_id, sentence_index, mean_logprob from raw.raw_sentence_scores")
    return {(r["trace_id"], r["model_id"], r["sentence_index"]): r["mean_logprob"] for r in df.iter_rows(named=True)}


@pytest.mark.slow  # generates, scores and re-scores with three tiny models (~30-60 s on a busy 2-core machine)
def test_scores_use_the_recorded_context_and_match_an_independent_forward_pass(wh, tiny_models, student_own_template, tmp_path):
    _seed_prompts(wh, ["Compute 5*3+7.", "Compute 2+2*3.", "Compute 9-4."])
    teacher = TeacherSpec(model=str(tiny_models["teacher"]), name="teacher", device="cpu", cpu_threads=1, batch_size=8)
    sampling = SamplingParams(n=2, temperatures=[0.8], max_tokens=40, seed=0, prompt_template=TEMPLATE, system_prompt=SYSTEM)
    gen = run_generate(warehouse=str(wh.path), teachers=[teacher], sampling=sampling)
    assert gen["n_out"] == 6
    recorded = wh.query("select * from staging.stg_traces")
    assert recorded["is_chat_prompt"].all()
    for r in recorded.iter_rows(named=True):
        assert SYSTEM in r["prompt_context_text"] and "Problem:\nCompute" in r["prompt_context_text"]
        assert json.loads(r["prompt_messages_json"])[0] == {"role": "system", "content": SYSTEM}

    before_scoring = tmp_path / "before-scoring.duckdb"
    shutil.copy(wh.path, before_scoring)
    student_id = resolve_model_id(str(student_own_template))
    cfg = DivergenceConfig(student=str(student_own_template), scoring=ScoringConfig(device="cpu"))
    stats = run_divergence(cfg, warehouse=str(wh.path))
    assert (stats["n_in"], stats["n_out"], stats["n_rejected"]) == (6, 6, 0)
    kinds = wh.query("select model_id, logprob_source, context_kind from raw.raw_token_logprobs")
    assert set(kinds.filter(pl.col("model_id") == student_id)["context_kind"]) == {"recorded_messages"}
    assert set(kinds.filter(pl.col("logprob_source") == "sampled")["context_kind"]) == {"recorded"}

    stored = _stored(wh)
    independent = _independent_scores(wh, tiny_models, student_own_template, student_id)
    assert stored.keys() == independent.keys() and len(stored) > 12
    diffs = [abs(stored[k] - independent[k]) for k in stored if stored[k] is not None]
    assert max(diffs) <= 1e-4, max(diffs)
    print(f"context check: {len(diffs)} sentence scores, max |stored - independent| = {max(diffs):.2e}")
    # the check can fail: the old context (bare problem, no system prompt) scores the student differently
    scorer = TeacherForcedScorer(student_own_template, ScoringConfig(device="cpu"))
    one = wh.query("select trace_id, completion_text from raw.raw_traces order by trace_id limit 1").row(0, named=True)
    old = scorer.score([ScoringItem(one["trace_id"], "Compute 5*3+7.", one["completion_text"])])
    new = wh.query("select logprobs from raw.raw_token_logprobs where trace_id = ? and model_id = ?", [one["trace_id"], student_id])
    assert old["context_kind"].to_pylist() == ["problem_template"]
    assert max(abs(a - b) for a, b in zip(old["logprobs"][0].as_py(), new["logprobs"][0])) > 1e-3

    # another scoring template / system prompt in the recipe, on the warehouse as it was before scoring: same scores
    other = DivergenceConfig(student=str(student_own_template),
                             scoring=ScoringConfig(device="cpu", system_prompt="Answer in French."))
    from warehouse import Warehouse

    wh2 = Warehouse(before_scoring)
    run_divergence(other, warehouse=str(wh2.path))
    assert _stored(wh2) == stored

    # the recipe's prompt template changes after generation: new traces, old scores untouched
    changed = sampling.model_copy(update={"prompt_template": "Solve: {problem}", "system_prompt": None})
    assert run_generate(warehouse=str(wh.path), teachers=[teacher], sampling=changed)["n_out"] == 6
    run_divergence(cfg, warehouse=str(wh.path))
    after = _stored(wh)
    assert {k: v for k, v in after.items() if k in stored} == stored and len(after) > len(stored)


def test_imported_traces_are_scored_on_the_problem_with_the_scoring_models_template(wh, tiny_models, seed_traces):
    student_id = resolve_model_id(str(tiny_models["student"]))
    seed_traces(wh, [{"trace_id": "imp", "prompt_id": "p0", "problem_text": "Compute 1+1.", "model_id": "hub@x",
                      "completion_text": "<think>\n1+1=2.\n</think>\n\\boxed{2}"}])
    wh.load("raw.raw_token_logprobs", pl.DataFrame({
        "trace_id": ["imp"], "model_id": ["hub@x"], "logprob_source": ["sampled"], "logprobs": [[-0.5] * 6],
        "char_starts": [[8, 9, 10, 11, 12, 13]]}), key=["trace_id", "model_id"])
    run_divergence(DivergenceConfig(student=str(tiny_models["student"]), scoring=ScoringConfig(device="cpu")),
                   warehouse=str(wh.path))
    kind = wh.scalar("select context_kind from raw.raw_token_logprobs where model_id = ?", [student_id])
    assert kind == "problem_template"


@pytest.mark.parametrize(
    "row, model, expected",
    [
        ({"model_id": "t", "is_chat_prompt": False, "prompt_context_text": "Q: 1+1"}, "s",
         PromptContext("recorded", text="Q: 1+1", is_chat=False)),
        ({"model_id": "t", "is_chat_prompt": True, "prompt_context_text": "<s>x", "prompt_messages_json": '[{"role": "user", "content": "x"}]'},
         "t", PromptContext("recorded", text="<s>x", is_chat=True)),
        ({"model_id": "t", "is_chat_prompt": True, "prompt_context_text": None, "prompt_messages_json": '[{"role": "user", "content": "x"}]'},
         "t", PromptContext("recorded_messages", messages=(("user", "x"),))),
        # generated before the context columns: rebuilt from sampling_json + the problem
        ({"model_id": "t", "problem_text": "1+1", "sampling_json": json.dumps(
            {"use_chat_template": True, "prompt_template": "Q: {problem}", "system_prompt": "S"})}, "s",
         PromptContext("recorded_messages", messages=(("system", "S"), ("user", "Q: 1+1")))),
        ({"model_id": "t", "problem_text": "1+1", "sampling_json": json.dumps(
            {"use_chat_template": False, "prompt_template": "Q: {problem}", "system_prompt": None})}, "s",
         PromptContext("recorded", text="Q: 1+1", is_chat=False)),
        ({"model_id": "hub", "problem_text": "1+1", "sampling_json": None}, "s", None),
    ],
)
def test_recorded_context(row, model, expected):
    assert recorded_context(row, model) == expected


def test_a_broken_record_names_the_trace_and_field(tiny_models):
    with pytest.raises(ContextError, match="trace t9: field 'prompt_messages_json'"):
        recorded_context({"trace_id": "t9", "model_id": "t", "is_chat_prompt": True, "prompt_messages_json": "[{}]"}, "s")
    scorer = TeacherForcedScorer(tiny_models["student"], ScoringConfig(device="cpu", use_chat_template=False))
    scorer.tokenizer.chat_template = None
    try:
        with pytest.raises(ScoringError, match="has no chat template"):
            scorer.score([ScoringItem("t1", "", "ok.", PromptContext("recorded_messages", messages=(("user", "x"),)))])
    finally:
        from tests.divergence.conftest import CHAT_TEMPLATE

        scorer.tokenizer.chat_template = CHAT_TEMPLATE
