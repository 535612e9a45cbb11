"""Verdicts for evaluation samples: `verify_samples(rows) -> rows + verdict_status, score`.

`verify_samples` runs the verification stage's own verifiers (`tasks.verify`: math-verify in
hard-killable workers, the code sandbox), so evaluation and curation judge answers identically.
`builtin_verify_samples` is a self-contained fallback with the same verdicts: math-verify in a child process with a hard deadline (a hung chunk is killed
and its items retried one by one, the hung one ending as `timeout`), and code run against its
asserts in a child process with CPU/memory/file limits, a scratch cwd, a scrubbed environment and
its process group killed at the deadline. Verdicts: correct | incorrect | unverifiable | timeout | error.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import polars as pl

VERDICTS = ("correct", "incorrect", "unverifiable", "timeout", "error")
_CODE_BLOCK = re.compile(r"```(?:python|py)?[^\n]*\n(.*?)```", re.S)
_MATH_WORKER = r"""
import json, sys
from math_verify import parse, verify
for line in sys.stdin:
    item = json.loads(line)
    try:
        gold = parse("$" + item["gold"] + "$", parsing_timeout=None)
        pred = parse(item["pred"], parsing_timeout=None)
        if not pred:
            out = ("unverifiable", 0.0, None)
        else:
            ok = verify(gold, pred, timeout_seconds=None)
            out = ("correct" if ok else "incorrect", 1.0 if ok else 0.0, str(pred[-1]))
    except Exception as exc:
        out = ("error", 0.0, type(exc).__name__)
    sys.stdout.write(json.dumps(out) + "\n"); sys.stdout.flush()
"""
_CODE_RUNNER = r"""
import json, sys
src = open("candidate.py").read()
tests = json.load(open("tests.json"))
ns = {"__name__": "candidate"}
try:
    exec(compile(src, "candidate.py", "exec"), ns)
except BaseException as exc:
    print(json.dumps({"passed": 0, "total": len(tests), "error": type(exc).__name__ + ": " + str(exc)[:200]})); sys.exit(0)
passed, first = 0, None
for t in tests:
    try:
        exec(compile(t, "test", "exec"), ns); passed += 1
    except BaseException as exc:
        first = first or (t + " -> " + type(exc).__name__)
print(json.dumps({"passed": passed, "total": len(tests), "error": first}))
"""


def _math_chunk(items: list[dict], deadline_s: float) -> list[tuple[str, float, str | None]] | None:
    payload = "".join(json.dumps(i) + "\n" for i in items)
    proc = subprocess.Popen([sys.executable, "-c", _MATH_WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(payload, timeout=deadline_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return None
    lines = out.splitlines()
    if len(lines) != len(items):
        return None
    return [tuple(json.loads(line)) for line in lines]


def verify_math(preds: list[str], golds: list[str], *, timeout_s: float = 5.0, startup_s: float = 20.0) -> list[tuple[str, float, str | None]]:
    """Math-verify each prediction against its gold answer, with a hard deadline per item."""
    items = [{"pred": p or "", "gold": g} for p, g in zip(preds, golds)]
    if not items:
        return []
    result = _math_chunk(items, startup_s + timeout_s * len(items))
    if result is not None:
        return result
    out = []
    for item in items:  # a chunk hung or crashed: isolate the culprit
        one = _math_chunk([item], startup_s + timeout_s)
        out.append(one[0] if one else ("timeout", 0.0, None))
    return out


def extract_code(completion: str) -> str | None:
    """The last fenced code block of a completion (after the reasoning), or None."""
    answer = completion.split("</think>")[-1]
    blocks = _CODE_BLOCK.findall(answer)
    return blocks[-1] if blocks else None


def _limits(cpu_s: int, mem_bytes: int):
    def apply() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s))
        resource.setrlimit(resource.RLIMIT_AS, (mem_bytes, mem_bytes))
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))

    return apply


def verify_code(completion: str, tests: list[str], *, timeout_s: float = 5.0, mem_bytes: int = 1 << 30) -> tuple[str, float, str | None]:
    """Run the completion's code against its asserts; score = fraction passed, correct only when all pass."""
    code = extract_code(completion)
    if code is None:
        return ("unverifiable", 0.0, "no code block")
    with tempfile.TemporaryDirectory(prefix="potstill-eval-") as scratch:
        Path(scratch, "candidate.py").write_text(code)
        Path(scratch, "tests.json").write_text(json.dumps(tests))
        proc = subprocess.Popen(
            [sys.executable, "-I", "-c", _CODE_RUNNER], cwd=scratch, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"}, start_new_session=True,
            preexec_fn=_limits(int(timeout_s) + 1, mem_bytes), text=True,
        )
        try:
            out, err = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return ("timeout", 0.0, f"killed after {timeout_s}s")
    try:
        res = json.loads(out.strip().splitlines()[-1][:10_000])
    except (json.JSONDecodeError, IndexError):
        return ("error", 0.0, (err or "no output")[-300:])
    score = res["passed"] / max(res["total"], 1)
    return ("correct" if score == 1.0 else "incorrect", score, res.get("error"))


