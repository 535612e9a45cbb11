"""The toy world's paraphrased benchmark leaks (toyworld/data/paraphrased_leaks.jsonl): semantic
decontamination catches every one, n-gram decontamination none; semantic dedup of the train pool
adds no false merges to the planted duplicates."""

from __future__ import annotations

import itertools
import json
from collections import defaultdict

import polars as pl
import pytest

from tasks.dedup.decontam import Benchmark, find_contamination
from tasks.dedup.semantic import (
    Embedder,
    SemanticConfig,
    formula_signature,
    formulas_agree,
    semantic_clusters,
    semantic_contamination,
)
from tests.conftest import TOYWORLD

pytest.importorskip("sentence_transformers", reason="semantic extra not installed: pip install -e '.[semantic]'")
pytest.importorskip("faiss", reason="semantic extra not installed: pip install -e '.[semantic]'")
pytestmark = pytest.mark.slow  # embeds ~2,400 prompts (about 30 s on 2 CPU cores)

DATA = TOYWORLD / "data"
CFG = SemanticConfig(enabled=True, device="cpu")


def _read(name: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / name).read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def toy():
    train, leaks, bench = _read("train.jsonl"), _read("paraphrased_leaks.jsonl"), _read("benchmark.jsonl")
    embedder = Embedder(CFG)
    prompts = train + leaks
    return {"train": train, "leaks": leaks, "bench": bench, "manifest": json.loads((DATA / "manifest.json").read_text()),
            "prompt_emb": embedder.encode([r["problem"] for r in prompts]), "bench_emb": embedder.encode([r["problem"] for r in bench])}


def test_leaks_file_is_what_the_generator_writes(toy):
    from toyworld.leaks import paraphrased_leaks

    assert toy["leaks"] == paraphrased_leaks(toy["bench"], {leak["benchmark_id"] for leak in toy["manifest"]["leaks"]})
    assert len(toy["leaks"]) == 8


def test_every_paraphrased_leak_is_caught_only_by_embeddings(toy):
    prompts = toy["train"] + toy["leaks"]
    bench = Benchmark.from_items("toybench", [(r["id"], r["problem"]) for r in toy["bench"]])
    hits = semantic_contamination([r["id"] for r in prompts], [r["problem"] for r in prompts], toy["prompt_emb"], bench,
                                  toy["bench_emb"], CFG)
    found = dict(zip(hits["prompt_id"].to_list(), hits["benchmark_item_id"].to_list()))
    for leak in toy["leaks"]:
        assert found.get(leak["id"]) == leak["leak_of"], leak
    ngram = find_contamination(pl.DataFrame({"prompt_id": [r["id"] for r in toy["leaks"]], "text": [r["problem"] for r in toy["leaks"]]}),
                               [bench])
    assert ngram.height == 0, ngram  # n-grams and formula identity miss every paraphrase
    planted = {leak["train_id"] for leak in toy["manifest"]["leaks"]}
    false_flags = sorted(set(found) - planted - {leak["id"] for leak in toy["leaks"]})
    text, bench_text = {r["id"]: r["problem"] for r in prompts}, {r["id"]: r["problem"] for r in toy["bench"]}
    reordered = [(text[p], bench_text[found[p]]) for p in false_flags]
    caught_planted = len(planted & set(found))
    print(f"embedding decontamination: {len(toy['leaks'])}/8 paraphrased leaks, {caught_planted}/{len(planted)} planted "
          f"train leaks, {len(false_flags)} other train prompts flagged {reordered[:5]}; cosines "
          f"{sorted(hits.filter(pl.col('prompt_id').str.starts_with('leak-'))['similarity'].round(3).to_list())}")
    # measured 7, each a benchmark sum with its terms reordered ("Evaluate 2 + 5 - 9 - 5." / "... 5 - 9 + 2 - 5")
    assert all(formulas_agree(formula_signature(a), formula_signature(b)) and formula_signature(a) for a, b in reordered)
    assert len(false_flags) <= 0.01 * len(toy["train"])


def test_semantic_dedup_of_the_train_pool(toy):
    train = toy["train"]
    n = len(train)
    res = semantic_clusters([r["id"] for r in train], [r["problem"] for r in train], toy["prompt_emb"][:n], CFG,
                            order_keys=list(range(n)))
    groups = defaultdict(list)
    for item, cluster in zip(res.rows["item_id"].to_list(), res.rows["cluster_id"].to_list()):
        groups[cluster].append(item)
    predicted = {tuple(sorted(p)) for members in groups.values() for p in itertools.combinations(members, 2)}
    manifest = toy["manifest"]
    truth = {tuple(sorted((e["id"], e["duplicate_of"]))) for e in manifest["exact_duplicates"]}
    truth |= {tuple(sorted((e["id"], e["near_duplicate_of"]))) for e in manifest["near_duplicates"]}
    text = {r["id"]: r["problem"] for r in train}
    unexpected = [(text[a], text[b]) for a, b in sorted(predicted - truth)]
    missed = [(text[a], text[b]) for a, b in sorted(truth - predicted)]
    print(f"semantic dedup of {n} train prompts: {len(predicted)} pairs, {len(predicted & truth)}/{len(truth)} planted "
          f"duplicate pairs (missed e.g. {missed[:4]}), {len(unexpected)} others, e.g. {unexpected[:4]}; {res.stats}")
    # measured 56/63: the misses are formula-identical rewrites ("Calculate: 3-3-5*3") that MinHash's
    # formula identity already joins (test_dedup_toyworld.py); semantic dedup runs next to it.
    assert len(predicted & truth) / len(truth) >= 0.85
    # the other linked pairs (measured 49 at threshold 0.55, the same 49 at 0.62 and 0.45; 42 the round
    # before, when numbers trading places inside agreeing formulas still blocked a pair; 51 at 0.72 before
    # that) are the same sum with its terms reordered ("3 + 7 - 2 * 2" / "7 + 3 - 2 * 2"): both texts have
    # a formula and the formulas agree; no prose-only merges
    assert all(formula_signature(a) is not None and formulas_agree(formula_signature(a), formula_signature(b))
               for a, b in unexpected)
    # tenth round: the pair search keeps a pair found from either side and probes 8 clusters (was 4, one side):
    # 220 linked pairs instead of 166 (an exhaustive search: 244), 62/63 planted, 159 others (110 before), all
    # formula-agreeing reordered sums as asserted above
    assert len(unexpected) <= 0.08 * n
