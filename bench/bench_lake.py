"""The lake: `Warehouse.load` into a DuckLake vs a bare DuckLake insert; curated views on lake vs file.

Run: python bench/bench_lake.py [--rows 40000] [--batch 10000] [--traces 4000]
Writes bench/results/lake.json.
  - load: the same Arrow batches of synthetic traces (bench/synth.py) go into `raw.raw_traces` of a
    fresh lake, one transaction per batch: the keyed idempotent load every stage uses (writers'
    turn, anti-join on `trace_id`, commit) vs a bare `insert ... select` in a plain DuckDB session
    that attached the same kind of lake. Ratio = bare time / keyed time (1.0 = no overhead).
  - views: the same synthetic warehouse (traces, prompts) in a lake and in a single DuckDB file;
    each curated/staging query is timed (best of `--repeats`) on both; ratio = lake / file time.
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
import pyarrow as pa

from bench.bench_warehouse import make_batches, table_ddl
from bench.synth import SynthConfig, write_synthetic
from warehouse import Warehouse
from warehouse.lake import LakeLocation, lake_ddl

QUERIES = {
    "stg_traces_count": "select count(*) from staging.stg_traces",
    "cur_traces_by_model": "select model_id, count(*), avg(n_completion_tokens) from curated.cur_traces group by 1",
    "cur_candidates_eligible": "select count(*) from curated.cur_candidates",
    "traces_join_prompts": "select p.domain, count(*) from staging.stg_traces t join staging.stg_prompts p "
                           "using (prompt_id) group by 1",
}


def keyed_lake_load(batches: list[pa.Table], root: Path) -> tuple[float, float, int]:
    wh = Warehouse(root)
    wh.ensure()
    t0 = time.perf_counter()
    inserted = sum(wh.load("raw.raw_traces", b, key=["trace_id"]) for b in batches)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    again = sum(wh.load("raw.raw_traces", b, key=["trace_id"]) for b in batches)
    if again:
        raise RuntimeError(f"a keyed re-load inserted {again} rows; it must insert none")
    return first, time.perf_counter() - t0, inserted


def bare_lake_insert(batches: list[pa.Table], root: Path, ddl: str) -> tuple[float, int]:
    """A plain DuckDB session on a fresh lake: `insert ... select` of each Arrow batch, one commit each."""
    where = LakeLocation.parse(str(root))
    where.prepare()
    con = duckdb.connect()
    for statement in where.attach_statements():
        con.execute(statement)
    con.execute("create schema if not exists raw")
    con.execute(lake_ddl(ddl))
    t0 = time.perf_counter()
    for b in batches:
        con.execute("begin transaction")
        con.register("incoming", b)
        con.execute("insert into raw.raw_traces by name select * from incoming")
        con.unregister("incoming")
        con.execute("commit")
    elapsed = time.perf_counter() - t0
    n = con.execute("select count(*) from raw.raw_traces").fetchone()[0]
    con.close()
    return elapsed, n


def time_queries(wh: Warehouse, repeats: int) -> dict[str, float]:
    times: dict[str, float] = {}
    for name, sql in QUERIES.items():
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            wh.query(sql)
            best = min(best, time.perf_counter() - t0)
        times[name] = best
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=40_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--traces", type=int, default=4_000, help="synthetic traces for the view queries")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    batches = make_batches(args.rows, args.batch)
    n = sum(b.num_rows for b in batches)
    ddl = table_ddl()
    best: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(max(1, args.repeats - 1)):
            keyed, reload, inserted = keyed_lake_load(batches, Path(tmp) / f"keyed{rep}")
            bare, bare_rows = bare_lake_insert(batches, Path(tmp) / f"bare{rep}", ddl)
            if not inserted == bare_rows == n:
                raise RuntimeError(f"row counts differ: keyed {inserted}, bare {bare_rows}, expected {n}")
            for name, value in (("keyed", keyed), ("reload", reload), ("bare", bare)):
                best[name] = min(best.get(name, float("inf")), value)
        lake, single = Warehouse(Path(tmp) / "views-lake"), Warehouse(Path(tmp) / "views.duckdb")
        for wh in (lake, single):
            write_synthetic(wh, args.traces, SynthConfig())
        lake_times, file_times = time_queries(lake, args.repeats), time_queries(single, args.repeats)
    views = {name: {"lake_s": round(lake_times[name], 4), "file_s": round(file_times[name], 4),
                    "lake_vs_file_time_ratio": round(lake_times[name] / file_times[name], 2)} for name in QUERIES}
    result = {
        "benchmark": "lake",
        "duckdb": duckdb.__version__,
        "rows": n,
        "batches": len(batches),
        "bare_lake_insert_s": round(best["bare"], 3),
        "potstill_keyed_lake_load_s": round(best["keyed"], 3),
        "potstill_keyed_lake_reload_s": round(best["reload"], 3),
        "keyed_load_vs_bare_lake_insert_ratio": round(best["bare"] / best["keyed"], 3),
        "view_traces": args.traces,
        "views": views,
    }
    print(f"{n} rows in {len(batches)} batches: bare DuckLake insert {best['bare']:.2f} s, keyed lake load "
          f"{best['keyed']:.2f} s (ratio {result['keyed_load_vs_bare_lake_insert_ratio']}), idempotent re-load "
          f"{best['reload']:.2f} s")
    for name, row in views.items():
        print(f"{name}: lake {row['lake_s']:.4f} s, file {row['file_s']:.4f} s, lake/file {row['lake_vs_file_time_ratio']}")
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "lake.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
