"""The warehouse as a DuckLake: readers never block writers, concurrent writers stay exact,
published versions can be read as of their snapshot, old single files migrate, maintenance."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from warehouse import Warehouse, WarehouseError
from warehouse.datasets import record_snapshot
from warehouse.db import discover_migrations
from warehouse.lake import LakeLocation, is_lake, lake_ddl
from warehouse.maintenance import maintain

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def potstill(*args: str, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "flows.cli", *args], capture_output=True, text=True, timeout=timeout,
                          env=ENV, check=False)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def _traces_file(path: Path, numbers: range) -> Path:
    rows = [{"problem": f"Compute {k} + 1.", "reasoning": f"{k}+1={k + 1}.", "model_answer": f"\\boxed{{{k + 1}}}",
             "answer": str(k + 1)} for k in numbers]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _runs(ids: list[str]) -> pl.DataFrame:
    return pl.DataFrame({"run_id": ids, "flow_name": "f", "stage": "s", "status": "completed",
                         "started_at": [datetime(2026, 1, 1)] * len(ids)})


def test_location_kinds(tmp_path):
    assert is_lake(str(tmp_path / "lake")) and not is_lake(str(tmp_path / "w.duckdb")) and not is_lake(":memory:")
    pg = LakeLocation.parse("postgresql://u@/cat?host=/tmp/s&port=5433&data_path=/shared/lake")
    assert pg.kind == "postgres" and pg.data_path == "/shared/lake/" and "data_path" not in pg.catalog
    with pytest.raises(WarehouseError, match="needs a data path"):
        Warehouse("postgresql://u@/cat?host=/tmp/s")
    (tmp_path / "file").write_text("x")
    with pytest.raises(WarehouseError, match="a lake is a folder"):
        Warehouse(tmp_path / "file")


def test_every_migration_has_a_lake_form():
    for migration in discover_migrations():
        ddl = re.sub(r"--[^\n]*|'[^']*'", "", lake_ddl(migration.sql).lower())  # code only, not comments
        assert "primary key" not in ddl and "check (" not in ddl, migration.name
    assert lake_ddl("create table t (\n  a int not null,  -- a\n  primary key (a),\n  check (a > 0)\n);") == \
        "create table t (\n  a int not null  -- a\n);"


def test_lake_is_migrated_once_and_refuses_edited_migrations(wh, tmp_path):
    assert wh.is_lake and wh.migrate() == []
    assert wh.scalar("select count(*) from meta.schema_migrations") == len(discover_migrations())
    import shutil

    migrations = tmp_path / "migrations"
    shutil.copytree(REPO / "warehouse" / "migrations", migrations)
    first = sorted(migrations.glob("*.sql"))[1]
    first.write_text(first.read_text() + "\ncreate table edited_t (a integer);\n")
    with pytest.raises(WarehouseError, match="was edited after it was applied"):
        Warehouse(wh.path, migrations_dir=migrations).migrate()


READER = textwrap.dedent(
    """
    import sys, time, duckdb
    con = duckdb.connect()
    for statement in sys.stdin.readline().split(";"):
        if statement.strip():
            con.execute(statement)
    count = "select count(*) from staging.stg_traces"
    seen = [con.execute(count).fetchone()[0]]  # one read before any write starts
    print("ready", flush=True)
    deadline = time.monotonic() + float(sys.argv[1])
    while time.monotonic() < deadline and seen[-1] < int(sys.argv[2]):
        time.sleep(0.1)
        seen.append(con.execute(count).fetchone()[0])
    print(len(seen), seen[0], max(seen), flush=True)
    """
)


def test_reader_held_open_does_not_block_writers(wh, tmp_path):
    from flows.ingest import run_ingest

    attach = potstill("--warehouse", wh.path, "sql", "--attach-sql").stdout
    assert "ATTACH 'ducklake:sqlite:" in attach and "READ_ONLY" in attach
    reader = subprocess.Popen([sys.executable, "-c", READER, "300", "30"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, env=ENV)
    reader.stdin.write(attach.replace("\n", " ") + "\n")
    reader.stdin.flush()
    assert reader.stdout.readline().strip() == "ready"
    try:
        started = time.monotonic()
        for i in range(3):
            stats = run_ingest(_traces_file(tmp_path / f"t{i}.jsonl", range(i * 10, i * 10 + 10)), kind="traces",
                               model="m", warehouse=wh.path)
            assert stats["new_traces"] == 10
        assert time.monotonic() - started < 120
    finally:
        out, _ = reader.communicate(timeout=120)
    assert reader.returncode == 0
    polls, first, seen = map(int, out.split())
    # one connection, open and read before the first write, kept polling until it saw every commit
    assert first == 0 and seen == 30 and polls >= 2
    assert wh.scalar("select count(*) from raw.raw_traces") == 30


@pytest.mark.slow
def test_concurrent_ingest_of_traces_is_exact(wh, tmp_path):
    """4 processes ingest different files and a 5th an overlapping one, all at once: no duplicates."""
    wh.ensure()
    files = [_traces_file(tmp_path / f"part{i}.jsonl", range(i * 25, i * 25 + 25)) for i in range(4)]
    files.append(_traces_file(tmp_path / "overlap.jsonl", range(10, 60)))
    procs = [subprocess.Popen([sys.executable, "-m", "flows.cli", "--warehouse", wh.path, "ingest", "traces", str(f),
                               "--model", "teacher", "--source", "toy"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
             for f in files]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
    counts = wh.query("select (select count(*) from raw.raw_traces) as traces,"
                      " (select count(distinct trace_id) from raw.raw_traces) as distinct_traces,"
                      " (select count(*) from raw.raw_prompts) as prompts,"
                      " (select count(distinct prompt_id) from raw.raw_prompts) as distinct_prompts").row(0, named=True)
    assert counts == {"traces": 100, "distinct_traces": 100, "prompts": 100, "distinct_prompts": 100}
    assert wh.scalar("select count(*) from meta.runs where stage = 'ingest' and status = 'completed'") == 5


def _publish_marker(wh: Warehouse, name: str, version: int) -> int:
    """A published dataset version row committed in its own transaction; returns its snapshot."""
    row = {"dataset_name": name, "version": version, "policy": "test", "params_json": "{}", "config_fingerprint": None,
           "source_run_ids": [], "n_rows": 0, "n_tokens": 0, "content_hash": f"h{version}", "status": "published",
           "created_at": datetime(2026, 1, 1), "published_at": datetime(2026, 1, 1), "status_reason": None,
           "publish_run_id": None}
    from warehouse.datasets import _DATASET_SCHEMA

    with wh.transaction() as con:
        wh.load("curated.cur_datasets", pl.DataFrame([row], schema=_DATASET_SCHEMA), con=con)
    snapshot = wh.last_snapshot
    record_snapshot(wh, name, version, snapshot)
    return snapshot


def test_sql_at_a_published_version_reads_its_snapshot(wh):
    wh.load("meta.runs", _runs(["a", "b"]), key=["run_id"])
    snapshot = _publish_marker(wh, "toy", 1)
    wh.load("meta.runs", _runs(["c"]), key=["run_id"])
    wh.execute("delete from meta.runs where run_id = 'a'")
    now = potstill("--warehouse", wh.path, "sql", "select string_agg(run_id, ',' order by run_id) as ids from meta.runs",
                   "--format", "json")
    assert json.loads(now.stdout) == [{"ids": "b,c"}]
    then = potstill("--warehouse", wh.path, "sql", "--at", "toy@1", "--format", "json",
                    "select string_agg(run_id, ',' order by run_id) as ids from meta.runs")
    assert json.loads(then.stdout) == [{"ids": "a,b"}] and f"snapshot {snapshot}" in then.stderr
    assert "SNAPSHOT_VERSION" in potstill("--warehouse", wh.path, "sql", "--at", "toy@latest", "--attach-sql").stdout
    missing = potstill("--warehouse", wh.path, "sql", "--at", "toy@7", "select 1", check=False)
    assert missing.returncode == 1 and "no published version 7" in missing.stderr


def test_maintenance_merges_files_and_keeps_published_snapshots(wh):
    for i in range(6):
        wh.load("meta.runs", _runs([f"r{i}"]), key=["run_id"])
    snapshot = _publish_marker(wh, "toy", 1)
    wh.execute("delete from meta.runs where run_id = 'r0'")
    wh.load("meta.runs", _runs(["late"]), key=["run_id"])
    report = maintain(wh, keep_days=0)
    # small commits are inlined in the catalog; maintenance flushes them into merged Parquet files
    assert report.files_after >= 1 and snapshot in report.kept_for_datasets
    assert report.snapshots_after < report.snapshots_before and snapshot not in report.expired
    assert wh.count_rows("meta.runs") == 6
    as_of = Warehouse(wh.path, snapshot=snapshot)
    assert as_of.scalar("select count(*) from meta.runs") == 6
    assert as_of.scalar("select count(*) from meta.runs where run_id = 'r0'") == 1



def test_maintenance_after_deleting_rows_of_parquet_files(wh):
    """Maintenance after rows of one Parquet file were deleted and another file added: flushing inlined
    rows and merging files are two commits (DuckLake 1.5.5 refuses both in one)."""
    assert wh.load("meta.runs", _runs([f"r{i}" for i in range(40)]), key=["run_id"]) == 40  # a Parquet file
    wh.execute("delete from meta.runs where run_id in ('r1', 'r2')")
    assert wh.load("meta.runs", _runs([f"n{i}" for i in range(30)]), key=["run_id"]) == 30
    report = maintain(wh, keep_days=0)
    assert report.expired and wh.count_rows("meta.runs") == 68
    assert wh.scalar("select count(*) from meta.runs where run_id in ('r1', 'r2')") == 0


@pytest.mark.slow
def test_migrate_warehouse_copies_a_single_file(tmp_path, file_wh_path):
    from flows.ingest import run_ingest

    old = Warehouse(file_wh_path)
    run_ingest(_traces_file(tmp_path / "t.jsonl", range(12)), kind="traces", model="m", warehouse=str(file_wh_path))
    old.execute("create view curated.my_pick as select trace_id from raw.raw_traces limit 5")
    before = {t: old.count_rows(t) for t in ("raw.raw_traces", "raw.raw_prompts", "meta.runs")}
    lake = tmp_path / "lake"
    out = potstill("--warehouse", str(lake), "migrate-warehouse", str(file_wh_path)).stdout
    assert "copied" in out
    new = Warehouse(lake)
    assert {t: new.count_rows(t) for t in before} == before
    assert new.scalar("select count(*) from curated.my_pick") == 5
    again = potstill("--warehouse", str(lake), "migrate-warehouse", str(file_wh_path), check=False)
    assert again.returncode == 1 and "already has rows" in again.stderr


def test_write_reruns_a_transaction_that_lost_a_commit_conflict(wh):
    import duckdb

    calls: list[int] = []

    def body(con) -> None:
        calls.append(1)
        con.execute("insert into meta.runs (run_id, flow_name, stage, status, started_at) "
                    "values ('once', 'f', 's', 'completed', now())")
        if len(calls) == 1:  # as DuckLake reports a concurrent writer's conflicting commit
            raise duckdb.TransactionException("Failed to commit DuckLake transaction: transaction conflict")

    wh.write(body)
    assert len(calls) == 2 and wh.scalar("select count(*) from meta.runs where run_id = 'once'") == 1
    with pytest.raises(ValueError):  # anything else is not retried
        wh.write(lambda con: (calls.append(1), (_ for _ in ()).throw(ValueError("bad row"))))
    assert len(calls) == 3


def test_keyed_load_compares_keys_only_and_keeps_first_occurrences(wh):
    """Keyed loads: only new keys go in (NULL key parts match NULL), each key's first row wins,
    `replace` swaps the stored rows, and a key column missing from the data is named."""
    def runs(rows: list[tuple[str, str | None, str]]) -> pl.DataFrame:
        return pl.DataFrame({"run_id": [r[0] for r in rows], "host": [r[1] for r in rows],
                             "stage": [r[2] for r in rows], "flow_name": "f", "status": "completed",
                             "started_at": [datetime(2026, 1, 1)] * len(rows)})

    key = ["run_id", "host"]
    assert wh.load("meta.runs", runs([("a", None, "first"), ("a", "h1", "x"), ("b", None, "x"), ("a", None, "dup")]),
                   key=key) == 3
    assert wh.load("meta.runs", runs([("a", None, "again"), ("c", None, "new"), ("c", None, "dup")]), key=key) == 1
    stages = dict(wh.query("select run_id || '/' || coalesce(host, '-') as k, stage from meta.runs").iter_rows())
    assert stages == {"a/-": "first", "a/h1": "x", "b/-": "x", "c/-": "new"}
    assert wh.load("meta.runs", runs([("a", None, "replaced"), ("a", None, "later")]), key=key, mode="replace") == 1
    assert wh.query("select stage from meta.runs where run_id = 'a' and host is null")["stage"].to_list() == ["replaced"]
    assert wh.count_rows("meta.runs") == 4
    with pytest.raises(WarehouseError, match="key column.*pid"):
        wh.load("meta.runs", runs([("d", None, "x")]), key=["run_id", "pid"])


def test_every_lake_table_has_statistics_after_migrating(wh):
    """Tables that never held a row get their (empty) statistics, so planning a query over them
    does not re-read the catalog per column (DuckLake 1.5 caches only tables with statistics)."""
    wh.ensure()
    missing = wh.query("select t.table_name from __ducklake_metadata_lake.ducklake_table t "
                       "left join __ducklake_metadata_lake.ducklake_table_stats s using (table_id) "
                       "where t.end_snapshot is null and s.table_id is null")
    assert missing.height == 0, missing
    assert wh.count_rows("raw.raw_verifications") == 0 and wh.count_rows("meta.dq_results") == 0


def _pairs(rows: list[tuple[str, int, str]]) -> pl.DataFrame:
    return pl.DataFrame({"a": [r[0] for r in rows], "b": [r[1] for r in rows], "v": [r[2] for r in rows]})


def test_keyed_load_of_null_free_keys_is_exact(wh):
    """Keys without NULL (matched with `=`): exact counts on partial overlaps and re-runs, first
    occurrence wins, `replace` swaps."""
    wh.execute("create table meta.test_pairs (a varchar not null, b bigint not null, v varchar)")
    key = ["a", "b"]
    assert wh.load("meta.test_pairs", _pairs([("x", 1, "first"), ("x", 2, "y"), ("y", 1, "z"), ("x", 1, "dup")]),
                   key=key) == 3
    assert wh.load("meta.test_pairs", _pairs([("x", 1, "again"), ("x", 3, "new"), ("y", 1, "again")]), key=key) == 1
    assert wh.load("meta.test_pairs", _pairs([("x", 1, "again"), ("x", 3, "again")]), key=key) == 0
    rows = {(a, b): v for a, b, v in wh.query("select a, b, v from meta.test_pairs").iter_rows()}
    assert rows == {("x", 1): "first", ("x", 2): "y", ("y", 1): "z", ("x", 3): "new"}
    assert wh.load("meta.test_pairs", _pairs([("x", 2, "swapped"), ("z", 9, "added"), ("x", 2, "later")]), key=key,
                   mode="replace") == 2
    rows = {(a, b): v for a, b, v in wh.query("select a, b, v from meta.test_pairs").iter_rows()}
    assert rows == {("x", 1): "first", ("x", 2): "swapped", ("y", 1): "z", ("x", 3): "new", ("z", 9): "added"}


def test_keyed_load_on_one_key_column_counts_null_as_one_key(wh):
    """A one-column key (its repeat check counts the column's distinct values): a repeated NULL
    key keeps its first row, and a stored NULL matches an incoming one."""
    wh.execute("create table meta.test_one (k varchar, v varchar)")
    rows = pl.DataFrame({"k": [None, "a", None], "v": ["first", "x", "dup"]})
    assert wh.load("meta.test_one", rows, key=["k"]) == 2
    assert wh.load("meta.test_one", pl.DataFrame({"k": [None, "b"], "v": ["again", "new"]}), key=["k"]) == 1
    stored = dict(wh.query("select coalesce(k, '-') as k, v from meta.test_one").iter_rows())
    assert stored == {"-": "first", "a": "x", "b": "new"}


def test_keyed_load_maps_stored_keys_back_to_incoming_rows(wh):
    """The key check returns the stored keys among the incoming ones; as many as incoming rows is
    a re-load only when they are distinct (a key stored twice by a plain insert counts once)."""
    wh.execute("create table meta.test_twice (k varchar not null, v varchar)")
    wh.execute("insert into meta.test_twice values ('a', 'plain'), ('a', 'plain again')")
    incoming = pl.DataFrame({"k": ["a", "b"], "v": ["keyed", "keyed"]})
    assert wh.load("meta.test_twice", incoming, key=["k"]) == 1
    assert wh.load("meta.test_twice", incoming, key=["k"]) == 0
    assert wh.load("meta.test_twice", pl.DataFrame({"k": ["c", "b", "d", "a"], "v": "x"}), key=["k"]) == 2
    rows = sorted(wh.query("select k, v from meta.test_twice").iter_rows())
    assert rows == [("a", "plain"), ("a", "plain again"), ("b", "keyed"), ("c", "x"), ("d", "x")]


def test_keyed_load_reads_only_the_files_its_key_range_overlaps(wh):
    """The key check of a keyed load (and the delete of a `replace`) is filtered by the incoming
    keys' range, which DuckLake checks against each data file's min/max: files outside it are not
    read. Measured on the statements `load` runs, with EXPLAIN ANALYZE."""
    import pyarrow as pa

    from warehouse.db import _delete_stored_sql, key_probe, stored_keys_sql

    wh.execute("create table meta.test_ranges (k bigint not null, v varchar)")
    for i in range(4):  # one data file per load: keys [1000 i, 1000 i + 1000)
        batch = pa.table({"k": pa.array(range(i * 1000, (i + 1) * 1000), pa.int64()), "v": ["x" * 40] * 1000})
        assert wh.load("meta.test_ranges", batch, key=["k"]) == 1000
    cases = {"a new range": (range(9000, 9500), 0), "inside the third file": (range(2100, 2200), 1)}
    for name, (keys, files) in cases.items():
        incoming = pa.table({"k": pa.array(keys, pa.int64()), "v": ["y"] * len(keys)})
        probe = key_probe(incoming)
        for statement in (stored_keys_sql("meta.test_ranges", "probe", probe, ["k"]),
                          _delete_stored_sql("meta.test_ranges", "incoming", incoming, ["k"])):
            with wh.connect() as con:
                con.execute("begin transaction")
                con.register("incoming", incoming)
                con.register("probe", probe)
                plan = con.execute("explain analyze " + statement).fetchall()[0][1]
                con.execute("rollback")
            read = [int(n) for n in re.findall(r"Total Files Read: (\d+)", plan)]
            assert read == [files], (name, statement, plan)
    assert wh.load("meta.test_ranges", pa.table({"k": pa.array([2150, 9001], pa.int64()), "v": ["y", "y"]}),
                   key=["k"]) == 1
    assert wh.count_rows("meta.test_ranges") == 4001


def test_a_copied_or_moved_lake_folder_opens_with_its_own_data(wh_path, tmp_path):
    """The catalog keeps the absolute data path the lake was created with; a lake opens with the
    data folder beside its catalog instead, so a folder moved or copied elsewhere reads whole, and
    writing and maintaining the copy leaves the original's files alone."""
    import shutil

    original = Path(wh_path)
    write = ("import sys, datetime, polars as pl; from warehouse import Warehouse; "
             "Warehouse(sys.argv[1]).load('meta.runs', pl.DataFrame({'run_id': [f'r{i}' for i in range(40)], "
             "'flow_name': 'f', 'stage': 's', 'status': 'completed', "
             "'started_at': [datetime.datetime(2026, 1, 1)] * 40}), key=['run_id'])")
    # in a process of its own, so the catalog is whole in its file when copied
    subprocess.run([sys.executable, "-c", write, str(original)], check=True, env=ENV, timeout=180)
    original_files = sorted(p.relative_to(original) for p in (original / "data").rglob("*.parquet"))
    assert original_files, "40 rows are written to a Parquet file, not kept in the catalog"
    copy, moved = tmp_path / "elsewhere" / "copy", tmp_path / "moved"
    shutil.copytree(original, copy)
    shutil.copytree(original, moved)

    twin = Warehouse(copy)
    assert twin.count_rows("meta.runs") == 40
    assert twin.scalar("select count(distinct run_id) from meta.runs") == 40  # reads the Parquet rows themselves
    twin.execute("delete from meta.runs where run_id in ('r1', 'r2')")
    assert twin.load("meta.runs", _runs([f"n{i}" for i in range(30)]), key=["run_id"]) == 30
    maintain(twin, keep_days=0)
    files = twin.query("select data_file from ducklake_list_files('lake', 'runs', schema => 'meta')")["data_file"]
    assert files.len() and all(f.startswith(f"{copy}/data/") for f in files), files.to_list()
    assert twin.count_rows("meta.runs") == 68

    assert sorted(p.relative_to(original) for p in (original / "data").rglob("*.parquet")) == original_files
    shutil.rmtree(original)  # the original path is gone: the moved folder reads its own files
    assert Warehouse(moved).scalar("select count(distinct run_id) from meta.runs") == 40
    attach = Warehouse(moved).attach_statements()
    assert any("OVERRIDE_DATA_PATH" in s and f"{moved}/data/" in s for s in attach)
