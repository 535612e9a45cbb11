"""Scale run: synthetic traces through verify -> dedup -> score -> select -> publish, 100k to 1M traces.

Run: python bench/bench_scale.py [--sizes 100000 1000000] [--workers N]   (`make bench-scale`)
Each size runs in its own child process on a fresh temp warehouse (the plain stage functions, no
Prefect server); the parent samples the RSS of that child and all its descendants (math-verify
workers included) every 0.2 s. Reports wall and CPU seconds per 1k traces per stage at each size,
the growth of that cost from the smaller to the larger size (1.0 = linear; judged on CPU time,
which other jobs on a shared machine do not inflate), and peak RSS; writes
bench/results/scale.json. Acceptance: CPU-seconds per 1k traces flat (growth <= 1.1 from the
smallest to the largest size), peak RSS < 8 GB. Also stored, as the divergence stage would store
them for one scoring model (synthetic, no model run; `bench.synth.write_synthetic_logprobs`):
per-token log-probs and sentence scores, so the warehouse bytes per trace are reported for the
text (prompts + traces), the token log-probs and the sentence scores separately (each table copied
alone into a fresh DuckDB file and measured).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Self

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

RSS_LIMIT_MB = 8192
GROWTH_LIMIT = 1.1  # CPU-seconds per 1k traces, largest size over smallest
STAGES = ("verify", "dedup", "score", "select_publish")


def tree_rss_mb(pid: int) -> float:
    """RSS of a process and all its descendants, in MiB (processes that vanish mid-walk are skipped)."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total / 2**20


class PeriodicSampler:
    """Calls `measure()` on entry, every `every_s` seconds on a background thread, and on exit; keeps the values."""

    def __init__(self, measure: Callable[[], float], every_s: float) -> None:
        self.measure, self.every_s, self.samples = measure, every_s, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.samples.append(self.measure())

    def __enter__(self) -> Self:
        self.samples.append(self.measure())
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(self.measure())


class PeakSampler(PeriodicSampler):
    """The peak tree RSS of `pid` (MB), sampled every `every_s` seconds."""

    def __init__(self, pid: int, every_s: float = 0.2) -> None:
        super().__init__(lambda: tree_rss_mb(pid), every_s)

    @property
    def peak_mb(self) -> float:
        return max(self.samples, default=0.0)


