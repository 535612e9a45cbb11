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


V2 = SplitConfig(version="sent-v2", scope="completion")


@pytest.mark.parametrize(
    "text, expected",
    [  # one row per sent-v2 rule (issue #25)
        ("Steps:\n1. Add them.\n2) Then halve.\n- a bullet. * another one.",
         ["Steps:", "1. Add them.", "2) Then halve.", "- a bullet.", "* another one."]),
        ("a. First case. b. Second case.", ["a. First case.", "b. Second case."]),
        ("Two cases: 1. n even. 2. n odd.", ["Two cases: 1. n even.", "2. n odd."]),
        ("Step 1. Factor it. Case 2. Done.", ["Step 1. Factor it.", "Case 2. Done."]),
        ("We get\n\\begin{align}\nx &= 1. \\\\\ny &= 2.\n\\end{align}\nSo done.",
         ["We get\n\\begin{align}\nx &= 1. \\\\\ny &= 2.\n\\end{align}", "So done."]),
        ("Thus:\n$$a = 1.\n b = 2.$$\nNext. Also \\[p! q. r\\] holds.", ["Thus:", "$$a = 1.\n b = 2.$$", "Next.", "Also \\[p! q. r\\] holds."]),
        ("Use e.g. sums, i.e. totals, etc. and so on. Fig. 2 vs. Fig. 3 shows approx. 5. Dr. Lee agrees.",
         ["Use e.g. sums, i.e. totals, etc. and so on.", "Fig. 2 vs. Fig. 3 shows approx. 5.", "Dr. Lee agrees."]),
        ("Apples, pears, etc. Then we stop.", ["Apples, pears, etc.", "Then we stop."]),
        ("Code:\n```python\nx = 1. \ny = 2\n\nprint(x)\n```\nIt prints 1.", ["Code:", "```python\nx = 1. \ny = 2\n\nprint(x)\n```", "It prints 1."]),
        ("Unclosed:\n```\na. b\n\nc", ["Unclosed:", "```\na. b\n\nc"]),
        ("It costs $5. Then $10.50 more. Total $15.50.", ["It costs $5.", "Then $10.50 more.", "Total $15.50."]),
        ("Pay $1,200 and $3k. So $x = 2$. Also $15 \\cdot 3 = 45$ holds.", ["Pay $1,200 and $3k.", "So $x = 2$.", "Also $15 \\cdot 3 = 45$ holds."]),
        ("Let $a. b$ hold. Next", ["Let $a. b$ hold.", "Next"]),
        ("So $x = 5.$ Then stop.", ["So $x = 5.$", "Then stop."]),
        ("Wait... let me see. Hmm… Okay.", ["Wait... let me see.", "Hmm…", "Okay."]),
        ('He said "stop." Then (why?) we left. Done!', ['He said "stop."', "Then (why?) we left.", "Done!"]),
        ("Use `a. b` here. Escaped \\$5. Next", ["Use `a. b` here.", "Escaped \\$5.", "Next"]),
        ("Squaring gives\n\\[ 2q^2 = p^2, \\]\nso p is even. Done.", ["Squaring gives\n\\[ 2q^2 = p^2, \\]\nso p is even.", "Done."]),
        ("Hence $x \\notin Q$. $\\blacksquare$\nNext.", ["Hence $x \\notin Q$. $\\blacksquare$", "Next."]),
        ("所以答案是5。我们再检查一下！好。", ["所以答案是5。", "我们再检查一下！", "好。"]),
        ("   \n\n  ", []),
    ],
)
def test_split_sentences_v2(text, expected):
    got = split_sentences(text, V2)
    assert [s.text for s in got] == expected
    for s in got:
        assert text[s.char_start : s.char_end] == s.text


def test_v1_stays_the_default_and_its_splitter_string_is_unchanged():
    assert str(SplitConfig()) == "sent-v1:reasoning:1"
    assert str(SplitConfig(version="sent-v2")) == "sent-v2:reasoning:1"
    with pytest.raises(ValueError, match="sent-v3"):
        SplitConfig(version="sent-v3")


def test_v2_reasoning_scope_offsets_point_into_the_completion():
    text = "<think>\n1. Pay $5. Then stop.\n</think>\n\\boxed{5}"
    got = split_sentences(text, SplitConfig(version="sent-v2"))
    assert [s.text for s in got] == ["1. Pay $5.", "Then stop."]
    assert got[0].char_start == text.index("1. Pay")
