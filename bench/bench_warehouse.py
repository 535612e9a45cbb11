"""Warehouse loading: `Warehouse.load` vs a bare DuckDB Arrow insert on the same trace batches.

Run: python bench/bench_warehouse.py [--rows 40000] [--batch 10000]
Writes bench/results/warehouse.json. Both paths write the same Arrow batches of synthetic traces
(bench/synth.py) into a `raw.raw_traces` table of the same schema, one transaction per batch, on
their own fresh DuckDB file. Compared:
  - keyed load (`key=["trace_id"]`, idempotent, what every stage uses) inside one
    `Warehouse.session()` (one open connection, as a shard runs) vs bare `insert ... select` on
    one connection; also without the session (the file reopened for every write);
  - append load (no key: the helper's own overhead) vs the same bare insert;
  - a re-load of every batch (all keys present, 0 rows inserted), the cost of a resumed run.
Ratios are throughput potstill / bare (1.0 = no overhead); best of `--repeats` runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import duckdb
import polars as pl
import pyarrow as pa

from bench.synth import SynthConfig, synth_batch
from warehouse import Warehouse
from warehouse.runs import utcnow


def make_batches(n_rows: int, batch: int) -> list[pa.Table]:
    """Synthetic trace rows, `n_rows` in batches of `batch`: 8k distinct traces re-keyed as needed."""
    base_prompts = 2_000
    _, traces, _ = synth_batch(0, base_prompts, SynthConfig(exact_dup_rate=0, near_dup_rate=0))
    traces = traces.with_columns(pl.lit(utcnow()).cast(pl.Datetime("us")).alias("created_at"),
                                 pl.lit("bench-warehouse").alias("run_id"))
    copies = []
    for copy in range((n_rows + traces.height - 1) // traces.height):
        copies.append(traces.with_columns((pl.col("trace_id") + f"_{copy}").alias("trace_id")))
    rows = pl.concat(copies).head(n_rows)
    return [rows.slice(i, batch).to_arrow() for i in range(0, rows.height, batch)]


def potstill_load(batches: list[pa.Table], path: str, *, key: list[str] | None, mode: str,
                  session: bool = True) -> tuple[float, float, int]:
    """`Warehouse.load` per batch, each its own transaction; with `session`, inside one
    `Warehouse.session()` (one open connection, as a stage's shard runs), else a connection per load."""
    wh = Warehouse(path)
    wh.ensure()  # migrations are a one-time cost, not part of loading

    def load_all() -> int:
        if not session:
            return sum(wh.load("raw.raw_traces", b, key=key, mode=mode) for b in batches)
        with wh.session():
            return sum(wh.load("raw.raw_traces", b, key=key, mode=mode) for b in batches)

    t0 = time.perf_counter()
    inserted = load_all()
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    again = load_all() if key else 0
    reload = time.perf_counter() - t0
    if again:
        raise RuntimeError(f"a keyed re-load inserted {again} rows; it must insert none")
    return first, reload, inserted


def bare_load(batches: list[pa.Table], path: str, ddl: str, *, reconnect: bool = False) -> tuple[float, int]:
    """One `insert ... select` per batch in its own transaction; `reconnect` opens a connection per
    batch as the warehouse helper does (so other processes can take the write lock in between)."""
    con = duckdb.connect(path)
    con.execute("create schema if not exists raw")
    con.execute(ddl)
    t0 = time.perf_counter()
    for b in batches:
        if reconnect:
            con.close()
            con = duckdb.connect(path)
        con.execute("begin transaction")
        con.register("incoming", b)
        con.execute("insert into raw.raw_traces by name select * from incoming")
        con.unregister("incoming")
        con.execute("commit")
    con.close()
    elapsed = time.perf_counter() - t0
    con = duckdb.connect(path)
    n = con.execute("select count(*) from raw.raw_traces").fetchone()[0]
    con.close()
    return elapsed, n


def table_ddl() -> str:
    """The raw.raw_traces DDL as the migrations leave it (read back from a migrated warehouse)."""
    with tempfile.TemporaryDirectory() as tmp:
        wh = Warehouse(str(Path(tmp) / "ddl.duckdb"))
        with wh.connect() as con:
            cols = con.execute("select column_name, data_type, is_nullable from information_schema.columns "
                               "where table_schema = 'raw' and table_name = 'raw_traces' order by ordinal_position").fetchall()
    body = ", ".join(f'"{c}" {t}{"" if n == "YES" else " not null"}' for c, t, n in cols)
    return f"create table raw.raw_traces ({body})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=40_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats; best of each path")
    args = parser.parse_args(argv)
    batches = make_batches(args.rows, args.batch)
    n = sum(b.num_rows for b in batches)
    mb = sum(b.nbytes for b in batches) / 2**20
    ddl = table_ddl()
    best: dict[str, float] = {}
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            bare, bare_rows = bare_load(batches, str(Path(tmp) / "bare.duckdb"), ddl)
            keyed, reload, inserted = potstill_load(batches, str(Path(tmp) / "keyed.duckdb"), key=["trace_id"], mode="ignore")
            append, _, appended = potstill_load(batches, str(Path(tmp) / "append.duckdb"), key=None, mode="append")
            bare_rc, _ = bare_load(batches, str(Path(tmp) / "bare_rc.duckdb"), ddl, reconnect=True)
            keyed_pw, _, _ = potstill_load(batches, str(Path(tmp) / "keyed_pw.duckdb"), key=["trace_id"], mode="ignore",
                                           session=False)
        if not inserted == appended == bare_rows == n:
            raise RuntimeError(f"row counts differ: keyed {inserted}, append {appended}, bare {bare_rows}, expected {n}")
        for name, value in (("keyed", keyed), ("reload", reload), ("append", append), ("bare", bare),
                            ("bare_reconnect", bare_rc), ("keyed_per_write", keyed_pw)):
            best[name] = min(best.get(name, float("inf")), value)
    result = {
        "benchmark": "warehouse",
        "rows": n,
        "batches": len(batches),
        "arrow_mb": round(mb, 1),
        "repeats": args.repeats,
        "bare_insert_s": round(best["bare"], 3),
        "potstill_keyed_load_s": round(best["keyed"], 3),
        "potstill_append_load_s": round(best["append"], 3),
        "potstill_keyed_reload_s": round(best["reload"], 3),
        "bare_insert_reconnect_s": round(best["bare_reconnect"], 3),
        "potstill_keyed_load_connection_per_write_s": round(best["keyed_per_write"], 3),
        "bare_rows_per_s": round(n / best["bare"]),
        "potstill_keyed_rows_per_s": round(n / best["keyed"]),
        "keyed_load_throughput_ratio": round(best["bare"] / best["keyed"], 3),
        "append_load_throughput_ratio": round(best["bare"] / best["append"], 3),
        "reload_vs_bare_insert_ratio": round(best["bare"] / best["reload"], 3),
        # the share of the overhead that is the connection-per-transaction design, not the helper
        "reconnect_throughput_ratio": round(best["bare"] / best["bare_reconnect"], 3),
        # the same keyed load without a session: the file reopened for every write (the old default)
        "keyed_load_connection_per_write_ratio": round(best["bare"] / best["keyed_per_write"], 3),
    }
    print(f"{n} rows ({mb:.0f} MB Arrow) in {len(batches)} batches: bare insert {result['bare_rows_per_s']} rows/s, "
          f"keyed load {result['potstill_keyed_rows_per_s']} rows/s (ratio {result['keyed_load_throughput_ratio']}), "
          f"append ratio {result['append_load_throughput_ratio']}, idempotent re-load {result['potstill_keyed_reload_s']} s")
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "warehouse.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