class CpuClock:
    """CPU seconds of this process and all its descendants (verification workers and their zygote,
    sampled every 0.2 s, last value kept per process): unlike wall time, it does not grow when other
    jobs share the machine. A process that exits between samples loses at most 0.2 s."""

    def __init__(self, every_s: float = 0.2) -> None:
        import psutil

        self._me = psutil.Process()
        self._seen: dict[int, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        threading.Thread(target=self._run, args=(every_s,), daemon=True).start()

    def _sample(self) -> None:
        import psutil

        for proc in self._me.children(recursive=True):
            try:
                times = proc.cpu_times()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            with self._lock:
                self._seen[proc.pid] = times.user + times.system

    def _run(self, every_s: float) -> None:
        while not self._stop.wait(every_s):
            self._sample()

    def __call__(self) -> float:
        self._sample()
        own = self._me.cpu_times()
        with self._lock:
            return own.user + own.system + sum(self._seen.values())


def run_one(n_traces: int, workers: int, out: Path) -> None:
    """Child process: synth -> verify -> dedup -> score -> select+publish on a fresh warehouse."""
    from bench.synth import SynthConfig, write_synthetic, write_synthetic_logprobs
    from flows.dedup import run_dedup
    from flows.score import run_score
    from flows.select import run_select
    from flows.verify import run_verify
    from tasks.select.policies import SelectionConfig
    from warehouse import Warehouse

    result: dict = {"traces_requested": n_traces, "workers": workers, "stages": {}}
    cpu_seconds = CpuClock()
    with tempfile.TemporaryDirectory(prefix="potstill-scale-") as tmp:
        path = str(Path(tmp) / "scale.duckdb")
        wh = Warehouse(path)

        def timed(name: str, fn):
            t0, c0 = time.perf_counter(), cpu_seconds()
            stats = fn()
            result["stages"][name] = {"wall_s": round(time.perf_counter() - t0, 2), "cpu_s": round(cpu_seconds() - c0, 2),
                                      **{k: stats.get(k) for k in ("n_in", "n_out", "n_rejected")}}
            print(f"  [{n_traces}] {name}: {result['stages'][name]}", flush=True)
            return stats

        t0 = time.perf_counter()
        result["synthetic"] = write_synthetic(wh, n_traces, SynthConfig())
        result["synth_wall_s"] = round(time.perf_counter() - t0, 2)
        result["traces"] = result["synthetic"]["traces"]
        print(f"  [{n_traces}] synthetic: {result['synthetic']} in {result['synth_wall_s']} s", flush=True)
        verify = timed("verify", lambda: run_verify(warehouse=path, workers=workers))
        result["verify_by_status"] = verify.get("by_status")
        dedup = timed("dedup", lambda: run_dedup(warehouse=path))
        result["dedup_trace"] = {k: dedup.get("trace", {}).get(k) for k in ("n_items", "n_duplicates", "near")}
        timed("score", lambda: run_score(warehouse=path))
        budget = max(1, result["synthetic"]["prompts"] // 2)
        selected = timed("select_publish", lambda: run_select("random", SelectionConfig(budget=budget),
                                                              warehouse=path, dataset_name="scale-run"))
        result["dataset"] = {k: (selected.get("dataset") or {}).get(k) for k in ("spec", "n_rows", "status")}
        t0 = time.perf_counter()
        result["logprobs_written"] = write_synthetic_logprobs(wh)
        result["logprob_store_wall_s"] = round(time.perf_counter() - t0, 2)
        print(f"  [{n_traces}] token log-probs + sentence scores: {result['logprobs_written']} "
              f"in {result['logprob_store_wall_s']} s", flush=True)
        result["warehouse_mb"] = round(Path(path).stat().st_size / 2**20, 1)
        result["bytes_per_trace"] = table_bytes_per_trace(path, result["traces"], Path(tmp))
    out.write_text(json.dumps(result, default=str))


TABLE_GROUPS = {
    "text": ("raw.raw_prompts", "raw.raw_traces"),
    "token_logprobs": ("raw.raw_token_logprobs",),
    "sentence_scores": ("raw.raw_sentence_scores",),
}


def table_bytes_per_trace(path: str, n_traces: int, tmp: Path) -> dict:
    """Bytes per trace of each table group: the group's tables copied alone into a fresh DuckDB file
    (DuckDB's own compression, checkpointed), file size over the trace count; also the whole file."""
    import duckdb

    out = {"warehouse_file": round(Path(path).stat().st_size / max(n_traces, 1), 1)}
    con = duckdb.connect()
    try:
        con.execute(f"attach '{path}' as src (read_only)")
        for group, tables in TABLE_GROUPS.items():
            target = tmp / f"bytes-{group}.duckdb"
            con.execute(f"attach '{target}' as g")
            for i, table in enumerate(tables):
                con.execute(f"create table g.t{i} as select * from src.{table}")
            con.execute("detach g")
            out[group] = round(target.stat().st_size / max(n_traces, 1), 1)
            target.unlink()
    finally:
        con.close()
    return out


def measure(n_traces: int, workers: int) -> dict:
    """Run one size in a child process and sample its process tree's RSS."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "one.json"
        env = {**os.environ, "PYTHONPATH": str(REPO), "PREFECT_LOGGING_LEVEL": "WARNING"}
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, __file__, "--one", str(n_traces), "--workers", str(workers),
                                 "--out", str(out)], env=env, cwd=REPO)
        with PeakSampler(proc.pid) as sampler:
            code = proc.wait()
        wall = time.perf_counter() - t0
        if code != 0:
            raise SystemExit(f"scale run at {n_traces} traces failed (exit {code})")
        result = json.loads(out.read_text())
    n = result["traces"]
    pipeline_s = sum(result["stages"][s]["wall_s"] for s in STAGES)
    result.update(
        pipeline_wall_s=round(pipeline_s, 2),
        process_wall_s=round(wall, 2),
        s_per_1k_traces=round(1000 * pipeline_s / n, 3),
        stage_s_per_1k_traces={s: round(1000 * result["stages"][s]["wall_s"] / n, 3) for s in STAGES},
        cpu_s_per_1k_traces=round(1000 * sum(result["stages"][s]["cpu_s"] for s in STAGES) / n, 3),
        stage_cpu_s_per_1k_traces={s: round(1000 * result["stages"][s]["cpu_s"] / n, 3) for s in STAGES},
        peak_rss_mb=round(sampler.peak_mb, 1),
        load_avg=[round(x, 2) for x in os.getloadavg()],
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="math-verify worker processes")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "results" / "scale.json")
    parser.add_argument("--merge", action="store_true",
                        help="keep the runs already in --results (other sizes) and add these; same machine only")
    args = parser.parse_args(argv)
    if args.one:
        run_one(args.one, args.workers, args.out)
        return 0
    runs = []
    if args.merge and args.results.exists():
        runs = [r for r in json.loads(args.results.read_text())["runs"] if r["traces_requested"] not in args.sizes]
    for size in sorted(args.sizes):
        print(f"== {size} traces", flush=True)
        runs.append(measure(size, args.workers))
        print(f"   {runs[-1]['s_per_1k_traces']} s per 1k traces, peak RSS {runs[-1]['peak_rss_mb']} MB", flush=True)
        runs.sort(key=lambda r: r["traces"])
        summary = summarize(runs)
        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text(json.dumps(summary, indent=2, default=str) + "\n")  # after every size
    print(json.dumps({k: v for k, v in summary.items() if k != "runs"}, indent=2))
    print(f"written {args.results}")
    return 0 if summary["within_rss_limit"] else 1


def summarize(runs: list[dict]) -> dict:
    """Growth of the per-1k cost from the smallest to the largest size measured so far, and peak RSS."""
    small, large = runs[0], runs[-1]
    def ratio(key: str, stage: str | None = None) -> float:
        a, b = (small[key], large[key]) if stage is None else (small[key][stage], large[key][stage])
        return round(b / max(a, 1e-9), 2)

    cpu_growth = {s: ratio("stage_cpu_s_per_1k_traces", s) for s in STAGES}
    summary = {
        "sizes": [r["traces"] for r in runs],
        "s_per_1k_traces": [r["s_per_1k_traces"] for r in runs],
        "cpu_s_per_1k_traces": [r["cpu_s_per_1k_traces"] for r in runs],
        # cost per 1k traces at the largest size over the smallest: 1.0 is linear growth. CPU time is
        # the measure that holds on a shared machine; wall time also moves with the machine's load.
        "per_1k_growth_ratio": ratio("s_per_1k_traces"),
        "cpu_per_1k_growth_ratio": ratio("cpu_s_per_1k_traces"),
        "stage_per_1k_growth_ratio": {s: ratio("stage_s_per_1k_traces", s) for s in STAGES},
        "stage_cpu_per_1k_growth_ratio": cpu_growth,
        "superlinear_stages": sorted(s for s, g in cpu_growth.items() if g > GROWTH_LIMIT),
        "peak_rss_mb": [r["peak_rss_mb"] for r in runs],
        "peak_rss_limit_mb": RSS_LIMIT_MB,
        "within_rss_limit": max(r["peak_rss_mb"] for r in runs) < RSS_LIMIT_MB,
        "growth_limit": GROWTH_LIMIT,
        "near_linear": ratio("cpu_s_per_1k_traces") <= GROWTH_LIMIT,
        "bytes_per_trace": [r.get("bytes_per_trace") for r in runs],
        "cpu_count": os.cpu_count(),
        "load_avg_at_end": [round(x, 2) for x in os.getloadavg()],
        "complete": len(runs) > 1,
        "runs": runs,
    }
    return summary


if __name__ == "__main__":
    raise SystemExit(main())
