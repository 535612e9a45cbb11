"""A lake with a real PostgreSQL catalog (a cluster started for the test in a temp dir, unix socket):
4 writer processes commit shards while a reader queries; every row lands exactly once. Writers on
any machine take turns through a PostgreSQL advisory lock, which a killed writer does not leave behind."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from warehouse import Warehouse, WarehouseBusyError

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}
HAVE_PG = shutil.which("initdb") is not None or any(Path("/usr/lib/postgresql").glob("*/bin/initdb"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def pg_lake():
    """One cluster for the module (its tests write different tables); the DSN of its lake."""
    if not HAVE_PG:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    root = Path(tempfile.mkdtemp(prefix="pglake-"))  # short: a unix socket path is limited to ~100 bytes
    root.chmod(0o755)  # as root the cluster runs as the `postgres` user, who must reach its folder
    env = {**ENV, "POTSTILL_LAKE_SERVER_DIR": str(root / "srv"), "POTSTILL_LAKE_PORT": str(_free_port()),
           "POTSTILL_LAKE_DATA": str(root / "data")}
    script = REPO / "deployments" / "lake_server.sh"
    started = subprocess.run(["bash", str(script), "start"], check=False, capture_output=True, text=True, env=env, timeout=120)
    assert started.returncode == 0, started.stderr
    try:
        yield started.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run(["bash", str(script), "stop"], check=False, capture_output=True, env=env, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


WRITER = textwrap.dedent(
    """
    import sys
    from datetime import datetime
    import polars as pl
    from warehouse import Warehouse
    wh = Warehouse(sys.argv[1])
    worker, shards, per_shard = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    for shard in range(shards):
        start = int(sys.argv[5]) + shard * per_shard
        ids = [f"r{k:05d}" for k in range(start, start + per_shard)]
        frame = pl.DataFrame({"run_id": ids, "flow_name": worker, "stage": f"shard{shard}", "status": "completed",
                              "started_at": [datetime(2026, 1, 1)] * len(ids)})
        wh.load("meta.runs", frame, key=["run_id"])
    print("ok", flush=True)
    """
)

READER = textwrap.dedent(
    """
    import sys, time
    from warehouse import Warehouse
    wh = Warehouse(sys.argv[1], read_only=True)
    counts = []
    while True:
        n = wh.scalar("select count(*) from meta.runs where flow_name like 'w%'")
        counts.append(n)
        if n >= int(sys.argv[2]):
            break
        time.sleep(0.1)
    print(len(counts), max(counts), flush=True)
    """
)


def test_postgres_catalog_with_four_writers_and_a_reader(pg_lake):
    wh = Warehouse(pg_lake)
    assert wh.lake is not None and wh.lake.kind == "postgres"
    wh.ensure()
    shards, per_shard = 5, 40
    expected = 4 * shards * per_shard
    reader = subprocess.Popen([sys.executable, "-c", READER, pg_lake, str(expected)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=ENV)
    # writer 3 repeats writer 2's range: keyed loads must keep every run_id once
    starts = [0, shards * per_shard, 2 * shards * per_shard, 2 * shards * per_shard]
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, pg_lake, f"w{i}", str(shards), str(per_shard), str(s)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
               for i, s in enumerate(starts)]
    extra = subprocess.Popen([sys.executable, "-c", WRITER, pg_lake, "w4", str(shards), str(per_shard),
                              str(3 * shards * per_shard)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=ENV)
    for proc in [*writers, extra]:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0 and out.strip() == "ok", err
    out, err = reader.communicate(timeout=120)
    assert reader.returncode == 0, err
    polls, seen = map(int, out.split())
    assert polls >= 1 and seen == expected
    assert wh.scalar("select count(*) from meta.runs where flow_name like 'w%'") == expected
    assert wh.scalar("select count(distinct run_id) from meta.runs where flow_name like 'w%'") == expected


HOLDER = textwrap.dedent(
    """
    import sys, time
    from warehouse import Warehouse
    wh = Warehouse(sys.argv[1])
    with wh._writer_turn():
        print("held", flush=True)
        time.sleep(120)
    """
)


def test_writers_take_turns_through_a_postgres_advisory_lock(pg_lake):
    """A writer in another process (as on another machine: no lock file, nothing shared but the
    catalog) holds the writers' turn: a writer here waits and then fails naming the advisory lock;
    once the holder is killed, PostgreSQL drops its lock with its connection and the write goes through."""
    wh = Warehouse(pg_lake, writer_timeout_s=0.5)
    wh.ensure()
    wh.execute("create table meta.lock_probe (note varchar)")
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, pg_lake], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        assert holder.stdout.readline().strip() == "held", holder.stderr.read()
        t0 = time.monotonic()
        with pytest.raises(WarehouseBusyError, match="PostgreSQL advisory lock"):
            wh.execute("insert into meta.lock_probe values ('blocked')")
        assert time.monotonic() - t0 < 10
        assert wh.scalar("select count(*) from meta.lock_probe") == 0  # readers never wait
    finally:
        holder.kill()
        holder.communicate(timeout=30)
    Warehouse(pg_lake, writer_timeout_s=30).execute("insert into meta.lock_probe values ('after')")
    assert wh.scalar("select list(note) from meta.lock_probe") == ["after"]
    assert wh.lake is not None and wh.lake.lock_path is None
    assert not list(Path(wh.lake.data_path).rglob(".potstill-write.lock"))


@pytest.mark.slow  # the CLI's start-up: ~10 s idle, 40 s on a busy machine
def test_status_marks_abandoned_runs_of_a_postgres_lake(pg_lake):
    """`potstill status` migrates a `postgresql://` lake and marks runs whose process died, as for a folder."""
    from datetime import datetime

    import polars as pl

    dead_pid = subprocess.Popen([sys.executable, "-c", "pass"])  # a process that has ended
    dead_pid.wait()
    wh = Warehouse(pg_lake)
    wh.load("meta.runs", pl.DataFrame({"run_id": ["dead-run"], "flow_name": "status-probe", "stage": "score",
                                       "status": "running", "started_at": [datetime(2026, 1, 1)],
                                       "pid": [dead_pid.pid], "host": [socket.gethostname()]}), key=["run_id"])
    proc = subprocess.run([sys.executable, "-m", "flows.cli", "--warehouse", pg_lake, "status", "--json"],
                          capture_output=True, text=True, timeout=180, env=ENV, check=False)
    assert proc.returncode == 0, proc.stderr
    status = json.loads(proc.stdout)
    assert status["tables"]["meta.runs"] >= 1
    assert wh.scalar("select status from meta.runs where run_id = 'dead-run'") == "abandoned"
