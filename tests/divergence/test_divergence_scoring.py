"""Teacher-forced scoring matches an independent plain-transformers recomputation (acceptance)."""

from __future__ import annotations

import math

import polars as pl
import pytest

from tasks.divergence.provenance import sentence_score_rows
from tasks.divergence.scoring import ScoringConfig, ScoringItem, TeacherForcedScorer
from tasks.divergence.sentences import split_sentences

TRACES = [
    ScoringItem("t1", "Compute 5*3+7-4.", "<think>\n5*3=15.\n7+15=22.\nCheck: 22-4=18.\n</think>\n\\boxed{18}"),
    ScoringItem("t2", "Compute 2+2*3.", "<think>\n2+2=4. Then 4*3=12! Is $a.b$ ok?\n\n</think>\n\\boxed{12}"),
    ScoringItem("t3", "Say it.", "Wait, let me re-check. 5*3 is 15.\nDone."),
    ScoringItem("t4", "Compute 1+1.", "<think>\n1+1=2.\n</think>\n\\boxed{2}"),
    # multi-byte characters (2-3 UTF-8 bytes): one char-level token, one or several byte-level tokens
    ScoringItem("t5", "Compute 7 + 5 × 3 − 4.",
                "<think>\n5×3=15.\n7+15 → 7+10=17, 17+5=22.\nSplit 4 → 2+2: 22−2=20, 20−2=18.\n</think>\n\\boxed{18}"),
]
TOY_STUDENT = __import__("pathlib").Path(__file__).resolve().parents[2] / "toyworld" / "models" / "student"


def recompute(path, item: ScoringItem) -> list[tuple[int, float]]:
    """Plain transformers: full logits of one unpadded sequence, log_softmax, per-sentence mean.

    Written apart from tasks.divergence.scoring on purpose; token spans come from offset *ends*.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    prompt = tok.apply_chat_template([{"role": "user", "content": item.prompt_text}], add_generation_prompt=True, tokenize=False)
    p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
    enc = tok(item.completion_text, add_special_tokens=False, return_offsets_mapping=True)
    ids = p_ids + enc["input_ids"]
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].double(), -1)
    tok_lp = [logp[len(p_ids) + i - 1, t].item() for i, t in enumerate(enc["input_ids"])]
    out = []
    for s in split_sentences(item.completion_text):
        vals = []
        for (a, b), lp in zip(enc["offset_mapping"], tok_lp):
            piece = item.completion_text[a:b]
            first = a + (len(piece) - len(piece.lstrip())) if piece.strip() else None
            if first is not None and s.char_start <= first < s.char_end:
                vals.append(lp)
        out.append((len(vals), sum(vals) / len(vals) if vals else math.nan))
    return out


@pytest.mark.parametrize(
    "which, device",
    [("teacher", "cpu"), ("student", "cpu"), ("student_bytes", "cpu"), ("toyworld-student", "cpu"),
     pytest.param("student", "cuda", marks=pytest.mark.gpu)],
)
def test_sentence_scores_match_independent_recomputation(tiny_models, which, device):
    # tiny batches, chunks and encode groups: padding, length sorting, chunked log_softmax, reordering
    if which == "toyworld-student" and not TOY_STUDENT.is_dir():
        pytest.skip("toy-world student not built")
    path = TOY_STUDENT if which == "toyworld-student" else tiny_models[which]
    cfg = ScoringConfig(device=device, dtype="float32", max_batch_size=3, max_batch_tokens=200, chunk_tokens=7, encode_group=3)
    scorer = TeacherForcedScorer(path, cfg)
    table = scorer.score(TRACES)
    assert table["trace_id"].to_pylist() == [t.trace_id for t in TRACES]
    assert len(scorer.batches([scorer.encode(t) for t in TRACES])) >= 2
    traces = pl.DataFrame({"trace_id": [t.trace_id for t in TRACES], "completion_text": [t.completion_text for t in TRACES]})
    rows, rejected = sentence_score_rows(traces, pl.from_arrow(table))
    assert rejected == []
    for item in TRACES:
        got = rows.filter(pl.col("trace_id") == item.trace_id).sort("sentence_index")
        want = recompute(path, item)
        assert got["n_tokens"].to_list() == [n for n, _ in want]
        for g, (_, w) in zip(got["mean_logprob"].to_list(), want):
            assert abs(g - w) < 1e-4, (item.trace_id, g, w)


def test_byte_level_tokens_split_multibyte_characters(tiny_models):
    """The byte-level student really cuts a multi-byte character into several tokens (the case t5 checks)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_models["student_bytes"])
    enc = tok("7+15 → 7+10", add_special_tokens=False, return_offsets_mapping=True)
    arrow = "7+15 → 7+10".index("→")
    on_arrow = [(a, b) for a, b in enc["offset_mapping"] if a <= arrow < b]
    assert len(on_arrow) >= 2  # '→' is 3 UTF-8 bytes, not merged by this corpus


