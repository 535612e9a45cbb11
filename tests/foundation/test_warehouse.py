"""Warehouse helper: migrations (fresh, re-run, tampered), idempotent loads, the write lock."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import textwrap
import time
from datetime import datetime

import polars as pl
import pytest

from warehouse import MigrationError, Warehouse, WarehouseBusyError
from warehouse.db import MIGRATIONS_DIR, SUPERSEDED_CHECKSUMS, VIEWS_DIR, discover_migrations, sql_statements_text

REPO = __import__("pathlib").Path(__file__).resolve().parents[2]


def test_fresh_warehouse_has_every_layer_and_contract_table(wh):
    applied = wh.query("select version from meta.schema_migrations order by version")["version"].to_list()
    assert applied == [m.version for m in discover_migrations()]
    schemas = set(wh.query("select schema_name from information_schema.schemata")["schema_name"])
    assert {"raw", "staging", "curated", "meta"} <= schemas
    for table, cols in {
        "meta.runs": ["run_id", "flow_name", "stage", "config_fingerprint", "status", "started_at", "finished_at", "n_in", "n_out"],
        "raw.raw_prompts": ["prompt_id", "source", "domain", "problem_text", "reference_answer", "tests_json", "split", "ingested_at", "run_id"],
        "raw.raw_traces": ["trace_id", "prompt_id", "model_id", "origin", "sample_index", "completion_text", "reasoning_text",
                           "answer_text", "n_completion_tokens", "finish_reason", "is_truncated", "created_at", "run_id"],
        "raw.raw_rejections": ["run_id", "stage", "source_ref", "reason_code", "detail", "payload", "rejected_at"],
    }.items():
        assert set(cols) <= set(wh.columns(table)), table
    assert wh.scalar("select count(*) from staging.stg_prompts") == 0


def test_rerun_applies_nothing(wh):
    wh.ensure()
    assert wh.migrate() == []


def _copy_schema(tmp_path):
    migrations, views = tmp_path / "migrations", tmp_path / "views"
    shutil.copytree(MIGRATIONS_DIR, migrations)
    shutil.copytree(VIEWS_DIR, views)
    return migrations, views


def test_tampered_migration_is_refused(tmp_path):
    migrations, views = _copy_schema(tmp_path)
    wh = Warehouse(tmp_path / "w.duckdb", migrations_dir=migrations, views_dir=views)
    wh.migrate()
    target = migrations / "0003_create_raw_prompts.sql"
    target.write_text(target.read_text() + "\ncreate table raw.edited (a integer);\n")
    with pytest.raises(MigrationError, match="0003_create_raw_prompts.sql was edited after it was applied"):
        wh.migrate()


def test_comment_and_layout_edits_keep_a_migration_applied(tmp_path):
    """A migration's checksum covers its statements: comments and indentation may be edited."""
    migrations, views = _copy_schema(tmp_path)
    wh = Warehouse(tmp_path / "w.duckdb", migrations_dir=migrations, views_dir=views)
    wh.migrate()
    target = migrations / "0003_create_raw_prompts.sql"
    target.write_text("-- a new comment /* with */ 'quotes'\n" + target.read_text().replace("\n", "\n    ") + "\n")
    assert wh.migrate() == []
    target.write_text(target.read_text().replace("raw_prompts", "raw_prompts2", 1))
    with pytest.raises(MigrationError, match="was edited after it was applied"):
        wh.migrate()


def test_statements_text_keeps_quoted_text_and_drops_comments():
    sql = "select 'a -- not a comment' , \"b  /* x */\" -- gone\nfrom   t /* gone */ where x = 'it''s  2'"
    assert sql_statements_text(sql) == "select 'a -- not a comment' , \"b  /* x */\" from t where x = 'it''s  2'"
    assert sql_statements_text("select 1;") != sql_statements_text("select 2;")


