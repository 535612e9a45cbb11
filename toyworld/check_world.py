"""Check the provenance world's targets on a demo warehouse (the SQL in warehouse/queries/toyworld/).

    python -m toyworld.check_world --warehouse /tmp/me/lake      # after `potstill demo --warehouse ...`

Prints one JSON object: each measured value, its target and whether it is met. Exit status 1 when
a target is missed (so a script can gate on it), 2 when the warehouse has no scored sentences.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # `python toyworld/check_world.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# (column, low, high): the targets; None = unbounded
TARGETS = (
    ("share_common", 0.20, None),
    ("share_teacher", 0.15, 0.70),
    ("median_p_teacher_of_teacher_class", 0.40, 0.95),
    ("share_prompts_n_teacher_differs", 0.70, None),
    ("spearman_n_teacher_n_sentences", None, 0.80),
)


def check(warehouse: str, beta: float = 0.1) -> dict:
    from warehouse.db import Warehouse

    row = Warehouse(warehouse, read_only=True).run_file("toyworld/world_targets", {"beta": beta}).row(0, named=True)
    out: dict = {"beta": beta, "measured": row, "targets": {}}
    for col, low, high in TARGETS:
        v = row[col]
        below_high = high is None or (v < high if col.startswith("spearman") else v <= high)  # rho: strictly below
        ok = v is not None and (low is None or v >= low) and below_high
        out["targets"][col] = {"value": v, "low": low, "high": high, "met": bool(ok)}
    out["all_met"] = all(t["met"] for t in out["targets"].values())
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--warehouse", required=True, help="the demo's warehouse (a DuckDB file or a lake)")
    ap.add_argument("--beta", type=float, default=0.1)
    args = ap.parse_args(argv)
    res = check(args.warehouse, args.beta)
    print(json.dumps(res, indent=2, default=str))
    if not res["measured"]["n_sentences"]:
        return 2
    return 0 if res["all_met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
