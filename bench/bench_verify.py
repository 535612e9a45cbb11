"""Verification: math-verify in potstill's deadline pool vs a serial math-verify loop, and the code
sandbox vs a bare `subprocess.run` of the same programs.

Run: python bench/bench_verify.py [--math-items 600] [--programs 40] [--workers N]
Writes bench/results/verify.json. Both math paths judge the same unique (answer, reference) pairs;
the serial baseline is the usual loop (`parse` gold, `parse` answer, `verify`, math-verify's own
signal timeouts on). Throughput ratio = serial seconds / pool seconds (above 1: the pool is
faster); latency percentiles are per item (the pool's from dispatch to result). The sandbox ratio
is sandbox seconds / bare seconds for the same programs and tests, run one at a time (the cost
of the protections per program).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import polars as pl

from tasks.verify.math import MathConfig, math_pool, verify_math
from tasks.verify.sandbox import SandboxConfig, available_tier, run_tests

RESULTS = REPO / "bench" / "results"


def math_items(n: int, seed: int = 7) -> list[tuple[str, str]]:
    """n unique (completion, reference) pairs: integers, fractions, decimals, LaTeX forms, sets, intervals."""
    rng = random.Random(seed)
    seen: set[tuple[str, str]] = set()
    out: list[tuple[str, str]] = []
    while len(out) < n:
        kind = rng.randrange(6)
        a, b = rng.randint(1, 999), rng.randint(2, 97)
        if kind == 0:
            ref, ans = str(a), str(a if rng.random() < 0.7 else a + 1)
        elif kind == 1:
            ref, ans = f"{a}/{b}", f"\\frac{{{a * 2}}}{{{b * 2}}}"
        elif kind == 2:
            ref, ans = f"\\frac{{{a}}}{{{b}}}", f"{a / b:.6f}"
        elif kind == 3:
            ref, ans = f"{a}\\sqrt{{{b}}}", f"\\sqrt{{{a * a * b}}}"
        elif kind == 4:
            ref, ans = f"\\{{{a}, {b}\\}}", f"\\{{{b}, {a}\\}}"
        else:
            ref, ans = f"({a}, {a + b})", f"[{a}, {a + b}]" if rng.random() < 0.5 else f"({a}, {a + b})"
        completion = f"<think>\nwork for item {len(out)}\n</think>\nThe answer is $\\boxed{{{ans}}}$."
        if (completion, ref) not in seen:
            seen.add((completion, ref))
            out.append((completion, ref))
    return out


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def bench_math(n: int, workers: int) -> dict:
    from math_verify import parse, verify

    logging.getLogger("math_verify").setLevel(logging.ERROR)
    items = math_items(n)
    parse("$1$"), verify(parse("$1$"), parse("$1$"))  # warm the serial path's lazy imports too

    latencies, verdicts_serial = [], []
    t0 = time.perf_counter()
    for completion, ref in items:
        t = time.perf_counter()
        answer = completion.split("</think>", 1)[1]
        verdicts_serial.append(verify(parse("\\boxed{" + ref + "}"), parse(answer)))
        latencies.append(time.perf_counter() - t)
    serial_s = time.perf_counter() - t0

    df = pl.DataFrame({
        "trace_id": [f"t{i}" for i in range(n)], "prompt_id": ["p"] * n,
        "completion_text": [c for c, _ in items], "is_truncated": [False] * n,
        "reference_answer": [r for _, r in items],
    })
    cfg = MathConfig()
    t0 = time.perf_counter()
    pool = math_pool(cfg, workers).start()
    startup_s = time.perf_counter() - t0
    try:
        t0 = time.perf_counter()
        out = verify_math(df, cfg, pool)
        pool_s = time.perf_counter() - t0
    finally:
        pool.close()
    pool_lat = [ms / 1000 for ms in out["elapsed_ms"].to_list()]
    agree = sum((s == "correct") == v for s, v in zip(out["verdict_status"].to_list(), verdicts_serial)) / n
    return {
        "items": n, "workers": workers,
        "serial_s": round(serial_s, 3), "pool_s": round(pool_s, 3), "pool_startup_s": round(startup_s, 3),
        "serial_items_per_s": round(n / serial_s, 1), "pool_items_per_s": round(n / pool_s, 1),
        "throughput_ratio": round(serial_s / pool_s, 3),
        "throughput_ratio_with_startup": round(serial_s / (pool_s + startup_s), 3),
        "serial_p50_ms": round(_pct(latencies, 0.5) * 1000, 2), "serial_p99_ms": round(_pct(latencies, 0.99) * 1000, 2),
        "pool_p50_ms": round(_pct(pool_lat, 0.5) * 1000, 2), "pool_p99_ms": round(_pct(pool_lat, 0.99) * 1000, 2),
        "verdict_agreement_with_serial": round(agree, 4),
    }


def programs(n: int, seed: int = 11) -> list[tuple[str, list[str]]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        a, b = rng.randint(2, 9), rng.randint(-5, 9)
        out.append((f"def f(x):\n    return {a} * x + {b}\n", [f"assert f({x}) == {a * x + b}" for x in (0, 1, -2, 7)]))
    return out


def bench_sandbox(n: int) -> dict:
    progs = programs(n)
    cfg = SandboxConfig()
    tier = available_tier(cfg.isolation)
    run_tests(*progs[0], cfg)  # warm page cache
    bare, boxed = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (program, tests) in enumerate(progs):
            script = Path(tmp) / f"p{i}.py"
            script.write_text(program + "\n" + "\n".join(tests) + "\n")
            t = time.perf_counter()
            subprocess.run([sys.executable, str(script)], capture_output=True, timeout=30, check=True)
            bare.append(time.perf_counter() - t)
    for program, tests in progs:
        t = time.perf_counter()
        result = run_tests(program, tests, cfg)
        boxed.append(time.perf_counter() - t)
        if result.n_passed != len(tests):
            raise RuntimeError(f"sandbox failed a correct program: {result.stderr[-300:]}")
    bare_s, boxed_s = sum(bare), sum(boxed)
    return {
        "programs": n, "tier": tier, "bare_s": round(bare_s, 3), "sandbox_s": round(boxed_s, 3),
        "overhead_ratio": round(boxed_s / bare_s, 3),
        "bare_mean_ms": round(bare_s / n * 1000, 1), "sandbox_mean_ms": round(boxed_s / n * 1000, 1),
        "bare_p99_ms": round(_pct(bare, 0.99) * 1000, 1), "sandbox_p99_ms": round(_pct(boxed, 0.99) * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--math-items", type=int, default=600)
    parser.add_argument("--programs", type=int, default=40)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    results = {
        "machine": {"cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2)},
        "math": bench_math(args.math_items, args.workers),
        "sandbox": bench_sandbox(args.programs),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "verify.json").write_text(json.dumps(results, indent=2) + "\n")
    m, s = results["math"], results["sandbox"]
    print(f"math-verify: pool {m['pool_items_per_s']}/s vs serial {m['serial_items_per_s']}/s with {m['workers']} workers "
          f"-> throughput ratio {m['throughput_ratio']}x ({m['throughput_ratio_with_startup']}x with pool startup); "
          f"p99 {m['pool_p99_ms']} ms vs {m['serial_p99_ms']} ms; verdicts agree {m['verdict_agreement_with_serial']:.2%}")
    print(f"sandbox ({s['tier']}): {s['sandbox_mean_ms']} ms/program vs bare subprocess {s['bare_mean_ms']} ms "
          f"-> overhead ratio {s['overhead_ratio']}x")
    print(f"wrote {RESULTS / 'verify.json'}")


if __name__ == "__main__":
    main()
