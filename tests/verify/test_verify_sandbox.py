"""Hostile-input suite for the code sandbox, plus code-block extraction and verdict mapping."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from pathlib import Path

import polars as pl
import psutil
import pytest

from tasks.verify.code import CodeConfig, extract_code_block, parse_tests, verify_code
from tasks.verify.sandbox import SandboxConfig, _probe, run_tests
from tasks.verify.verdicts import VerifyError

TESTS = ["assert f(1) == 5", "assert f(0) == 2", "assert f(-2) == -4"]
GOOD = "def f(x):\n    return 3 * x + 2\n"
needs_bwrap = pytest.mark.skipif(
    not _probe("bwrap"), reason="bubblewrap unavailable: run `sh tasks/verify/install_sandbox.sh`"
)


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ("<think>plan</think>\n```python\ndef f(x):\n    return x\n```", "def f(x):\n    return x\n"),
        ("<think>```python\nwrong = 1\n```</think>\n```python\nright = 2\n```", "right = 2\n"),
        ("```python\na = 1\n```\ntext\n```py\nb = 2\n```\n```text\noutput\n```", "b = 2\n"),
        ("```\nplain = 3\n```", "plain = 3\n"),
        ("~~~python\ntilde = 4\n~~~", "tilde = 4\n"),
        ("<think>x</think>\n```python\nunclosed = 5\n", "unclosed = 5"),
        ("<think>x</think>\nno code at all", None),
        ("<think>```python\nonly_in_reasoning = 1\n```</think>\nsee above", None),
    ],
)
def test_extract_code_block(completion, expected):
    assert extract_code_block(completion) == expected


@pytest.mark.parametrize(
    ("tests_json", "expected"),
    [('["assert 1"]', ["assert 1"]), ("[]", None), ("not json", None), ('{"a": 1}', None), (None, None), ("[1, 2]", None)],
)
def test_parse_tests(tests_json, expected):
    assert parse_tests(tests_json) == expected


def _items(programs: dict[str, str], tests=TESTS) -> pl.DataFrame:
    return pl.DataFrame(
        [{"trace_id": name, "prompt_id": "p", "completion_text": f"<think>x</think>\n```python\n{code}```\n",
          "tests_json": json.dumps(tests)} for name, code in programs.items()]
    )


@pytest.fixture(scope="module")
def listener():
    """A TCP listener on the host's 127.0.0.1 that records every connection it accepts."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    accepted: list = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                accepted.append(conn)
            except OSError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    stop.set()
    thread.join(timeout=2)
    server.close()


@needs_bwrap
def test_hostile_batch(listener, tmp_path, monkeypatch):
    port, accepted = listener
    canary_tmp = Path("/tmp") / f"potstill-escape-{uuid.uuid4().hex}"
    canary_repo = Path(__file__).resolve().parent / f"escape-{uuid.uuid4().hex}"
    canary_home = tmp_path / "escape.txt"
    monkeypatch.setenv("POTSTILL_TEST_SECRET", "hunter2")
    programs = {
        "good": GOOD,
        "loop": "def f(x):\n    while True:\n        pass\n",
        "forkbomb": "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
        "alloc_10gb": "blob = bytearray(10 * 1024 ** 3)\n" + GOOD,
        "flood_stdout": "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n",
        "write_outside": (
            f"for p in [{str(canary_tmp)!r}, {str(canary_repo)!r}, {str(canary_home)!r}]:\n"
            "    try:\n        open(p, 'w').write('escaped')\n    except OSError:\n        pass\n" + GOOD
        ),
        "read_secrets": "import os\nLEAK = os.environ.get('POTSTILL_TEST_SECRET')\n" + GOOD,
        "socket": f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)\n" + GOOD,
        "kill_parent": "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n" + GOOD,
        "os_exit": "import os\nos._exit(0)\n",
        "segfault": "import ctypes\nctypes.string_at(0)\n",
        "sys_exit_in_test": "import sys\ndef f(x):\n    sys.exit(0)\n",
    }
    tests = {**{name: TESTS for name in programs}, "read_secrets": ["assert LEAK is None", *TESTS]}
    items = pl.concat([_items({name: code}, tests[name]) for name, code in programs.items()])
    cfg = CodeConfig(sandbox=SandboxConfig(wall_s=4.0, cpu_s=3))
    started = time.monotonic()
    out = verify_code(items, cfg, workers=2)
    elapsed = time.monotonic() - started
    got = {r["trace_id"]: (r["verdict_status"], r["verdict_reason"]) for r in out.to_dicts()}
    # Killing its parent kills only the in-sandbox runner; the namespace then goes down, racing the
    # candidate's own tests: either it finished them (correct) or it is a crash. Never the host.
    # (inside its PID namespace the parent is the namespace's init, another uid: the kill is refused)
    assert got.pop("kill_parent") in {("correct", "all_tests_passed"), ("incorrect", "candidate_crashed"),
                                      ("incorrect", "candidate_error")}
    # a busy loop meets the wall deadline or its CPU limit first, depending on load: a timeout either way
    assert got.pop("loop") in {("timeout", "deadline_exceeded"), ("timeout", "cpu_limit_exceeded")}
    assert got == {
        "good": ("correct", "all_tests_passed"),
        "forkbomb": ("timeout", "deadline_exceeded"),
        "alloc_10gb": ("incorrect", "candidate_error"),
        "flood_stdout": ("incorrect", "output_limit_exceeded"),
        "write_outside": ("correct", "all_tests_passed"),  # the writes fail quietly; the function is right
        "read_secrets": ("correct", "all_tests_passed"),  # LEAK is None: the secret never reached it
        "socket": ("incorrect", "candidate_error"),
        "os_exit": ("incorrect", "exited_early"),
        "segfault": ("incorrect", "candidate_crashed"),
        "sys_exit_in_test": ("incorrect", "tests_failed"),
    }
    details = dict(zip(out["trace_id"], out["detail"]))
    assert "MemoryError" in details["alloc_10gb"]
    assert "SIGSEGV" in details["segfault"]
    assert all(p in details["good"] for p in ("no_network", "readonly_fs", "nproc_limit", "pid_namespace"))
    assert not canary_tmp.exists() and not canary_repo.exists() and not canary_home.exists()
    assert accepted == [], "the sandbox reached a listener on the host's loopback"
    assert elapsed < 60, f"two deadline cases of 4 s took {elapsed:.0f} s in all"
    time.sleep(0.5)
    leftovers = [p.info for p in psutil.process_iter(["pid", "uids", "cmdline"])
                 if p.info["uids"] and 61000 <= p.info["uids"].real < 62000
                 and any(a.startswith('"""Runs inside the sandbox') for a in p.info["cmdline"] or [])]
    assert leftovers == [], f"sandboxed processes outlived their run: {leftovers}"


