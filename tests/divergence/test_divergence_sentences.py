"""The sentence splitter (docs/methods.md#sentences default) and token→sentence mapping by character offsets."""

from __future__ import annotations

import pytest

from tasks.divergence.sentences import SplitConfig, score_sentences, split_sentences, token_anchors

ALL = SplitConfig(scope="completion")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("One. Two! Three? Four", ["One.", "Two!", "Three?", "Four"]),
        ("a\nb\n\nc", ["a", "b", "c"]),
        ("x=1.5 is fine. y", ["x=1.5 is fine.", "y"]),  # a dot not followed by whitespace does not split
        ("Let $a. b$ hold. Next", ["Let $a. b$ hold.", "Next"]),  # never inside $...$
        ("By \\(x. y\\) and \\[p!\nq\\] done. End", ["By \\(x. y\\) and \\[p!\nq\\] done.", "End"]),
        ("$$1. 2$$ ok. z", ["$$1. 2$$ ok.", "z"]),
        ("   \n\n  ", []),
        ("end.", ["end."]),
    ],
)
def test_split_sentences(text, expected):
    got = split_sentences(text, ALL)
    assert [s.text for s in got] == expected
    for s in got:
        assert text[s.char_start : s.char_end] == s.text
        assert [x.index for x in got] == list(range(len(got)))


def test_reasoning_scope_offsets_point_into_the_completion():
    text = "<think>\n5*3=15.\n7+15=22.\n</think>\n\\boxed{22}"
    got = split_sentences(text)
    assert [s.text for s in got] == ["5*3=15.", "7+15=22."]
    assert got[0].char_start == text.index("5*3")
    assert [s.text for s in split_sentences("no block here. ok")] == ["no block here.", "ok"]
    assert [s.text for s in split_sentences("<think>\nunclosed. still")] == ["unclosed.", "still"]


def test_token_anchor_is_first_non_space_char():
    #        0123456789
    text = "ab. cd\n e"
    starts = [0, 2, 3, 6, 7, 8]  # "ab" ".", " cd" "\n" " " "e"
    assert token_anchors(text, starts) == [0, 2, 4, -1, -1, 8]


def test_straddling_token_belongs_to_the_sentence_of_its_first_char():
    text = "ab.\ncd."
    sents = split_sentences(text, ALL)  # "ab." [0,3) and "cd." [4,7)
    # tokens "ab", ".\nc" (starts in sentence 0), "d."
    scores = score_sentences(text, sents, [0, 2, 5], [-1.0, -2.0, -4.0])
    assert [(s.n_tokens, s.mean_logprob) for s in scores] == [(2, -1.5), (1, -4.0)]


def test_sentence_without_tokens_has_no_mean():
    text = "ab. cd."
    sents = split_sentences(text, ALL)
    scores = score_sentences(text, sents, [0], [-1.0])  # one token covering everything
    assert scores[1].n_tokens == 0 and scores[1].mean_logprob is None
