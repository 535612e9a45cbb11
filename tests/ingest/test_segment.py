"""Reasoning segmentation: each convention, truncation, and the stored completion reading back the same."""

from __future__ import annotations

import pytest

from tasks.common.text import split_think
from tasks.ingest.segment import parse_markers, remap_offsets, segment

BT, ET, BS, ES = "<|begin_of_thought|>", "<|end_of_thought|>", "<|begin_of_solution|>", "<|end_of_solution|>"
CASES = [
    # (completion, reasoning, answer, is_truncated)
    ("<think>\nR\n</think>\n\nA", "R", "A", False),  # R1 / QwQ / Qwen3
    ("R\n</think>\n\nA", "R", "A", False),  # the template pre-filled <think>
    ("<think>\nR", "R", "", True),  # cut off while thinking
    ("A only", None, "A only", False),
    ("", None, "", False),
    ("<think>\n\n</think>\n\nA", "", "A", False),  # Qwen3 with thinking off
    (f"{BT}\n\nR\n\n{ET}\n\n{BS}\n\nA\n\n{ES}", "R", "A", False),  # OpenThoughts / Bespoke-Stratos
    (f"{BT}\n\nR is long", "R is long", "", True),
    (f"{BT}R{ET}{BS}A is cut", "R", "A is cut", True),  # solution opened, never closed
    (f"{BT}R{ET}\n\nA", "R", "A", False),
    (f"R{ET}{BS}A{ES}", "R", "A", False),
    (f"{BT}R{ET}{BS}A{ES}\n\nP.S.", "R", f"{BS}A{ES}\n\nP.S.", False),  # text after the solution: kept whole
    ("<think>\nR\n</think>\n<answer>\nA\n</answer>", "R", "A", False),  # AM-DeepSeek-R1-Distilled
    ("<think>R</think><answer>A", "R", "A", True),
]


@pytest.mark.parametrize(("completion", "reasoning", "answer", "truncated"), CASES)
def test_conventions(completion, reasoning, answer, truncated):
    seg = segment(completion)
    assert (seg.reasoning, seg.answer, seg.is_truncated) == (reasoning, answer, truncated)
    # every later stage reads the stored completion with split_think: it must read the same split
    again = split_think(seg.completion)
    assert (again.reasoning, again.answer) == (reasoning, answer)
    assert again.is_closed == (not truncated or bool(answer))


def test_separate_reasoning_field_and_custom_markers():
    seg = segment("\\boxed{9}", reasoning="3*3 = 9.")
    assert (seg.reasoning, seg.answer, seg.completion) == ("3*3 = 9.", "\\boxed{9}", "<think>\n3*3 = 9.\n</think>\n\n\\boxed{9}")
    markers = parse_markers("<reasoning>,</reasoning>")
    assert segment("<reasoning>r</reasoning> a", markers=markers)[:3] == ("r", "a", False)
    assert segment("<reasoning>r", markers=markers)[:3] == ("r", "", True)
    assert segment("<think>t</think>a", markers=markers)[:2] == ("t", "a")  # the built-in conventions still apply
    with pytest.raises(ValueError, match="OPEN,CLOSE"):
        parse_markers("<only-one>")


def test_offsets_follow_a_rewritten_completion():
    text = f"{BT}ab{ET}{BS}cd{ES}"
    seg = segment(text)
    starts = [0, text.index("ab"), text.index("ab") + 1, text.index(ET), text.index("cd"), text.index(ES)]
    moved = remap_offsets(starts, seg.spans, len(seg.completion))
    stored = seg.completion
    assert stored[moved[1]:moved[1] + 2] == "ab" and stored[moved[4]:moved[4] + 2] == "cd"
    assert moved == sorted(moved) and moved[-1] == len(stored)
