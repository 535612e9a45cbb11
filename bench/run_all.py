"""`make bench`: run every benchmark (bench/bench_*.py, each comparing potstill's path with the raw
baseline in the same process run), print every ratio with its goal, write bench/results/summary.json.

Run: python bench/run_all.py [--quick] [bench_dedup bench_warehouse ...]
  --quick   smaller sizes and fewer repeats (a few minutes; for development on a shared machine);
            the full run is what the goals are judged on.
`bench_scale.py` has its own target (`make bench-scale`).

summary.json holds, per script, its status, wall time and every numeric field whose name contains
"ratio"; under "goals", each headline ratio with its goal and whether it is met; under "ratios",
the headline ratios alone ({"generation": 0.94, ...}). A goal whose benchmark failed or was not
run is reported as missing (not met).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
SKIP = {"bench_scale.py"}

# smaller sizes for --quick: each still compares both paths on the same inputs, interleaved
QUICK_ARGS: dict[str, list[str]] = {
    "bench_dedup": ["--docs", "10000", "--traces", "20000", "--repeats", "2"],
    "bench_generate": ["--prompts", "128", "--max-new-tokens", "64", "--repeats", "2"],  # fixed costs need this much work
    "bench_orchestration": ["--traces", "20000", "--repeats", "1"],
    "bench_scoring": ["--traces", "64", "--repeats", "3"],
    "bench_train": ["--steps", "20"],
    "bench_verify": ["--math-items", "200", "--programs", "12"],
    "bench_warehouse": ["--rows", "20000", "--batch", "5000", "--repeats", "2"],
    "bench_lake": ["--rows", "20000", "--batch", "5000", "--traces", "2000", "--repeats", "3"],
}
QUICK_SKIP = {"bench_demo"}  # the whole demo (minutes); run it on its own or in the full run


@dataclass(frozen=True)
class Goal:
    name: str
    source: str  # results file stem
    field: str  # dotted path inside it
    goal: float
    higher_is_better: bool
    what: str

    def met(self, value: float) -> bool:
        return value >= self.goal if self.higher_is_better else value <= self.goal

    @property
    def op(self) -> str:
        return ">=" if self.higher_is_better else "<="


GOALS = (
    Goal("generation", "generate", "ratio", 0.9, True, "generation: hf backend pipeline vs bare model.generate (tokens/s)"),
    Goal("scoring", "scoring", "throughput_ratio", 0.85, True, "teacher-forced scoring vs a bare batched forward"),
    Goal("minhash", "dedup", "minhash_vs_datasketch.end_to_end_speedup_ratio", 10.0, True,
         "MinHash LSH end to end (tokenising + shingling included) vs datasketch (speed-up)"),
    Goal("orchestration", "orchestration", "plain_vs_flow_ratio", 0.95, True,
         "score stage: plain functions vs the Prefect flow (wall time)"),
    Goal("keyed_load", "warehouse", "keyed_load_throughput_ratio", 0.8, True,
         "keyed idempotent warehouse load vs a bare Arrow insert (rows/s)"),
    Goal("lake_keyed_load", "lake", "keyed_load_vs_bare_lake_insert_ratio.median", 0.8, True,
         "keyed idempotent lake load vs a bare DuckLake insert (wall time, median of repetitions)"),
    Goal("sft", "train", "ratio", 0.9, True, "TRL SFT steps/s vs a plain AdamW loop"),
    Goal("sandbox_overhead", "verify", "sandbox.overhead_ratio", 2.0, False, "sandboxed program vs bare subprocess (slow-down)"),
    Goal("math_verify_pool", "verify", "math.throughput_ratio", 1.5, True, "math-verify worker pool vs serial (speed-up)"),
    Goal("demo_wall", "demo", "wall_vs_budget_ratio", 1.0, False, "demo wall time vs its 8-minute budget"),
    Goal("demo_rss", "demo", "peak_rss_vs_budget_ratio", 1.0, False, "demo peak RSS vs its 8 GB budget"),
)


def _ratios(obj, prefix: str = "") -> dict[str, float]:
    """Every numeric field whose name contains 'ratio', flattened with its path."""
    found: dict[str, float] = {}
    if isinstance(obj, dict):
        for key, value in obj.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and "ratio" in str(key):
                found[path] = float(value)
            else:
                found.update(_ratios(value, path))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            found.update(_ratios(value, f"{prefix}[{i}]"))
    return found


def _field(obj, dotted: str):
    for part in dotted.split("."):
        if not isinstance(obj, dict) or part not in obj:
            return None
        obj = obj[part]
    return obj if isinstance(obj, (int, float)) and not isinstance(obj, bool) else None


def judge(results: dict[str, dict]) -> dict[str, dict]:
    """Each goal against the results files written in this run ({stem: parsed json})."""
    out: dict[str, dict] = {}
    for g in GOALS:
        value = _field(results.get(g.source, {}), g.field)
        entry = {"ratio": None if value is None else round(float(value), 3), "goal": g.goal, "op": g.op,
                 "met": value is not None and g.met(float(value)), "source": f"{g.source}.json:{g.field}", "what": g.what}
        if value is None:
            entry["missing"] = True
        out[g.name] = entry
    return out


def print_table(goals: dict[str, dict]) -> None:
    print("\nheadline ratios (potstill path vs raw baseline, same inputs, same run)")
    print(f"  {'benchmark':<18} {'ratio':>8}  {'goal':>8}  status")
    for name, e in goals.items():
        shown = "missing" if e["ratio"] is None else f"{e['ratio']:.3f}"
        status = "MISSING" if e.get("missing") else ("ok" if e["met"] else "BELOW GOAL")
        print(f"  {name:<18} {shown:>8}  {e['op']} {e['goal']:<5}  {status:<10} {e['what']}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("only", nargs="*", help="benchmark names to run (e.g. bench_dedup); default all")
    ap.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats (development runs)")
    args = ap.parse_args(argv)
    RESULTS.mkdir(exist_ok=True)
    only = set(args.only)
    scripts = sorted(p for p in BENCH.glob("bench_*.py") if p.name not in SKIP and (not only or p.stem in only))
    if args.quick and not only:
        scripts = [p for p in scripts if p.stem not in QUICK_SKIP]
    env = {**os.environ, "PYTHONPATH": str(BENCH.parent)}
    summary: dict[str, dict] = {}
    parsed: dict[str, dict] = {}
    failed = []
    for script in scripts:
        extra = QUICK_ARGS.get(script.stem, []) if args.quick else []
        print(f"== {script.stem} {' '.join(extra)}".rstrip(), flush=True)
        started = time.monotonic()
        before = {p: p.stat().st_mtime for p in RESULTS.glob("*.json")}
        proc = subprocess.run([sys.executable, str(script), *extra], env=env, cwd=BENCH.parent, check=False)
        wall = round(time.monotonic() - started, 1)
        if proc.returncode != 0:
            failed.append(script.stem)
            summary[script.stem] = {"status": "failed", "returncode": proc.returncode, "wall_s": wall}
            continue
        written = [p for p in RESULTS.glob("*.json") if p.name != "summary.json" and before.get(p) != p.stat().st_mtime]
        ratios: dict[str, float] = {}
        for path in written:
            data = json.loads(path.read_text())
            parsed[path.stem] = data
            ratios.update({f"{path.stem}.{k}": v for k, v in _ratios(data).items()})
        summary[script.stem] = {"status": "ok", "wall_s": wall, "ratios": ratios, "results": [p.name for p in written]}
    print("\nall ratios")
    for name, entry in summary.items():
        if entry["status"] != "ok":
            print(f"  {name}: FAILED (exit {entry['returncode']})")
        for key, value in entry.get("ratios", {}).items():
            print(f"  {key}: {value:.3f}")
    goals = judge(parsed)
    print_table(goals)
    doc = {
        "mode": "quick" if args.quick else "full",
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": {"cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2)},
        "ratios": {name: e["ratio"] for name, e in goals.items()},
        "goals": goals,
        **summary,
    }
    (RESULTS / "summary.json").write_text(json.dumps(doc, indent=2) + "\n")
    print(f"\nwritten {RESULTS / 'summary.json'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
