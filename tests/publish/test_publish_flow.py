"""The publish and validate flows through Prefect's test harness."""

from __future__ import annotations

import polars as pl
import pytest
from test_publish_versions import publish, seed

from tasks.contracts import ContractViolation
from tasks.publish import PublishError


def test_publish_flow_from_a_file_is_idempotent_and_exports(prefect_harness, wh, tmp_path):
    from flows.publish import publish_flow

    seed(wh)
    path = tmp_path / "sel.parquet"
    pl.DataFrame({"trace_id": ["t0_0", "t1_0"], "rank": [1, 2], "stage": ["main", "main"]}).write_parquet(path)
    args = {"warehouse": str(wh.path), "dataset_name": "toy", "selection": str(path), "policy": "random",
            "params": {"budget": 2}, "source_run_ids": ["select-9"]}
    first = publish_flow(**args, export_format="parquet", export_dir=str(tmp_path / "out"))
    again = publish_flow(**args)
    assert (first["dataset"], first["is_new"], first["n_out"]) == ("toy@1", True, 2)
    assert (again["dataset"], again["is_new"], again["content_hash"]) == ("toy@1", False, first["content_hash"])
    assert pl.read_parquet(first["export_path"])["trace_id"].to_list() == ["t0_0", "t1_0"]
    runs = wh.query("select status, n_out from meta.runs where stage = 'publish' order by started_at")
    assert runs.rows() == [("completed", 2), ("completed", 2)]


def test_publish_flow_confirms_a_select_runs_version(prefect_harness, wh):
    from flows.publish import publish_flow

    seed(wh)
    publish(wh, "toy", ["t0_0"], source_run_ids=["gen-1", "select-7"])
    out = publish_flow(warehouse=str(wh.path), selection_run_id="select-7", emit_event=False)
    assert (out["dataset"], out["is_new"]) == ("toy@1", False)
    with pytest.raises(PublishError, match="select run select-8 published no dataset version"):
        publish_flow(warehouse=str(wh.path), selection_run_id="select-8", emit_event=False)


def test_blocking_failure_fails_the_publish_run(prefect_harness, wh):
    from flows.publish import publish_flow

    seed(wh)
    with pytest.raises(ContractViolation, match="sql_referential_integrity"):
        publish_flow(warehouse=str(wh.path), dataset_name="toy", selection=[{"trace_id": "nope", "rank": 1}],
                     policy="random")
    assert wh.query("select status, n_rejected from meta.runs where stage = 'publish'").rows() == [("failed", 1)]


def test_validate_flow_checks_a_stage_runs_rows(prefect_harness, wh):
    from flows.publish import validate_flow

    seed(wh)
    ok = validate_flow(warehouse=str(wh.path), run_id="gen-1", tables=["raw.raw_traces"])
    assert ok["suites"]["raw_traces"] == {"n_rows": 6, "passed": True, "success": True}
    wh.execute("update raw.raw_traces set n_completion_tokens = -1 where trace_id = 't2_1'")
    with pytest.raises(ContractViolation, match="n_completion_tokens"):
        validate_flow(warehouse=str(wh.path), run_id="gen-1")
