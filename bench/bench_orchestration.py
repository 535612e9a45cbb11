"""Orchestration overhead: the sharded score flow (Prefect tasks, warehouse I/O) vs calling the cores directly.

Run: python bench/bench_orchestration.py [--traces 100000] [--shard 0] [--repeats 2]
Writes bench/results/orchestration.json. The same synthetic traces (bench/synth.py) go through
  - flow:  `score_flow` under an ephemeral Prefect API (one task per shard, each shard read from and
           committed to the warehouse, run records, rejections);
  - plain: `run_score`, the same shell without Prefect (tasks called as plain functions);
  - core:  the pure cores on an in-memory table read once (`trace_signals`, `apply_filters`,
           `length_ratios`, `prompt_stats`), no warehouse writes.
Ratios: core / flow and plain / flow wall time (1.0 = no overhead). Shards are sized by the flow
(`tasks.common.sharding`) unless --shard is given. Prefect's own cost per task is measured
separately (a flow of no-op tasks vs the same calls as plain functions) and reported as a share of
the flow's wall time (`prefect_overhead_share`, goal <= 0.02): the flow - plain difference also
holds the flow's concurrency (its shard tasks run in threads) and the machine's noise. The API's start-up is excluded (paid once per process). Each path runs
`--repeats` times, interleaved, on a fresh copy of the warehouse; the best time of each counts.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
for _k, _v in (("PREFECT_LOGGING_LEVEL", "WARNING"), ("PREFECT_SERVER_ANALYTICS_ENABLED", "false"), ("DO_NOT_TRACK", "1")):
    os.environ.setdefault(_k, _v)

import polars as pl

from bench.synth import SynthConfig, write_synthetic
from flows.score import run_score, score_flow
from tasks.common.sharding import stage_shard_size
from tasks.quality.filters import apply_filters
from tasks.quality.filters import preset as filter_preset
from tasks.quality.prompt_stats import PromptStatsConfig, prompt_stats
from tasks.quality.signals import SignalConfig, length_ratios, trace_signals
from warehouse import Warehouse

TRACES_SQL = (
    "select t.trace_id, t.prompt_id, t.model_id, t.completion_text, t.n_completion_tokens, t.is_truncated, "
    "t.finish_reason, p.domain from staging.stg_traces t left join staging.stg_prompts p using (prompt_id)"
)


def run_cores(traces: pl.DataFrame, verdicts: pl.DataFrame) -> dict:
    """What the score flow computes, on in-memory tables only."""
    signals = SignalConfig()
    scores = trace_signals(traces, signals)
    lengths = scores.filter(pl.col("metric") == "completion_tokens").join(
        traces.select("trace_id", "prompt_id"), on="trace_id").select("trace_id", "prompt_id",
                                                                      pl.col("score").alias("completion_tokens"))
    ratios = length_ratios(lengths)
    all_scores = pl.concat([scores.select("trace_id", "metric", "score"), ratios.select("trace_id", "metric", "score")])
    flags = apply_filters(all_scores, filter_preset("default"))
    stats = prompt_stats(traces.select("trace_id", "prompt_id", "model_id"), verdicts, PromptStatsConfig())
    return {"scores": scores.height + ratios.height, "flags": flags.height, "prompt_stats": stats.height}


def prefect_task_cost_s(n: int = 50, repeats: int = 5) -> tuple[float, list[list[float]]]:
    """Seconds Prefect adds per task run: a flow of `n` no-op tasks called one after another (as the
    score flow's flag shards are) minus a flow making the same calls as plain functions; the median
    of `repeats` interleaved pairs. Also returns the raw [tasks_flow_s, plain_flow_s] pairs."""
    import statistics

    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE

    @task(name="noop", cache_policy=NO_CACHE)
    def noop(i: int) -> int:
        return i

    @flow(name="noop-tasks")
    def tasks_flow() -> int:
        return sum(noop(i) for i in range(n))

    @flow(name="noop-plain")
    def plain_flow() -> int:
        return sum(noop.fn(i) for i in range(n))

    pairs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        tasks_flow()
        t_tasks = time.perf_counter() - t0
        t0 = time.perf_counter()
        plain_flow()
        pairs.append([round(t_tasks, 3), round(time.perf_counter() - t0, 3)])
    return max(statistics.median((a - b) / n for a, b in pairs), 0.0), pairs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=100_000)
    parser.add_argument("--shard", type=int, default=0,
                        help="traces per score/flag task; 0 = the flow's own sizing (Prefect's cost <= 2%% of the work)")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved repeats; the best of each path counts")
    args = parser.parse_args(argv)
    from prefect.testing.utilities import prefect_test_harness

    best = {"core": float("inf"), "plain": float("inf"), "flow": float("inf")}
    with tempfile.TemporaryDirectory(prefix="potstill-orch-") as tmp:
        seed_path = str(Path(tmp) / "seed.duckdb")
        counts = write_synthetic(Warehouse(seed_path), args.traces, SynthConfig())
        seed = Warehouse(seed_path)
        traces = seed.query(TRACES_SQL)
        verdicts = seed.query("select trace_id, verifier, verdict_status, score from raw.raw_verifications")
        started = time.perf_counter()
        with prefect_test_harness(server_startup_timeout=180):
            api_start_s = time.perf_counter() - started
            task_cost_s, task_cost_pairs = prefect_task_cost_s()
            # interleaved repeats, best of each: the machine may be shared, so one slow moment
            # must not land on one path only
            for rep in range(args.repeats):
                t0 = time.perf_counter()
                core_counts = run_cores(traces, verdicts)
                best["core"] = min(best["core"], time.perf_counter() - t0)

                plain_path, flow_path = str(Path(tmp) / f"plain{rep}.duckdb"), str(Path(tmp) / f"flow{rep}.duckdb")
                shutil.copy(seed_path, plain_path)
                shutil.copy(seed_path, flow_path)
                Warehouse(plain_path).ensure()
                Warehouse(flow_path).ensure()
                t0 = time.perf_counter()
                plain = run_score(warehouse=plain_path, shard_size=args.shard or None)
                best["plain"] = min(best["plain"], time.perf_counter() - t0)

                t0 = time.perf_counter()
                flowed = score_flow(warehouse=flow_path, shard_size=args.shard or None)
                best["flow"] = min(best["flow"], time.perf_counter() - t0)
                if plain["scores_written"] != flowed["scores_written"] or plain["flags"] != flowed["flags"]:
                    raise RuntimeError(f"flow and plain runs disagree: {plain['flags']} vs {flowed['flags']}")
    core_s, plain_s, flow_s = best["core"], best["plain"], best["flow"]
    n = counts["traces"]
    shard = stage_shard_size("score", n, args.shard or None)
    n_tasks = 2 * -(-n // shard)
    result = {
        "benchmark": "orchestration",
        "stage": "score",
        "traces": n,
        "shard_size": shard,
        "shard_size_source": "requested" if args.shard else "tasks.common.sharding (auto)",
        "repeats": args.repeats,
        "prefect_tasks": n_tasks,
        "core_s": round(core_s, 3),
        "plain_shell_s": round(plain_s, 3),
        "prefect_flow_s": round(flow_s, 3),
        "prefect_api_start_s": round(api_start_s, 1),
        "core_outputs": core_counts,
        "flow_scores_written": flowed["scores_written"],
        # flow - plain mixes Prefect's cost with the flow's concurrency (score shards run in threads)
        # and the machine's noise; the per-task cost is measured on its own (no-op tasks) instead
        "flow_minus_plain_per_task_s": round((flow_s - plain_s) / n_tasks, 3),
        "prefect_task_cost_s": round(task_cost_s, 4),
        "prefect_task_cost_pairs_s": task_cost_pairs,  # [flow of 50 no-op tasks, flow of 50 plain calls]
        "prefect_overhead_share": round(n_tasks * task_cost_s / flow_s, 4),
        "prefect_overhead_share_goal": 0.02,
        "plain_ms_per_trace": round(1000 * plain_s / n, 3),
        "core_vs_flow_ratio": round(core_s / flow_s, 3),
        "plain_vs_flow_ratio": round(plain_s / flow_s, 3),
        "core_vs_plain_ratio": round(core_s / plain_s, 3),
    }
    print(f"score on {n} traces: cores {core_s:.1f} s, plain shell {plain_s:.1f} s, Prefect flow {flow_s:.1f} s "
          f"({n_tasks} tasks of {shard}); core/flow {result['core_vs_flow_ratio']}, plain/flow {result['plain_vs_flow_ratio']}; "
          f"Prefect {1000 * task_cost_s:.0f} ms per task = {result['prefect_overhead_share']:.2%} of the flow (goal <= 2%)")
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "orchestration.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
