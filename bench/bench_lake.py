"""The lake: `Warehouse.load` into a DuckLake vs a bare DuckLake insert; curated views on lake vs file.

Run: python bench/bench_lake.py [--rows 40000] [--batch 10000] [--existing 0] [--traces 4000] [--repeats 7]
Writes bench/results/lake.json.
  - load: the same Arrow batches of synthetic traces (bench/synth.py) go into `raw.raw_traces`, one
    transaction per batch: the keyed idempotent load every stage uses (`Warehouse.load(...,
    key=["trace_id"])`: writers' turn, the key check (key columns only), insert of the new rows,
    commit) vs a bare `insert into raw.raw_traces by name select * from incoming` in a plain DuckDB
    session that attached the lake with the statements `potstill sql --attach-sql` prints. Both
    sides start from the same state: a lake freshly migrated by `Warehouse.ensure()` (every table,
    view and table statistic of the schema) holding the same `--existing` trace rows (0: an empty
    table), loaded untimed by a plain insert, and a session that has counted the table's rows once
    and written one Parquet file outside the lake (untimed: an instance's first write costs more).
    Each repetition runs both on fresh lakes, batch by
    batch in alternating order (keyed, bare, bare, keyed, ...: a busy machine's ups and downs fall
    on both); ratio = bare time / keyed time of that repetition (1.0 = no overhead), also for
    this process's CPU time. Reported: the
    median ratio and its spread (min, max) over `--repeats` repetitions, and the time of an
    idempotent re-load of the same batches (every key present, nothing inserted).
  - views: the same synthetic warehouse (traces, prompts; the signal tables empty) in a lake and in
    a single DuckDB file; each curated/staging query runs `--repeats` times on both, alternating;
    ratio = lake / file time per repetition, median and spread reported.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import duckdb
import pyarrow as pa

from bench.bench_warehouse import make_batches
from bench.synth import SynthConfig, write_synthetic
from warehouse import Warehouse
from warehouse.lake import LakeLocation

QUERIES = {
    "stg_traces_count": "select count(*) from staging.stg_traces",
    "cur_traces_by_model": "select model_id, count(*), avg(n_completion_tokens) from curated.cur_traces group by 1",
    "cur_candidates_eligible": "select count(*) from curated.cur_candidates",
    "traces_join_prompts": "select p.domain, count(*) from staging.stg_traces t join staging.stg_prompts p "
                           "using (prompt_id) group by 1",
}


def fresh_lake(root: Path, existing: list[pa.Table]) -> None:
    """A migrated lake (`Warehouse.ensure()`) whose `raw.raw_traces` holds the `existing` rows."""
    Warehouse(root).ensure()
    con = plain_session(root)
    for b in existing:
        con.register("existing", b)
        con.execute("insert into raw.raw_traces by name select * from existing")
        con.unregister("existing")
    con.close()


def plain_session(root: Path) -> duckdb.DuckDBPyConnection:
    """A plain DuckDB session with the lake attached by the statements `potstill sql --attach-sql` prints."""
    con = duckdb.connect()
    for statement in LakeLocation.parse(str(root)).attach_statements():
        con.execute(statement)
    return con


def warm_writer(con: duckdb.DuckDBPyConnection, batch: pa.Table, scratch: Path) -> None:
    """One untimed Parquet write of `batch` to `scratch` (outside the lake) in `con`'s DuckDB
    instance: the first write of an instance costs ~10 ms more than the next (its threads and
    buffers start cold), which would fall on whichever side loads first."""
    con.register("warm_batch", batch)
    con.execute(f"copy (select * from warm_batch) to '{scratch}' (format parquet)")
    con.unregister("warm_batch")
    scratch.unlink()


def paired_load(batches: list[pa.Table], keyed_root: Path, bare_root: Path, first: str) -> dict[str, float]:
    """Both loads of one repetition, batch by batch in alternating order (a busy machine's ups and
    downs fall on both): `Warehouse.load(..., key=["trace_id"])` into `keyed_root`, and a bare
    `insert ... select` of the same Arrow batch in a plain DuckDB session on `bare_root`, each batch
    its own transaction on both sides, after each side's session counted the table's rows (untimed).
    Then an idempotent keyed re-load of every batch.
    Returns wall and CPU seconds (this process) per side, the re-load's wall seconds, rows inserted."""
    wh = Warehouse(keyed_root)
    wh.ensure()
    keyed_before = wh.count_rows("raw.raw_traces")  # both sessions have read the table once before the clock
    con = plain_session(bare_root)
    before = con.execute("select count(*) from raw.raw_traces").fetchone()[0]
    with wh.connect() as own:  # ... and written one Parquet file outside the lake (see `warm_writer`)
        warm_writer(own, batches[0], keyed_root.parent / f"{keyed_root.name}-warm.parquet")
    warm_writer(con, batches[0], bare_root.parent / f"{bare_root.name}-warm.parquet")

    def keyed(b: pa.Table) -> int:
        return wh.load("raw.raw_traces", b, key=["trace_id"])

    def bare(b: pa.Table) -> int:
        con.execute("begin transaction")
        con.register("incoming", b)
        con.execute("insert into raw.raw_traces by name select * from incoming")
        con.unregister("incoming")
        con.execute("commit")
        return b.num_rows

    out = {"keyed": 0.0, "keyed_cpu": 0.0, "bare": 0.0, "bare_cpu": 0.0, "keyed_rows": 0}
    sides = {"keyed": keyed, "bare": bare}
    order = [first, "bare" if first == "keyed" else "keyed"]
    for i, b in enumerate(batches):
        for side in order if i % 2 == 0 else order[::-1]:
            t0, c0 = time.perf_counter(), time.process_time()
            rows = sides[side](b)
            out[side] += time.perf_counter() - t0
            out[f"{side}_cpu"] += time.process_time() - c0
            if side == "keyed":
                out["keyed_rows"] += rows
    out["bare_rows"] = con.execute("select count(*) from raw.raw_traces").fetchone()[0] - before
    if wh.count_rows("raw.raw_traces") - keyed_before != out["keyed_rows"]:
        raise RuntimeError("the keyed load's inserted count differs from the rows its table gained")
    con.close()
    t0 = time.perf_counter()
    again = sum(keyed(b) for b in batches)
    if again:
        raise RuntimeError(f"a keyed re-load inserted {again} rows; it must insert none")
    out["reload"] = time.perf_counter() - t0
    return out


