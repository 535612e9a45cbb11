"""`make bench`: run every benchmark (bench/bench_*.py, each comparing potstill's path with the raw
baseline in the same process run), then print every ratio they reported and write
bench/results/summary.json. `bench_scale.py` has its own target (`make bench-scale`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
SKIP = {"bench_scale.py"}


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


def main(argv: list[str]) -> int:
    RESULTS.mkdir(exist_ok=True)
    only = set(argv)
    scripts = sorted(p for p in BENCH.glob("bench_*.py") if p.name not in SKIP and (not only or p.stem in only))
    env = {**os.environ, "PYTHONPATH": str(BENCH.parent)}
    summary: dict[str, dict] = {}
    failed = []
    for script in scripts:
        print(f"== {script.stem}", flush=True)
        started = time.monotonic()
        before = {p: p.stat().st_mtime for p in RESULTS.glob("*.json")}
        proc = subprocess.run([sys.executable, str(script)], check=False, env=env, cwd=BENCH.parent)
        wall = round(time.monotonic() - started, 1)
        if proc.returncode != 0:
            failed.append(script.stem)
            summary[script.stem] = {"status": "failed", "returncode": proc.returncode, "wall_s": wall}
            continue
        written = [p for p in RESULTS.glob("*.json") if p.name != "summary.json" and before.get(p) != p.stat().st_mtime]
        ratios: dict[str, float] = {}
        for path in written:
            ratios.update({f"{path.stem}.{k}": v for k, v in _ratios(json.loads(path.read_text())).items()})
        summary[script.stem] = {"status": "ok", "wall_s": wall, "ratios": ratios, "results": [p.name for p in written]}
    print("\nratio summary (potstill path vs raw baseline, same inputs, same run)")
    for name, entry in summary.items():
        if entry["status"] != "ok":
            print(f"  {name}: FAILED (exit {entry['returncode']})")
        for key, value in entry.get("ratios", {}).items():
            print(f"  {key}: {value:.3f}")
    (RESULTS / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"\nwritten {RESULTS / 'summary.json'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