def builtin_verify_samples(rows: pl.DataFrame, *, timeout_s: float = 5.0) -> pl.DataFrame:
    """Add verdict_status, score, verdict_detail to rows of (domain, completion_text, reference_answer, tests_json)."""
    n = rows.height
    status: list[str] = ["unverifiable"] * n
    score: list[float] = [0.0] * n
    detail: list[str | None] = [None] * n
    domains = rows["domain"].to_list()
    texts = rows["completion_text"].to_list()
    refs = rows["reference_answer"].to_list()
    tests = rows["tests_json"].to_list()
    math_idx = [i for i in range(n) if domains[i] == "math" and refs[i] is not None]
    answers = [(texts[i] or "").split("</think>")[-1] for i in math_idx]
    for i, (st, sc, det) in zip(math_idx, verify_math(answers, [refs[i] for i in math_idx], timeout_s=timeout_s)):
        status[i], score[i], detail[i] = st, sc, det
    for i in range(n):
        if domains[i] == "code" and tests[i]:
            status[i], score[i], detail[i] = verify_code(texts[i] or "", json.loads(tests[i]), timeout_s=timeout_s)
        elif domains[i] not in ("math", "code"):
            detail[i] = f"no verifier for domain {domains[i]!r}"
    return rows.with_columns(
        pl.Series("verdict_status", status, dtype=pl.String),
        pl.Series("score", score, dtype=pl.Float64),
        pl.Series("verdict_detail", detail, dtype=pl.String),
    )


def verify_samples(rows: pl.DataFrame, *, pool=None, workers: int = 2, cfg=None) -> pl.DataFrame:
    """Add verdict_status, score, verdict_detail using `tasks.verify.verify_traces` (the verify stage).

    Args:
        rows: domain, completion_text, is_truncated, reference_answer, tests_json (one row per completion).
        pool: a started math `DeadlinePool` to reuse; default: one is started and closed here.
    """
    from contextlib import nullcontext

    from tasks.verify.core import VerifyConfig, verify_traces
    from tasks.verify.math import math_pool
    from tasks.verify.verdicts import CODE_VERIFIER, MATH_VERIFIER, NO_VERIFIER

    cfg = cfg or VerifyConfig()
    n = rows.height
    domains, refs, tests = rows["domain"].to_list(), rows["reference_answer"].to_list(), rows["tests_json"].to_list()
    verifier, reason = [], []
    for d, ref, t in zip(domains, refs, tests):
        if d == "math" and ref is not None:
            verifier.append(MATH_VERIFIER); reason.append(None)
        elif d == "code" and t:
            verifier.append(CODE_VERIFIER); reason.append(None)
        else:
            verifier.append(NO_VERIFIER); reason.append("unsupported_domain")
    ids = [f"s{i}" for i in range(n)]
    items = pl.DataFrame({
        "trace_id": ids, "prompt_id": rows["problem_id"].to_list() if "problem_id" in rows.columns else ids,
        "verifier": verifier, "input_hash": ids, "route_reason": reason,
        "completion_text": rows["completion_text"].to_list(),
        "is_truncated": rows["is_truncated"].to_list() if "is_truncated" in rows.columns else [False] * n,
        "reference_answer": refs, "tests_json": tests,
    }, schema_overrides={"route_reason": pl.String, "reference_answer": pl.String, "tests_json": pl.String})
    needs_pool = MATH_VERIFIER in verifier
    with (nullcontext(pool) if pool is not None or not needs_pool else math_pool(cfg.math, workers)) as active:
        verdicts = verify_traces(items, cfg, active, workers)
    by_id = {r["trace_id"]: r for r in verdicts.select("trace_id", "verdict_status", "score", "verdict_reason", "detail").to_dicts()}
    got = [by_id[i] for i in ids]
    return rows.with_columns(
        pl.Series("verdict_status", [g["verdict_status"] for g in got], dtype=pl.String),
        pl.Series("score", [float(g["score"] or 0.0) for g in got], dtype=pl.Float64),
        pl.Series("verdict_detail", [f"{g['verdict_reason']}: {g['detail']}" if g["detail"] else g["verdict_reason"] for g in got], dtype=pl.String),
    )
