"""The README's measured selection-ablation table in one command: `potstill experiment compare-selections
--preset quick` on the demo's warehouse, timed, with the machine's load.

Run: python bench/ablation_quick.py [--warehouse runs/ablation-quick/lake] [--readme README.md] [--nice 5]
(`make ablation-quick`). Steps:

1. When the warehouse does not exist yet, `potstill demo --warehouse W` builds it (not part of the time).
2. `potstill experiment compare-selections --preset quick --warehouse W` runs in a subprocess, timed;
   the 1-minute load average is sampled every 10 s while it runs.
3. `<W's folder>/ablation-quick.md` gets the command, date, machine, load and wall time followed by the
   experiment's `results.md` exactly as it came out, and the block between the README's
   `<!-- ablation-quick:start -->` and `<!-- ablation-quick:end -->` markers is replaced by it.

Exits 1 when the demo or the experiment fails (the README is then left as it was; the output's tail
is printed), 0 otherwise.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.bench_scale import PeriodicSampler

START, END = "<!-- ablation-quick:start -->", "<!-- ablation-quick:end -->"


def potstill_command() -> list[str]:
    exe = Path(sys.executable).with_name("potstill")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "flows.cli"]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {seconds % 60:.0f} s"


def run(cmd: list[str], env: dict, log: Path) -> tuple[int, float, float]:
    """(exit code, wall seconds, CPU seconds: user + system of the command and every process it waited for);
    stdout and stderr go to `log`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    with log.open("w") as out:
        code = subprocess.run(cmd, check=False, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO).returncode
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return code, time.perf_counter() - started, cpu


def replace_block(readme: str, block: str) -> str:
    """The README with the text between the markers replaced by `block` (markers kept)."""
    if START not in readme or END not in readme:
        raise SystemExit(f"the README has no {START} ... {END} block to write the table into")
    return re.sub(re.escape(START) + r".*?" + re.escape(END), lambda _: f"{START}\n{block.rstrip()}\n{END}", readme, count=1, flags=re.DOTALL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", default=str(REPO / "runs" / "ablation-quick" / "lake"),
                        help="the demo's warehouse (built with `potstill demo` when it does not exist)")
    parser.add_argument("--readme", default=str(REPO / "README.md"), help="README whose ablation-quick block is rewritten ('' = none)")
    parser.add_argument("--nice", type=int, default=5, help="run the experiment under `nice -n N` (0 = not niced)")
    args = parser.parse_args(argv)
    warehouse = Path(args.warehouse).resolve()
    home = warehouse.parent
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"),
           "TOKENIZERS_PARALLELISM": "false", "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
    env.setdefault("PREFECT_HOME", str(home / "prefect"))
    nice = ["nice", "-n", str(args.nice)] if args.nice else []
    if not warehouse.exists():
        print(f"no warehouse at {warehouse}: running the demo into it first (not timed)", flush=True)
        code, secs, _ = run(nice + potstill_command() + ["demo", "--warehouse", str(warehouse)], env, home / "demo.log")
        if code:
            print((home / "demo.log").read_text()[-3000:])
            print(f"the demo failed (exit {code}); see {home / 'demo.log'}")
            return 1
        print(f"demo done in {minutes(secs)}", flush=True)
    shown = f"potstill experiment compare-selections --preset quick --warehouse {warehouse}"
    cmd = nice + potstill_command() + ["experiment", "compare-selections", "--preset", "quick", "--warehouse", str(warehouse)]
    print(f"running: {' '.join(nice)} {shown}", flush=True)
    started_at = datetime.now(UTC)
    t0 = time.time()
    with PeriodicSampler(lambda: os.getloadavg()[0], every_s=10.0) as load:  # the 1-minute load average
        code, secs, cpu = run(cmd, env, home / "ablation-quick.log")
    output = (home / "ablation-quick.log").read_text()
    if code:
        print(output[-3000:])
        print(f"the experiment failed (exit {code}) after {minutes(secs)}; see {home / 'ablation-quick.log'}")
        return 1
    written = [p for p in (home / "experiments").glob("*/results.md") if p.stat().st_mtime >= t0]
    if not written:
        print(f"the experiment exited 0 but wrote no results.md under {home / 'experiments'} since it started")
        return 1
    results = max(written, key=lambda p: p.stat().st_mtime)
    s = load.samples
    block = (
        f"Command: `{' '.join(nice)} {shown}` on the warehouse of `potstill demo`, run by `make ablation-quick` "
        f"(`bench/ablation_quick.py`).\n"
        f"Date: {started_at:%Y-%m-%d %H:%M} UTC. Machine: {os.cpu_count()} CPU cores ({cpu_model()}), shared; 1-minute load "
        f"average {s[0]:.1f} at the start, {sum(s) / len(s):.1f} on average while it ran (max {max(s):.1f}), {s[-1]:.1f} at the end.\n"
        f"Wall time: {minutes(secs)}; CPU time (user + system, all its processes): {minutes(cpu)}, i.e. the CPU work alone "
        f"needs {minutes(cpu / (os.cpu_count() or 1))} with all {os.cpu_count()} cores to itself, {minutes(cpu)} on one.\n"
        f"Output: `{results}` (pasted as it came out):\n\n"
        + results.read_text()
    )
    (home / "ablation-quick.md").write_text(block)
    print(block)
    if args.readme:
        readme = Path(args.readme)
        readme.write_text(replace_block(readme.read_text(), block))
        print(f"wrote the table into {readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
