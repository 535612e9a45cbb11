"""Acceptance on the toy world's planted duplicates and benchmark leaks (toyworld/data + manifest.json).

Uses the shipped files when they exist, else builds the same data in memory with the toy world's
own generator (`toyworld.datagen.build_data`, deterministic for its default seed).
"""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from pathlib import Path

import polars as pl
import pytest

from tasks.dedup.decontam import Benchmark, find_contamination
from tasks.dedup.pipeline import DedupConfig, dedup_items

TOYWORLD = Path(__file__).resolve().parents[2] / "toyworld"


def _toyworld() -> tuple[list[dict], list[dict], dict]:
    data = TOYWORLD / "data"
    if (data / "train.jsonl").exists() and (data / "benchmark.jsonl").exists() and (data / "manifest.json").exists():
        read = lambda name: [json.loads(line) for line in (data / name).read_text().splitlines() if line.strip()]
        return read("train.jsonl"), read("benchmark.jsonl"), json.loads((data / "manifest.json").read_text())
    datagen = pytest.importorskip("toyworld.datagen", reason="toy world absent: neither toyworld/data nor toyworld/datagen.py")
    built = datagen.build_data(datagen.DataSpec())
    return built["train"], built["benchmark"], built["manifest"]


@pytest.fixture(scope="module")
def toy():
    return _toyworld()


def _clusters(rows: pl.DataFrame, method: str) -> dict[str, str]:
    part = rows.filter(pl.col("method") == method)
    return dict(zip(part["item_id"].to_list(), part["cluster_id"].to_list()))


def _pairs(cluster_of: dict[str, str]) -> set[tuple[str, str]]:
    groups = defaultdict(list)
    for item, cluster in cluster_of.items():
        groups[cluster].append(item)
    return {tuple(sorted(p)) for members in groups.values() for p in itertools.combinations(members, 2)}


def _items(train: list[dict]) -> pl.DataFrame:
    return pl.DataFrame({"item_id": [r["id"] for r in train], "text": [r["problem"] for r in train],
                         "order_key": list(range(len(train)))})


def test_planted_duplicates_are_found(toy):
    train, _, manifest = toy
    result = dedup_items(_items(train), DedupConfig(), "prompt")
    exact, near = _clusters(result.rows, "exact"), _clusters(result.rows, "near")

    planted_exact = [(e["id"], e["duplicate_of"]) for e in manifest["exact_duplicates"]]
    exact_recall = sum(exact[a] == exact[b] for a, b in planted_exact) / len(planted_exact)

    # truth: planted exact and near pairs, closed transitively (a near dup of a row with an exact dup)
    groups: dict[str, set[str]] = {}
    for a, b in planted_exact + [(e["id"], e["near_duplicate_of"]) for e in manifest["near_duplicates"]]:
        merged = groups.get(a, {a}) | groups.get(b, {b})
        for m in merged:
            groups[m] = merged
    truth = {tuple(sorted(p)) for g in {frozenset(g) for g in groups.values()} for p in itertools.combinations(sorted(g), 2)}
    predicted = _pairs(near)
    tp = len(predicted & truth)
    precision, recall = tp / max(len(predicted), 1), tp / len(truth)
    print(f"toy world: exact recall {exact_recall:.3f}; near precision {precision:.3f} recall {recall:.3f} "
          f"({len(truth)} planted pairs, {len(predicted)} predicted); {result.stats}")
    assert exact_recall == 1.0
    assert recall >= 0.90
    assert precision >= 0.95


def test_every_planted_leak_is_flagged(toy):
    train, benchmark, manifest = toy
    prompts = pl.DataFrame({"prompt_id": [r["id"] for r in train], "text": [r["problem"] for r in train]})
    bench = Benchmark.from_items("toybench", [(r["id"], r["problem"]) for r in benchmark])
    hits = find_contamination(prompts, [bench])
    found = dict(zip(hits["prompt_id"].to_list(), hits["benchmark_item_id"].to_list()))
    leaks = {leak["train_id"]: leak["benchmark_id"] for leak in manifest["leaks"]}
    print(f"toy world: {len(leaks)} planted leaks, {len(found)} prompts flagged")
    assert {k: found.get(k) for k in leaks} == leaks
    assert set(found) == set(leaks)  # nothing else in train is flagged


def test_results_identical_across_two_runs(toy):
    train, _, _ = toy
    items = _items(train)
    first = dedup_items(items, DedupConfig(), "prompt", shard_size=700).rows
    second = dedup_items(items.reverse(), DedupConfig(), "prompt", shard_size=333).rows
    order = ["item_id", "method"]
    assert first.sort(order).equals(second.sort(order))