def test_checksums_recorded_by_earlier_versions_are_accepted():
    by_version = {m.version: m for m in discover_migrations()}
    for m in by_version.values():  # whole-file checksums, as recorded before comments were left out
        assert m.matches(hashlib.sha256(m.sql.encode()).hexdigest())
    for version, old in SUPERSEDED_CHECKSUMS.items():  # comment-only edits since
        assert all(by_version[version].matches(c) for c in old)
    assert not by_version[3].matches(SUPERSEDED_CHECKSUMS[40][0])


def test_new_migration_is_applied_forward_only(tmp_path):
    migrations, views = _copy_schema(tmp_path)
    wh = Warehouse(tmp_path / "w.duckdb", migrations_dir=migrations, views_dir=views)
    wh.migrate()
    (migrations / "9999_add_prompt_note.sql").write_text("alter table raw.raw_prompts add column note varchar;")
    assert wh.migrate() == ["9999_add_prompt_note.sql"]
    assert "note" in wh.columns("raw.raw_prompts")
    (migrations / "bad-name.sql").write_text("select 1;")
    with pytest.raises(MigrationError, match="NNNN_<verb>_<object>.sql"):
        wh.migrate()


def _runs(ids):
    return pl.DataFrame({"run_id": ids, "flow_name": "f", "stage": "s", "status": "running",
                         "started_at": [datetime(2026, 1, 1)] * len(ids)})


@pytest.mark.parametrize(
    ("mode", "second_inserted", "final_status"),
    [("ignore", 0, "running"), ("replace", 2, "completed")],
)
def test_load_is_idempotent_by_key(wh, mode, second_inserted, final_status):
    assert wh.load("meta.runs", _runs(["a", "b", "a"]), key=["run_id"]) == 2  # repeated key in one batch kept once
    again = _runs(["a", "b"]).with_columns(pl.lit("completed").alias("status"))
    assert wh.load("meta.runs", again, key=["run_id"], mode=mode) == second_inserted
    assert wh.query("select distinct status from meta.runs")["status"].to_list() == [final_status]
    assert wh.scalar("select count(*) from meta.runs") == 2


def test_failed_transaction_rolls_back(wh):
    with pytest.raises(RuntimeError), wh.transaction() as con:
        wh.load("meta.runs", _runs(["x"]), con=con)
        raise RuntimeError("boom")
    assert wh.scalar("select count(*) from meta.runs") == 0


HOLDER = textwrap.dedent(
    """
    import sys, time, duckdb
    con = duckdb.connect(sys.argv[1])
    con.execute("begin transaction")
    con.execute("insert into meta.runs (run_id, flow_name, stage, status, started_at) values ('holder', 'f', 's', 'running', now())")
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    con.execute("commit")
    con.close()
    """
)


def _hold_lock(path, seconds):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_second_writer_gets_clear_busy_error(file_wh_path):
    wh_path = file_wh_path
    wh = Warehouse(wh_path)
    wh.ensure()
    proc = _hold_lock(wh_path, 4)
    try:
        busy = Warehouse(wh_path, busy_timeout_s=0.3)
        with pytest.raises(WarehouseBusyError, match=rf"warehouse is busy: held by PID {proc.pid}; retry or point --warehouse elsewhere"):
            busy.load("meta.runs", _runs(["mine"]), key=["run_id"])
    finally:
        proc.wait(timeout=30)
    # the holder's commit and the file are intact; a retry now succeeds
    assert wh.load("meta.runs", _runs(["mine"]), key=["run_id"]) == 1
    assert sorted(wh.query("select run_id from meta.runs")["run_id"]) == ["holder", "mine"]


def test_second_writer_waits_and_succeeds(file_wh_path):
    wh_path = file_wh_path
    wh = Warehouse(wh_path)
    wh.ensure()
    proc = _hold_lock(wh_path, 1)
    started = time.monotonic()
    patient = Warehouse(wh_path, busy_timeout_s=30)
    assert patient.load("meta.runs", _runs(["waited"]), key=["run_id"]) == 1
    proc.wait(timeout=30)
    assert time.monotonic() - started >= 0.5
    assert wh.scalar("select count(*) from meta.runs") == 2
