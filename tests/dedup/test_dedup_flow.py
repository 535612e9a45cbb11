"""Dedup flow against a temp warehouse: rows, reasons, decontamination, idempotent re-runs."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import polars as pl
import pytest

from flows.dedup import run_dedup

T0 = datetime(2025, 1, 1)


def _prompts(wh, rows: list[tuple[str, str, int]], run_id: str = "ingest-1") -> None:
    wh.load(
        "raw.raw_prompts",
        pl.DataFrame(
            [
                {"prompt_id": pid, "source": "toy", "source_ref": f"train.jsonl:{k}", "domain": "math", "problem_text": text,
                 "reference_answer": "1", "split": "train", "ingested_at": T0 + timedelta(seconds=k), "run_id": run_id}
                for pid, text, k in rows
            ]
        ),
        key=["prompt_id"],
    )


def _traces(wh, rows: list[tuple[str, str, str, int]]) -> None:
    wh.load(
        "raw.raw_traces",
        pl.DataFrame(
            [
                {"trace_id": tid, "prompt_id": pid, "model_id": "teacher-a", "origin": "imported", "sample_index": k,
                 "completion_text": text, "is_truncated": False, "created_at": T0 + timedelta(seconds=k), "run_id": "ingest-1"}
                for tid, pid, text, k in rows
            ]
        ),
        key=["trace_id"],
    )


GOOD = "<think>\n5*3=15.\n7+15=22.\n22-4=18.\n</think>\n\\boxed{18}"


@pytest.fixture
def seeded(wh, tmp_path):
    _prompts(
        wh,
        [
            ("p1", "Compute 7 + 5 * 3 - 4.", 1),
            ("p2", "compute 7 + 5 * 3 - 4.", 2),  # exact (case) duplicate of p1
            ("p3", "Work out 7+5*3-4.", 3),  # reworded near duplicate of p1
            ("p4", "Compute 7 + 5 * 3 - 5.", 4),  # one digit differs: distinct
            ("p5", "Evaluate 2 - 3 * 6 + 4.", 5),  # leaked from the benchmark
        ],
    )
    _traces(
        wh,
        [
            ("t1", "p1", GOOD, 1),
            ("t2", "p1", GOOD, 2),  # exact duplicate within p1
            ("t3", "p4", GOOD, 3),  # same text, other prompt: not a duplicate (scope = prompt)
            ("t4", "p1", GOOD.replace("18", "19"), 4),  # a different answer: distinct
        ],
    )
    bench = tmp_path / "bench.jsonl"
    bench.write_text(json.dumps({"id": "b7", "problem": "Evaluate 2 - 3 * 6 + 4."}) + "\n")
    return str(bench)


def _status(wh, kind: str) -> dict[str, tuple]:
    df = wh.query(
        "select item_id, method, cluster_id, is_representative from staging.stg_dedup where item_kind = ? order by 1, 2", [kind]
    )
    return {(r["item_id"], r["method"]): (r["cluster_id"], r["is_representative"]) for r in df.iter_rows(named=True)}


def test_dedup_and_decontaminate_then_rerun_is_a_noop(wh, seeded):
    result = run_dedup(warehouse=wh.path, benchmarks=[f"toybench={seeded}"])
    prompts = _status(wh, "prompt")
    assert prompts[("p2", "exact")] == ("p1", False)
    assert prompts[("p3", "exact")] == ("p3", True)
    assert prompts[("p3", "near")] == ("p1", False)
    assert prompts[("p2", "near")] == ("p1", False)  # inherits its exact representative's cluster
    assert prompts[("p4", "near")] == ("p4", True)
    traces = _status(wh, "trace")
    assert traces[("t2", "exact")] == ("t1", False)
    assert traces[("t3", "exact")] == ("t3", True)
    assert traces[("t4", "near")] == ("t4", True)

    contaminated = wh.query("select prompt_id, benchmark_name, benchmark_item_id from staging.stg_contamination where is_contaminated")
    assert contaminated.rows() == [("p5", "toybench", "b7")]
    assert wh.scalar("select count(*) from staging.stg_contamination") == 5  # clean checks are recorded too

    reasons = wh.query("select source_ref, reason_code, detail from raw.raw_rejections where stage = 'dedup' order by 1, 2")
    assert reasons.select("source_ref", "reason_code").rows() == [
        ("p2", "dup_exact"), ("p2", "dup_near"), ("p3", "dup_near"), ("p5", "contaminated"), ("t2", "dup_exact"), ("t2", "dup_near"),
    ]
    assert "toybench" in reasons.filter(pl.col("reason_code") == "contaminated")["detail"][0]
    assert result["n_in"] == 9 and result["n_rejected"] == 3 + 1  # p2, p3, t2 + p5

    n_rows = wh.scalar("select count(*) from raw.raw_dedup")
    again = run_dedup(warehouse=wh.path, benchmarks=[f"toybench={seeded}"])
    assert again["n_in"] == 0 and again["decontamination"]["n_checked"] == 0
    assert wh.scalar("select count(*) from raw.raw_dedup") == n_rows
    assert wh.scalar("select count(*) from raw.raw_rejections where stage = 'dedup'") == 6


def test_new_items_are_clustered_against_old_ones(wh, seeded):
    run_dedup(warehouse=wh.path, levels=["prompt"])
    before = wh.scalar("select count(*) from raw.raw_dedup")
    _prompts(wh, [("p0", "Please compute 7 + 5 * 3 - 4.", 9)], run_id="ingest-2")
    result = run_dedup(warehouse=wh.path, levels=["prompt"])
    assert result["prompt"]["n_pending"] == 1
    assert _status(wh, "prompt")[("p0", "near")] == ("p1", False)
    assert wh.scalar("select count(*) from raw.raw_dedup") == before + 2  # only the new item's rows
    assert wh.scalar("select count(*) from staging.stg_dedup") == 12


def test_dedup_flow_under_prefect(prefect_harness, wh, seeded):
    from flows.dedup import dedup_flow

    result = dedup_flow(warehouse=wh.path, benchmarks=[seeded], levels=["prompt"], shard_size=2)
    assert result["prompt"]["n_duplicates"] == 2
    assert result["decontamination"]["benchmarks"]["bench"]["contaminated"] == 1
    run = wh.query("select status, n_in, n_rejected from meta.runs where run_id = ?", [result["run_id"]])
    assert run.rows() == [("completed", 5, 3)]
