"""Code verification: the final fenced code block, run against the prompt's assert-tests in the sandbox.

Score = fraction of tests passed; `correct` only when all pass. A program that never finishes
is `timeout`; one that crashes, floods its output or fails to load is `incorrect` (its own
fault); a sandbox that could not start is `error`; no code block or no tests is `unverifiable`.

>>> extract_code_block("<think>..</think>\\n```python\\ndef f(x):\\n    return x\\n```")
'def f(x):\\n    return x\\n'
"""

from __future__ import annotations

import hashlib
import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

import polars as pl

from tasks.common.ids import config_fingerprint
from tasks.common.text import split_think
from tasks.verify.sandbox import SandboxConfig, SandboxResult, run_tests
from tasks.verify.verdicts import (
    CODE_VERIFIER,
    CORRECT,
    ERROR,
    INCORRECT,
    TIMEOUT,
    UNVERIFIABLE,
    VERDICT_SCHEMA,
    Verdict,
)

REVISION = "r2"  # bump when the verdict logic in this file (or the judge) changes
_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})[ \t]*([\w+.-]*)[^\n]*\n(.*?)^[ \t]*\1[ \t]*$", re.MULTILINE | re.DOTALL)
_NON_PYTHON = {"text", "txt", "bash", "sh", "shell", "console", "json", "output", "plaintext"}
STDERR_EXCERPT = 600


@dataclass(frozen=True)
class CodeConfig:
    """The code verifier: sandbox limits plus how many programs run at once."""

    sandbox: SandboxConfig = field(default_factory=SandboxConfig, metadata={"help": "limits of each sandboxed run"})
    max_tests: int = field(default=100, metadata={"help": "tests beyond this many are not run (counted as not passed)"})

    def __post_init__(self) -> None:
        if isinstance(self.max_tests, bool) or not isinstance(self.max_tests, int) or self.max_tests < 1:
            raise ValueError(f"code setting max_tests must be an integer >= 1, not {self.max_tests!r}")

    def version(self) -> str:
        return f"code-sandbox-{REVISION}-{config_fingerprint(self)}"

    def __str__(self) -> str:
        return f"CodeConfig({config_fingerprint(self)})"


def extract_code_block(completion: str) -> str | None:
    """The last fenced code block of the answer (after `</think>`), or of the whole text without one.

    Blocks tagged as shell/text/output are skipped; an unclosed final fence counts up to the end.
    """
    split = split_think(completion or "")
    text = split.answer if split.has_reasoning and split.is_closed else (completion or "")
    blocks = [m.group(3) for m in _FENCE.finditer(text) if m.group(2).lower() not in _NON_PYTHON]
    if blocks:
        return blocks[-1]
    opened = re.search(r"^[ \t]*```[ \t]*(?:python|py)?[ \t]*\n(.*)\Z", text, re.MULTILINE | re.DOTALL)
    if opened and opened.group(1).strip():
        return opened.group(1)
    return None


def parse_tests(tests_json: str | None) -> list[str] | None:
    """The prompt's tests (a JSON list of assert strings); None when missing or malformed."""
    if not tests_json:
        return None
    try:
        tests = json.loads(tests_json)
    except (json.JSONDecodeError, TypeError):
        return None
    if not isinstance(tests, list) or not all(isinstance(t, str) for t in tests) or not tests:
        return None
    return tests


def judge(program: str, tests: list[str], cfg: CodeConfig) -> Verdict:
    """Run one program against its tests in the sandbox and turn the result into a verdict."""
    run = run_tests(program, tests[: cfg.max_tests], cfg.sandbox)
    return _verdict(run, len(tests), _program_hash(program))


def _verdict(run: SandboxResult, n_tests: int, program_hash: str) -> Verdict:
    passed = run.n_passed
    score = passed / n_tests if n_tests else 0.0
    notes = [f"{passed}/{n_tests} tests passed", f"sandbox={run.tier}", "protections=" + ",".join(run.protections)]
    unsupported = [p for p in run.problems if p]
    if unsupported:
        notes.append(f"{len(unsupported)} test(s) the judge cannot split (never run): {unsupported[0]}")
    if run.signal_name:
        notes.append(f"ended by {run.signal_name}")
    stderr = run.stderr.strip()
    if stderr:
        notes.append("stderr: " + stderr[-STDERR_EXCERPT:])
    detail = "; ".join(notes)

    def make(status: str, reason: str) -> Verdict:
        return Verdict(status, reason, score, program_hash, detail, n_tests, passed)

    if not run.ready:
        return Verdict(ERROR, "sandbox_failed", None, program_hash, detail, n_tests, None)
    # `correct` needs the judge to have seen every test pass on values it received, and the runner to finish
    if run.finished and n_tests and passed == n_tests and not (run.timed_out or run.output_exceeded):
        return make(CORRECT, "all_tests_passed")
    if run.timed_out:
        return make(TIMEOUT, "deadline_exceeded")
    if run.output_exceeded:
        return make(INCORRECT, "output_limit_exceeded")
    if run.load_error:
        return make(INCORRECT, "candidate_error")
    if run.signal_name in ("SIGXCPU",):
        return make(TIMEOUT, "cpu_limit_exceeded")
    if run.finished and any(t is False for t in run.tests):
        return make(INCORRECT, "tests_failed")
    if run.finished and run.n_unsupported:
        return make(UNVERIFIABLE, "tests_unsupported")
    if run.signal_name:
        return make(INCORRECT, "candidate_crashed")
    if run.finished:
        return make(INCORRECT, "tests_failed")
    return make(INCORRECT, "exited_early")


def verify_code(items: pl.DataFrame, cfg: CodeConfig, workers: int = 2) -> pl.DataFrame:
    """Verdicts for code traces; `workers` sandboxes run at once (threads waiting on subprocesses).

    Args:
        items: columns trace_id, prompt_id, completion_text, tests_json (optional input_hash).
    Returns:
        one row per input row, columns of `VERDICT_SCHEMA`, verifier `code_sandbox`.
    """
    rows = items.to_dicts()
    version = cfg.version()

    def one(row: dict) -> tuple[Verdict, float]:
        tests = parse_tests(row.get("tests_json"))
        if tests is None:
            return Verdict(UNVERIFIABLE, "no_tests", detail="the prompt has no usable tests_json (JSON list of asserts)"), 0.0
        program = extract_code_block(row["completion_text"])
        if program is None:
            split = split_think(row["completion_text"] or "")
            reason = "truncated" if not split.is_closed else "no_code_block"
            return Verdict(UNVERIFIABLE, reason, detail="no fenced code block in the answer"), 0.0
        run = run_tests(program, tests[: cfg.max_tests], cfg.sandbox)
        return _verdict(run, len(tests), _program_hash(program)), run.elapsed_s * 1000

    with ThreadPoolExecutor(max_workers=max(1, workers)) as executor:
        results = list(executor.map(one, rows))
    out = []
    for row, (verdict, ms) in zip(rows, results):
        out.append(
            {
                "trace_id": row["trace_id"],
                "prompt_id": row.get("prompt_id"),
                "verifier": CODE_VERIFIER,
                "verifier_version": version,
                "input_hash": row.get("input_hash"),
                **asdict(verdict),
                "elapsed_ms": ms,
            }
        )
    return pl.DataFrame(out, schema=VERDICT_SCHEMA)


def _program_hash(program: str) -> str:
    return "sha256:" + hashlib.sha256(program.encode()).hexdigest()[:16]