def time_query(wh: Warehouse, sql: str) -> float:
    t0 = time.perf_counter()
    wh.query(sql)
    return time.perf_counter() - t0


def spread(values: list[float], digits: int = 3) -> dict:
    """Median, min and max of `values`, rounded."""
    return {"median": round(statistics.median(values), digits), "min": round(min(values), digits),
            "max": round(max(values), digits)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=40_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--existing", type=int, default=0,
                        help="trace rows both sides' table holds before the timed load (same rows on both)")
    parser.add_argument("--traces", type=int, default=4_000, help="synthetic traces for the view queries")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    every = make_batches(args.existing + args.rows, args.batch)
    existing, batches = every[:args.existing // args.batch], every[args.existing // args.batch:]
    if args.existing % args.batch:
        parser.error("--existing must be a multiple of --batch")
    n = sum(b.num_rows for b in batches)
    runs: dict[str, list[float]] = {"keyed": [], "reload": [], "bare": [], "ratio": [], "cpu_ratio": []}
    views: dict[str, dict[str, list[float]]] = {name: {"lake": [], "file": [], "ratio": []} for name in QUERIES}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeats):
            keyed_root, bare_root = Path(tmp) / f"keyed{rep}", Path(tmp) / f"bare{rep}"
            for root in (keyed_root, bare_root):
                fresh_lake(root, existing)
            got = paired_load(batches, keyed_root, bare_root, first="keyed" if rep % 2 == 0 else "bare")
            if not got["keyed_rows"] == got["bare_rows"] == n:
                raise RuntimeError(f"row counts differ: keyed {got['keyed_rows']}, bare {got['bare_rows']}, expected {n}")
            for name, value in (("keyed", got["keyed"]), ("reload", got["reload"]), ("bare", got["bare"]),
                                ("ratio", got["bare"] / got["keyed"]), ("cpu_ratio", got["bare_cpu"] / got["keyed_cpu"])):
                runs[name].append(value)
        lake, single = Warehouse(Path(tmp) / "views-lake"), Warehouse(Path(tmp) / "views.duckdb")
        for wh in (lake, single):
            write_synthetic(wh, args.traces, SynthConfig())
            for sql in QUERIES.values():  # warm: the first query of a process opens the warehouse
                wh.query(sql)
        for rep in range(args.repeats):
            for name, sql in QUERIES.items():
                pair = (lake, single) if rep % 2 == 0 else (single, lake)
                times = {("lake" if wh.is_lake else "file"): time_query(wh, sql) for wh in pair}
                views[name]["lake"].append(times["lake"])
                views[name]["file"].append(times["file"])
                views[name]["ratio"].append(times["lake"] / times["file"])
    result = {
        "benchmark": "lake",
        "duckdb": duckdb.__version__,
        "rows": n,
        "existing_rows": sum(b.num_rows for b in existing),
        "start_state": "a lake migrated by Warehouse.ensure() holding existing_rows trace rows, the same on both sides",
        "batches": len(batches),
        "repeats": args.repeats,
        "bare_lake_insert_s": spread(runs["bare"]),
        "potstill_keyed_lake_load_s": spread(runs["keyed"]),
        "potstill_keyed_lake_reload_s": spread(runs["reload"]),
        "keyed_load_vs_bare_lake_insert_ratio": spread(runs["ratio"]),
        "keyed_load_vs_bare_lake_insert_cpu_ratio": spread(runs["cpu_ratio"]),
        "load_repetitions": {name: [round(v, 4) for v in values] for name, values in runs.items()},
        "view_traces": args.traces,
        "views": {name: {"lake_s": spread(v["lake"], 4), "file_s": spread(v["file"], 4),
                         "lake_vs_file_time_ratio": spread(v["ratio"], 2)} for name, v in views.items()},
    }
    ratio = result["keyed_load_vs_bare_lake_insert_ratio"]
    print(f"{n} rows in {len(batches)} batches into a migrated lake holding {result['existing_rows']} rows, {args.repeats} repetitions (median [min-max]): bare DuckLake insert "
          f"{_fmt(result['bare_lake_insert_s'])} s, keyed lake load {_fmt(result['potstill_keyed_lake_load_s'])} s, "
          f"ratio {_fmt(ratio)} (CPU time {_fmt(result['keyed_load_vs_bare_lake_insert_cpu_ratio'])}); idempotent re-load {_fmt(result['potstill_keyed_lake_reload_s'])} s")
    for name, row in result["views"].items():
        print(f"{name}: lake {_fmt(row['lake_s'])} s, file {_fmt(row['file_s'])} s, "
              f"lake/file {_fmt(row['lake_vs_file_time_ratio'])}")
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "lake.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


def _fmt(stats: dict) -> str:
    return f"{stats['median']} [{stats['min']}-{stats['max']}]"


if __name__ == "__main__":
    raise SystemExit(main())
