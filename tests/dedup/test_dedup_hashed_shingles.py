"""Hashed shingles (the fast signing path): same sets as the string shingles, stable across processes."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from tasks.dedup.minhash import MinhashConfig, jaccard, shingle_hash_rows, shingle_hash_set, shingles, sign_texts
from tests.conftest import REPO

WORD = MinhashConfig(shingle_size=3)
CHAR = MinhashConfig(shingle_size=4, shingle_unit="char")


@pytest.mark.parametrize("cfg", [WORD, CHAR], ids=["word", "char"])
@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("the cat sat on the mat", "the cat sat on the mat"),
        ("the cat sat on the mat", "the cat sat on a mat"),
        ("Compute 7 + 5 * 3 - 4.", "compute 7+5*3-4 ."),
        ("a b c d e f g h", "h g f e d c b a"),
        ("a b", "a b c"),  # shorter than a shingle vs one shingle
        ("x", ""),
        ("", ""),
        ("ｃｏｍｐｕｔｅ 1 2 3", "compute 1 2 3"),
        ("a a a a a a", "a a a"),  # repeated shingles count once
    ],
)
def test_hashed_jaccard_equals_string_jaccard(cfg, a, b):
    assert len(shingle_hash_set(a, cfg)) == len(shingles(a, cfg))
    assert jaccard(shingle_hash_set(a, cfg), shingle_hash_set(b, cfg)) == pytest.approx(jaccard(shingles(a, cfg), shingles(b, cfg)))


def test_rows_and_offsets_match_each_text():
    texts = ["a b c d", "", "a b", None, "b c d"]
    flat, offsets = shingle_hash_rows(texts, WORD)
    assert offsets.tolist() == [0, 2, 2, 3, 3, 4]
    rows = [set(flat[offsets[i] : offsets[i + 1]].tolist()) for i in range(len(texts))]
    assert rows == [shingle_hash_set(t, WORD) for t in texts]
    assert rows[0] & rows[4] and not rows[0] & rows[2], "'b c d' is shared, 'a b' (2 tokens) is its own shingle"


def test_signatures_flag_empty_texts_and_agree_with_single_text_calls():
    texts = ["one two three four five six", "  ", "one two three four five seven"]
    sigs, empty = sign_texts(texts, MinhashConfig())
    assert sigs.shape == (3, 128) and sigs.dtype == np.uint32
    assert empty.tolist() == [False, True, False]
    alone, _ = sign_texts(texts[2:], MinhashConfig())
    assert (alone[0] == sigs[2]).all(), "a text's signature does not depend on its shard"


def test_hashes_are_the_same_in_another_process():
    code = ("from tasks.dedup.minhash import shingle_hash_rows, MinhashConfig; "
            "print(shingle_hash_rows(['Compute 7 + 5 * 3.'], MinhashConfig())[0].tolist())")
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONHASHSEED": "12345"}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == str(shingle_hash_rows(["Compute 7 + 5 * 3."], MinhashConfig())[0].tolist())
