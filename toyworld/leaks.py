"""Paraphrased benchmark leaks: benchmark items reworded so that n-gram and formula matching miss them.

`data/paraphrased_leaks.jsonl` is a separate prompt file (the toy recipe ingests it next to
`train.jsonl`, whose counts and planted rows stay as they are). It rewords benchmark items that
`train.jsonl` does not already leak, deterministically (the first eligible items in id order):
- math: "Compute 4 - 1 - 3 * 8." -> "What is the result of 4 minus 1 minus 3 times 8?"
  (operators spelled out: no formula and no 8-gram in common with the item);
- code: "Write a Python function f(x) that returns 6*x - 2." -> "Implement f(x) in Python:
  multiply x by 6 and then subtract 2, returning the result." (same tests).
Each row names the benchmark item it leaks (`leak_of`). Only semantic decontamination
(tasks/dedup/semantic.py) is expected to catch them.

    python -m toyworld.leaks            # rewrite data/paraphrased_leaks.jsonl (also run by `toyworld.build --only data`)
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
FILE = "paraphrased_leaks.jsonl"
_WORD = {"+": "plus", "-": "minus", "*": "times"}
_MATH = re.compile(r"(?:Compute|Calculate|Evaluate|What is) (\d(?: [-+*] \d)+)[.?]")
_CODE = re.compile(r"Write a Python function f\(x\) that returns (\d)\*x ([-+]) (\d)\.")


def paraphrase(problem: str) -> str | None:
    """The reworded problem, or None when the item has neither shape.

    >>> paraphrase("Compute 4 - 1 - 3 * 8.")
    'What is the result of 4 minus 1 minus 3 times 8?'
    """
    m = _MATH.fullmatch(problem)
    if m:
        return "What is the result of " + " ".join(_WORD.get(t, t) for t in m.group(1).split()) + "?"
    m = _CODE.fullmatch(problem)
    if m:
        k, op, c = m.groups()
        return f"Implement f(x) in Python: multiply x by {k} and then {'add' if op == '+' else 'subtract'} {c}, returning the result."
    return None


def paraphrased_leaks(benchmark: list[dict], already_leaked: set[str], n_math: int = 5, n_code: int = 3) -> list[dict]:
    """Rows for data/paraphrased_leaks.jsonl: the first `n_math` math and `n_code` code items (id order) not already leaked."""
    rows: list[dict] = []
    want = {"math": n_math, "code": n_code}
    for item in sorted(benchmark, key=lambda r: r["id"]):
        domain = item["domain"]
        text = paraphrase(item["problem"])
        if item["id"] in already_leaked or text is None or want.get(domain, 0) <= 0:
            continue
        want[domain] -= 1
        rows.append({"id": f"leak-{item['id']}", "domain": domain, "problem": text, "answer": item["answer"],
                     "tests": item["tests"], "leak_of": item["id"], "variant": "paraphrase"})
    return rows


def write_paraphrased_leaks(data_dir: Path = DATA) -> list[dict]:
    benchmark = [json.loads(line) for line in (data_dir / "benchmark.jsonl").read_text().splitlines() if line.strip()]
    manifest = json.loads((data_dir / "manifest.json").read_text())
    rows = paraphrased_leaks(benchmark, {leak["benchmark_id"] for leak in manifest["leaks"]})
    (data_dir / FILE).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


if __name__ == "__main__":
    written = write_paraphrased_leaks(Path(sys.argv[1]) if len(sys.argv) > 1 else DATA)
    print(f"[leaks] {len(written)} paraphrased benchmark leaks -> {FILE}")