@needs_bwrap
def test_output_is_capped_and_the_run_is_cut_short():
    result = run_tests("import sys\nwhile True:\n    print('y' * 1000)\n", TESTS,
                       SandboxConfig(output_limit_kb=16, wall_s=20, isolation="auto"))
    assert result.output_exceeded and not result.timed_out
    assert len(result.stdout) + len(result.stderr) <= 16 * 1024
    assert result.elapsed_s < 10


@needs_bwrap
def test_partial_credit_is_the_fraction_of_tests_passed():
    program = "def f(x):\n    return 5 if x == 1 else 3 * x + 2\n"
    out = verify_code(_items({"partial": program}, [*TESTS, "assert f(10) == 32", "assert f(1) == 6"]), CodeConfig())
    row = out.row(0, named=True)
    assert (row["verdict_status"], row["n_tests"], row["n_tests_passed"], row["score"]) == ("incorrect", 5, 4, 0.8)


def test_no_code_block_or_no_tests_is_unverifiable():
    items = pl.DataFrame([
        {"trace_id": "a", "prompt_id": "p", "completion_text": "<think>x</think>\nf = 3x + 2", "tests_json": json.dumps(TESTS)},
        {"trace_id": "b", "prompt_id": "p", "completion_text": f"```python\n{GOOD}```", "tests_json": None},
        {"trace_id": "c", "prompt_id": "p", "completion_text": "<think>```python\nx = 1", "tests_json": json.dumps(TESTS)},
    ])
    out = verify_code(items, CodeConfig())
    assert out.select("verdict_status", "verdict_reason").rows() == [
        ("unverifiable", "no_code_block"), ("unverifiable", "no_tests"), ("unverifiable", "truncated")]


@needs_bwrap
def test_scrubbed_environment_and_fresh_scratch_cwd(monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "nope")
    program = "import os\nENV = dict(os.environ)\nCWD = os.getcwd()\nFILES = sorted(os.listdir('.'))\n"
    tests = ["assert 'AWS_SECRET_ACCESS_KEY' not in ENV", "assert CWD == '/sandbox'",
             "assert FILES == []", f"assert CWD != {os.getcwd()!r}"]
    result = run_tests(program, tests, SandboxConfig())
    assert result.tests == (True, True, True, True), result.stderr


@pytest.mark.parametrize("tier", ["unshare", "none"])
def test_weaker_tiers_still_judge_and_say_what_is_in_force(tier):
    from tasks.verify.sandbox import _interpreter_open_to, _probe

    if not _probe(tier):
        pytest.skip(f"{tier} tier unavailable here")
    if os.geteuid() == 0 and not _interpreter_open_to(61000):
        with pytest.raises(VerifyError, match="never runs as root"):
            verify_code(_items({"good": GOOD}), CodeConfig(sandbox=SandboxConfig(isolation=tier)))
        return
    out = verify_code(_items({"good": GOOD, "bad": "def f(x):\n    return x\n"}),
                      CodeConfig(sandbox=SandboxConfig(isolation=tier)))
    assert out["verdict_status"].to_list() == ["correct", "incorrect"]
    detail = out["detail"][0]
    assert f"sandbox={tier}" in detail and "rlimits" in detail
    assert ("no_network" in detail) is (tier == "unshare")
    assert "readonly_fs" not in detail
