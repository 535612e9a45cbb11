"""The student's rank of each completion token comes out of the scoring pass, clipped at 100."""

import pytest

from tasks.divergence.scoring import RANK_CLIP, ScoringConfig, ScoringItem, TeacherForcedScorer

ITEMS = [ScoringItem("t1", "Compute 2+3.", "<think>\n2+3=5.\n</think>\n\\boxed{5}"),
         ScoringItem("t2", "Say hi.", "hi there, friend!")]


def _reference_ranks(path, item):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    prompt = tok.apply_chat_template([{"role": "user", "content": item.prompt_text}], add_generation_prompt=True, tokenize=False)
    p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
    c_ids = tok(item.completion_text, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = model(torch.tensor([p_ids + c_ids])).logits[0]
    ranks = []
    for i, t in enumerate(c_ids):
        row = logits[len(p_ids) + i - 1]
        ranks.append(min(int((row > row[t]).sum()) + 1, RANK_CLIP))
    return ranks


@pytest.mark.parametrize("chunk_tokens", [1024, 3])
def test_ranks_match_a_full_logits_recomputation(tiny_lm, chunk_tokens):
    table = TeacherForcedScorer(str(tiny_lm), ScoringConfig(device="cpu", chunk_tokens=chunk_tokens)).score(ITEMS).to_pylist()
    for item, row in zip(ITEMS, table):
        ref = _reference_ranks(str(tiny_lm), item)
        assert row["ranks"] == ref and len(row["ranks"]) == len(row["logprobs"])
        assert all(1 <= r <= RANK_CLIP for r in row["ranks"])
    assert any(r > 1 for row in table for r in row["ranks"])  # an untrained model does not rank every token first
