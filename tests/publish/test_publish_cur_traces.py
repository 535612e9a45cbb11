"""curated.cur_traces: one row per trace joining every stage's output; lineage of one trace."""

from __future__ import annotations

import json
from datetime import datetime

import polars as pl
import pytest
from test_publish_versions import publish, seed

from warehouse.lineage import LineageError, lineage

NOW = datetime(2025, 1, 1)


def plant_stage_outputs(wh) -> None:
    verif = [("t0_0", "math_verify", "correct", 1.0), ("t0_0", "majority_vote", "correct", 0.5),
             ("t0_1", "math_verify", "incorrect", 0.0), ("t0_1", "majority_vote", "correct", 0.5),
             ("t1_0", "math_verify", "timeout", None)]
    wh.load("raw.raw_verifications", pl.DataFrame([{
        "trace_id": t, "prompt_id": None, "verifier": v, "verifier_version": "1", "input_hash": "h",
        "verdict_status": s, "verdict_reason": "x", "score": sc, "verified_at": NOW, "run_id": "verify-1",
    } for t, v, s, sc in verif]))
    dedup = [("trace", "t0_0", "exact", "t0_0", True), ("trace", "t0_1", "exact", "t0_0", False),
             ("prompt", "p1", "near", "p0", False), ("prompt", "p0", "near", "p0", True)]
    wh.load("raw.raw_dedup", pl.DataFrame([{
        "item_kind": k, "item_id": i, "method": m, "cluster_id": c, "is_representative": r, "similarity": 1.0,
        "config_fingerprint": "d1", "decided_at": NOW, "run_id": "dedup-1",
    } for k, i, m, c, r in dedup]))
    wh.load("raw.raw_contamination", pl.DataFrame([{
        "prompt_id": "p2", "benchmark_name": "aime24", "benchmark_hash": "b", "is_contaminated": True,
        "config_fingerprint": "c1", "checked_at": NOW, "run_id": "decon-1",
    }]))
    wh.load("raw.raw_scores", pl.DataFrame([{
        "trace_id": "t0_0", "metric": m, "score": s, "scorer": "potstill.quality", "scorer_version": "1",
        "basis_hash": "", "scored_at": NOW, "run_id": "score-1",
    } for m, s in [("hesitation_per_1k", 12.5), ("is_truncated", 0.0), ("brand_new_metric", 3.0)]]))
    wh.load("raw.raw_quality_flags", pl.DataFrame([{
        "trace_id": "t0_0", "preset": "default", "filter_fingerprint": "f", "basis_hash": "b", "is_flagged": False,
        "reason_codes": [], "flagged_at": NOW, "run_id": "score-1",
    }]))
    sentences = [("teacher@r1", 0, -0.05), ("teacher@r1", 1, -2.0), ("student", 0, -2.0), ("student", 1, -2.0)]
    wh.load("raw.raw_sentence_scores", pl.DataFrame([{
        "trace_id": "t0_0", "sentence_index": i, "char_start": 8 * i, "char_end": 8 * i + 6, "model_id": m,
        "n_tokens": 3, "mean_logprob": lp, "splitter": "v1", "scored_at": NOW, "run_id": "div-1",
    } for m, i, lp in sentences]))


@pytest.fixture
def planted(wh):
    seed(wh)
    plant_stage_outputs(wh)
    return wh


def test_cur_traces_one_row_per_trace_with_every_stage(planted):
    df = planted.query("select * from curated.cur_traces order by trace_id")
    assert df["trace_id"].to_list() == ["t0_0", "t0_1", "t1_0", "t1_1", "t2_0", "t2_1"]
    row = {r["trace_id"]: r for r in df.to_dicts()}
    assert [row[t]["verdict_status"] for t in ("t0_0", "t0_1", "t1_0", "t2_0")] == ["correct", "incorrect", "timeout", None]
    assert row["t0_0"]["n_verifiers"] == 2 and row["t0_0"]["verify_score"] == 0.5
    assert (row["t0_0"]["is_representative"], row["t0_1"]["is_representative"]) == (True, False)
    assert row["t1_0"]["is_representative"] is False  # its prompt is a near duplicate of p0
    assert row["t2_0"]["is_representative"] is None and row["t2_0"]["is_contaminated"] is True
    assert row["t2_0"]["contaminated_benchmarks"] == "aime24"
    assert row["t0_0"]["score_hesitation_per_1k"] == 12.5 and row["t0_0"]["score_is_truncated"] == 0.0
    assert row["t0_0"]["scores"]["brand_new_metric"] == 3.0
    assert row["t0_0"]["passes_quality_default"] is True
    assert (row["t0_0"]["n_teacher"], row["t0_0"]["n_common"], row["t0_0"]["n_sentences"]) == (1, 1, 2)
    assert row["t0_1"]["n_provenance_students"] == 0 and row["t0_1"]["n_teacher"] is None


def test_lineage_of_a_published_trace(planted):
    publish(planted, "toy", ["t0_0", "t1_0"], policy="provenance")
    planted.load("meta.training_runs", pl.DataFrame([{
        "training_run_id": "ft-1", "dataset_name": "toy", "dataset_version": 1, "base_model": "student",
        "recipe_fingerprint": "r", "checkpoint_path": "/ckpt/step-000010", "n_steps": 10, "n_train_tokens": 100,
        "final_loss": 0.5, "started_at": NOW, "finished_at": NOW, "status": "completed",
    }]))
    info = lineage(planted, "t0_0")
    assert info["prompt"]["prompt_id"] == "p0" and info["prompt"]["ingest_run_id"] == "ingest-1"
    assert info["trace"]["model_id"] == "teacher@r1" and info["trace"]["temperature"] == 0.6
    assert info["generation_run"]["run_id"] == "gen-1"
    assert sorted(v["verifier"] for v in info["verifications"]) == ["majority_vote", "math_verify"]
    assert [(d["item_kind"], d["method"], d["cluster_id"]) for d in info["dedup"]] == [
        ("trace", "exact", "t0_0"), ("prompt", "near", "p0")]
    assert {s["metric"] for s in info["scores"]} == {"hesitation_per_1k", "is_truncated", "brand_new_metric"}
    assert info["contamination"] == []
    assert [(d["dataset_name"], d["version"], d["policy"], d["rank"]) for d in info["datasets"]] == [
        ("toy", 1, "provenance", 0)]
    assert [t["training_run_id"] for t in info["training_runs"]] == ["ft-1"]
    json.dumps(info, default=str)  # serialisable for `potstill lineage`
    assert lineage(planted, "t2_1")["datasets"] == []


def test_lineage_of_unknown_trace(wh):
    with pytest.raises(LineageError, match="t_nope"):
        lineage(wh, "t_nope")
