"""Scale-out: a CPU stage's shards run on a local Ray cluster through prefect-ray and give the
same warehouse rows as the default runner."""

from __future__ import annotations

import pytest

from tests.conftest import TOYWORLD

pytestmark = pytest.mark.slow


def test_score_stage_on_local_ray_cluster(tmp_path, prefect_harness):
    pytest.importorskip("prefect_ray", reason="install the scale extra: pip install -e .[scale]")
    from flows.common import task_runner_for
    from flows.ingest import run_ingest
    from flows.score import score_flow
    from warehouse import Warehouse

    paths = {}
    for name in ("ray", "threads"):
        paths[name] = str(tmp_path / f"{name}.duckdb")
        run_ingest(TOYWORLD / "data" / "imported_traces.jsonl", kind="traces", model="hub-teacher", warehouse=paths[name])
    on_ray = score_flow.with_options(task_runner=task_runner_for("ray"))(warehouse=paths["ray"], shard_size=16)
    on_threads = score_flow(warehouse=paths["threads"], shard_size=16)
    assert on_ray["n_in"] == on_threads["n_in"] == 120
    query = "select trace_id, metric, score from raw.raw_scores order by all"
    assert Warehouse(paths["ray"]).query(query).equals(Warehouse(paths["threads"]).query(query))


def test_recipe_task_runner_is_validated():
    from flows.common import task_runner_for

    assert task_runner_for("default") is None
    with pytest.raises(ValueError, match="choose default or ray"):
        task_runner_for("dask")
