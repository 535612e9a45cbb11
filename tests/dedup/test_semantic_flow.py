"""Semantic step of the dedup flow against a temp warehouse: rows, reasons, cache, re-runs, no extra."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta

import polars as pl
import pytest

from flows import dedup_semantic
from flows.dedup import run_dedup
from tasks.dedup.semantic import SemanticConfig

T0 = datetime(2025, 1, 1)
CFG = SemanticConfig(enabled=True, device="cpu")


def _prompts(wh, rows: list[tuple[str, str, int]]) -> None:
    wh.load("raw.raw_prompts", pl.DataFrame([
        {"prompt_id": pid, "source": "toy", "source_ref": f"train.jsonl:{k}", "domain": "math", "problem_text": text,
         "reference_answer": "1", "split": "train", "ingested_at": T0 + timedelta(seconds=k), "run_id": "ingest-1"}
        for pid, text, k in rows
    ]), key=["prompt_id"])


@pytest.fixture
def seeded(wh, tmp_path):
    _prompts(wh, [
        ("p1", "Find x if 3x+2=11.", 1),
        ("p2", "Solve 11 = 2 + 3x for x.", 2),  # paraphrase of p1: MinHash misses it
        ("p3", "Find x if 3x+2=12.", 3),  # one number differs: distinct
        ("p4", "A train travels 120 km in 2 hours. What is its average speed?", 4),
        ("p5", "What is the result of 4 minus 1 minus 3 minus 8?", 5),  # reworded benchmark item b1
        ("p6", "Compute 4 - 1 - 3 - 8.", 6),  # the benchmark item itself (n-gram method)
    ])
    bench = tmp_path / "bench.jsonl"
    bench.write_text("".join(json.dumps(r) + "\n" for r in [
        {"id": "b1", "problem": "Compute 4 - 1 - 3 - 8."},
        {"id": "b2", "problem": "Compute 8 - 4 - 1 - 3."},  # same numbers, another problem
    ]))
    return wh, str(bench)


pytestmark = pytest.mark.skipif(dedup_semantic.missing_extra() is not None, reason="semantic extra not installed")


def test_semantic_rows_reasons_and_cache(seeded):
    wh, bench = seeded
    out = run_dedup(warehouse=wh.path, benchmarks=[bench], levels=("prompt",), semantic=CFG)
    sem = out["semantic"]
    rows = wh.query("select item_id, cluster_id, is_representative, similarity from raw.raw_dedup where method = 'semantic' order by item_id")
    assert rows.height == 6
    cluster = dict(zip(rows["item_id"].to_list(), rows["cluster_id"].to_list()))
    assert cluster["p2"] == "p1" and cluster["p3"] == "p3"
    reasons = wh.query("select source_ref, reason_code, detail from raw.raw_rejections where run_id = ? order by 1, 2", [out["run_id"]])
    got = set(zip(reasons["source_ref"].to_list(), reasons["reason_code"].to_list()))
    assert ("p2", "dup_semantic") in got
    assert ("p5", "contaminated_embedding") in got and ("p6", "contaminated") in got
    assert ("p6", "contaminated_embedding") not in got  # already flagged by the n-gram method: one rejection
    assert "Solve 11 = 2 + 3x" in reasons.filter(pl.col("source_ref") == "p2")["detail"][0]
    contam = wh.query("select prompt_id, method, is_contaminated, benchmark_item_id, similarity from staging.stg_contamination "
                      "where is_contaminated order by 1, 2")
    assert ("p5", "embedding", "b1") in set(zip(contam["prompt_id"].to_list(), contam["method"].to_list(),
                                                contam["benchmark_item_id"].to_list()))
    assert wh.scalar("select count(*) from staging.stg_contamination where method = 'ngram'") == 6  # n-gram checks kept
    assert sem["prompt"]["n_removed"] == 2  # p2, and p6: the same problem as p5 (ingested first)
    assert sem["decontamination"]["n_removed"] == 1
    assert sem["n_encoded"] == 7  # 6 prompts + 2 benchmark items, b1 has the same text as p6 (one cache key)
    assert out["n_rejected"] >= 3
    assert wh.scalar("select count(*) from raw.raw_embeddings") == 7
    selectable = wh.query("select prompt_id, is_contaminated from staging.stg_prompts p left join "
                          "(select prompt_id, bool_or(is_contaminated) as is_contaminated from staging.stg_contamination group by 1) "
                          "using (prompt_id) order by 1")
    assert dict(zip(selectable["prompt_id"].to_list(), selectable["is_contaminated"].to_list()))["p5"] is True

    again = run_dedup(warehouse=wh.path, benchmarks=[bench], levels=("prompt",), semantic=CFG)
    assert again["semantic"]["n_encoded"] == 0 and again["semantic"]["prompt"]["n_pending"] == 0
    assert again["semantic"]["decontamination"]["n_checked"] == 0

    _prompts(wh, [("p7", "Work out x when 3x + 2 = 11.", 7)])
    third = run_dedup(warehouse=wh.path, benchmarks=[bench], levels=("prompt",), semantic=CFG)
    assert third["semantic"]["n_encoded"] == 1  # only the new prompt is embedded
    latest = wh.query("select item_id, cluster_id from staging.stg_dedup where method = 'semantic' and item_id = 'p7'")
    assert latest["cluster_id"].to_list() == ["p1"]


def test_without_the_extra_the_stage_says_how_and_changes_nothing(seeded, monkeypatch, caplog):
    wh, bench = seeded
    monkeypatch.setattr(dedup_semantic, "missing_extra", lambda: "semantic dedup needs faiss: install the extra with pip install -e '.[semantic]'")
    with caplog.at_level(logging.WARNING, logger="potstill.dedup"):
        out = run_dedup(warehouse=wh.path, benchmarks=[bench], levels=("prompt",), semantic=CFG)
    assert out["semantic"]["skipped"].endswith("pip install -e '.[semantic]'")
    assert [r.getMessage() for r in caplog.records if "semantic" in r.getMessage()] == [
        "dedup: semantic step skipped: semantic dedup needs faiss: install the extra with pip install -e '.[semantic]'"]
    assert wh.scalar("select count(*) from raw.raw_dedup where method = 'semantic'") == 0
    assert wh.scalar("select count(*) from raw.raw_contamination where method = 'embedding'") == 0


def test_disabled_by_default(seeded):
    wh, bench = seeded
    out = run_dedup(warehouse=wh.path, benchmarks=[bench], levels=("prompt",))
    assert out["semantic"] == {"enabled": False, "n_removed": 0}
    assert wh.scalar("select count(*) from raw.raw_embeddings") == 0


def test_recipe_mapping_under_prefect(prefect_harness, seeded):
    from flows.dedup import dedup_flow

    wh, bench = seeded
    result = dedup_flow(warehouse=wh.path, benchmarks=[bench], levels=["prompt"],
                        semantic={"enabled": True, "device": "cpu", "threshold": 0.72})
    assert result["semantic"]["prompt"]["n_removed"] == 2
    reasons = wh.query("select reason_code, count(*) as n from raw.raw_rejections where run_id = ? group by 1 order by 1",
                       [result["run_id"]])
    assert dict(reasons.rows()) == {"contaminated": 1, "contaminated_embedding": 1, "dup_semantic": 2}
    run = wh.query("select status, n_rejected, stats_json from meta.runs where run_id = ?", [result["run_id"]]).row(0)
    assert run[0] == "completed" and run[1] == 4
    assert json.loads(run[2])["semantic"]["prompt"]["examples"][0]["duplicate_of"] == "p1"