def test_cross_tokenizer_pair_aligns_on_sentences(tiny_models):
    cfg = ScoringConfig(device="cpu")
    item = TRACES[0]
    traces = pl.DataFrame({"trace_id": [item.trace_id], "completion_text": [item.completion_text]})
    t = pl.from_arrow(TeacherForcedScorer(tiny_models["teacher"], cfg, model_id="T").score([item]))
    s = pl.from_arrow(TeacherForcedScorer(tiny_models["student"], cfg, model_id="S").score([item]))
    assert len(t["token_ids"][0]) != len(s["token_ids"][0])  # really different tokenizers
    rows, _ = sentence_score_rows(traces, pl.concat([t, s]))
    spans = rows.group_by("model_id").agg(pl.col("char_start"), pl.col("char_end")).sort("model_id")
    assert spans["char_start"][0].to_list() == spans["char_start"][1].to_list()
    by_model = {m: rows.filter(pl.col("model_id") == m)["mean_logprob"].to_list() for m in ("T", "S")}
    for m, path in (("T", tiny_models["teacher"]), ("S", tiny_models["student"])):
        for g, (_, w) in zip(by_model[m], recompute(path, item)):
            assert abs(g - w) < 1e-4
    # the BPE student has fewer tokens per sentence than the char-level teacher
    n = rows.pivot(on="model_id", index="sentence_index", values="n_tokens")
    assert (n["S"] < n["T"]).all()


def test_truncation_scores_the_prefix_only(tiny_models):
    cfg = ScoringConfig(device="cpu", max_length=30)
    scorer = TeacherForcedScorer(tiny_models["teacher"], cfg)
    full = TeacherForcedScorer(tiny_models["teacher"], ScoringConfig(device="cpu")).score(TRACES[:1])
    cut = scorer.score(TRACES[:1])
    n = len(cut["logprobs"][0])
    assert 0 < n < len(full["logprobs"][0]) and len(scorer.encode(TRACES[0]).prompt_ids) + n == 30
    assert cut["logprobs"][0].as_py() == pytest.approx(full["logprobs"][0].as_py()[:n], abs=1e-5)


def test_prefetch_keeps_order_and_reraises_errors():
    from tasks.divergence.scoring import _prefetch

    assert list(_prefetch(lambda x: x * 2, [1, 2, 3])) == [2, 4, 6]

    def boom(x):
        if x == 2:
            raise ValueError("bad item 2")
        return x

    with pytest.raises(ValueError, match="bad item 2"):
        list(_prefetch(boom, [1, 2, 3]))


def test_recorded_contexts_match_a_plain_forward_pass(tiny_models):
    """Each context kind conditions on exactly the text it names (fast companion of test_divergence_context)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tasks.divergence.scoring import PromptContext

    path = tiny_models["student"]
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    messages = (("system", "Be careful."), ("user", "Problem: compute 5*3+7-4."))
    completion = TRACES[0].completion_text
    cases = {  # context -> (prompt text, special tokens added by the tokenizer)
        PromptContext("recorded_messages", messages=messages): (
            tok.apply_chat_template([{"role": r, "content": c} for r, c in messages], add_generation_prompt=True, tokenize=False), False),
        PromptContext("recorded", text="<s><|user|>verbatim\n<|assistant|>", is_chat=True): ("<s><|user|>verbatim\n<|assistant|>", False),
        PromptContext("recorded", text="Q: raw prompt\nA:", is_chat=False): ("Q: raw prompt\nA:", True),
    }
    scorer = TeacherForcedScorer(path, ScoringConfig(device="cpu", system_prompt="ignored for recorded contexts"))
    items = [ScoringItem(f"c{i}", "ignored problem", completion, ctx) for i, ctx in enumerate(cases)]
    table = scorer.score(items)
    assert table["context_kind"].to_pylist() == ["recorded_messages", "recorded", "recorded"]
    for row, (text, special) in zip(table.to_pylist(), cases.values()):
        p_ids = tok(text, add_special_tokens=special)["input_ids"]
        c_ids = tok(completion, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([p_ids + c_ids])).logits[0].float(), -1)
        plain = [logp[len(p_ids) + i - 1, t].item() for i, t in enumerate(c_ids)]
        assert row["token_ids"] == c_ids
        assert row["logprobs"] == pytest.approx(plain, abs=1e-4)
