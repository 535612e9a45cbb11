"""Hostile candidates against the code verifier: forged verdicts, escapes, exhaustion, concurrency.

Every candidate's function is WRONG unless the case says otherwise, so `correct` is always a forged
pass. Each case also checks that the host is untouched: no file outside the sandbox's scratch, the
canary environment value in no stored text, the sandbox's memory and process count bounded, no
sandboxed process left behind.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import polars as pl
import psutil
import pytest

from tasks.verify.code import CodeConfig, verify_code
from tasks.verify.judge import plan_tests
from tasks.verify.sandbox import SandboxConfig, _probe, run_tests

pytestmark = pytest.mark.skipif(not _probe("bwrap"), reason="bubblewrap unavailable: sh tasks/verify/install_sandbox.sh")

REPO = Path(__file__).resolve().parents[3]
CANARY = f"canary-{uuid.uuid4().hex}"
TESTS = ["assert f(1) == 987654321", "assert f(2) == 123456789", "assert f(3) == 555555555"]
WRONG = "def f(x):\n    return x\n"
RIGHT = "def f(x):\n    return {1: 987654321, 2: 123456789, 3: 555555555}[x]\n"
UID_LO, UID_HI = 61000, 62000
CFG = CodeConfig(sandbox=SandboxConfig(wall_s=6.0, cpu_s=4, memory_mb=256, max_processes=16, scratch_mb=16))

_TMP_CANARY = Path("/tmp") / f"potstill-attack-{uuid.uuid4().hex}"
_REPO_CANARY = REPO / f"attack-{uuid.uuid4().hex}"
_HOME_CANARY = Path.home() / f"attack-{uuid.uuid4().hex}"
_SHM_CANARY = Path("/dev/shm") / f"attack-{uuid.uuid4().hex}"
OUTSIDE = [_TMP_CANARY, _REPO_CANARY, _HOME_CANARY, _SHM_CANARY]

# name -> (program, verdict statuses allowed). All functions are wrong unless noted.
FORGERIES = {
    "replace_compile": ("import builtins\n_c = builtins.compile\n"
                        "builtins.compile = lambda s, fn, mode, *a, **k: _c('True' if mode == 'eval' else 'pass', fn, mode)\n" + WRONG),
    "replace_exec": "import builtins\nbuiltins.exec = lambda *a, **k: None\nbuiltins.eval = lambda *a, **k: True\n" + WRONG,
    "fake_stream_into_fds": (
        "import os, json\n"
        "for fd in range(3, 1024):\n"
        "    for line in ['ready', 'loaded', 'test 0 1 -', 'test 1 1 -', 'test 2 1 -', 'done']:\n"
        "        try: os.write(fd, (line + '\\n').encode())\n        except OSError: pass\n"
        "    for k in range(8):\n"
        "        try: os.write(fd, (json.dumps({'i': k, 'v': ['b', True]}) + '\\n').encode())\n"
        "        except OSError: pass\n" + WRONG),
    "rewrite_steps_via_frames": (
        "import sys\nfr = sys._getframe(1)\n"
        "while fr is not None:\n"
        "    if 'payload' in fr.f_locals:\n"
        "        fr.f_locals['payload']['steps'][:] = [['eval', 'True'] for _ in fr.f_locals['payload']['steps']]\n"
        "    fr = fr.f_back\n" + WRONG),
    "emit_then_kill_runner": (
        "import sys, os\nfr = sys._getframe(1)\n"
        "while fr is not None and 'emit' not in fr.f_locals:\n    fr = fr.f_back\n"
        "emit = fr.f_locals['emit']\n"
        "for k in range(8):\n    emit({'i': k, 'v': ['b', True]})\n"
        "emit({'done': 1})\nos.kill(os.getpid(), 9)\n"),
    "always_equal_object": "class A:\n    def __eq__(self, o): return True\n    __hash__ = object.__hash__\n"
                           "def f(x):\n    return A()\n",
    "int_subclass_equal": "class I(int):\n    def __eq__(self, o): return True\n    __hash__ = int.__hash__\n"
                          "def f(x):\n    return I(0)\n",
    "read_tests_from_cwd": (
        "import os, json, glob\nfound = []\n"
        "for root in ['.', '/sandbox', '/tmp', '/work', '/root', '/proc/1/cwd']:\n"
        "    for p in glob.glob(root + '/**/*', recursive=True)[:2000]:\n"
        "        try: found.append(open(p).read(100000))\n        except Exception: pass\n"
        "def f(x):\n"
        "    import re\n"
        "    for text in found:\n"
        "        m = re.search(r'f\\(' + str(x) + r'\\) == (\\d+)', text)\n"
        "        if m: return int(m.group(1))\n"
        "    return x\n"),
    "os_exit_early": "import os\nos._exit(0)\n",
    "system_exit_in_call": "def f(x):\n    raise SystemExit(0)\n",
    "fake_stdout_markers": "print('ready\\nloaded\\ntest 0 1 -\\ndone')\nprint('{\"i\": 0, \"v\": [\"i\", \"3ade68b1\"]}')\n" + WRONG,
    "replace_assertion_error": "import builtins\nbuiltins.AssertionError = type('X', (Exception,), {})\n" + WRONG,
    "shadow_builtins_the_judge_uses": "abs = lambda v: 0\nsorted = lambda v: [987654321]\n" + WRONG,
    "deeply_nested_value": "def f(x):\n    v = []\n    for _ in range(100000):\n        v = [v]\n    return v\n",
    "huge_value_floods_result_pipe": "def f(x):\n    return 'x' * (64 * 1024 * 1024)\n",
    "kill_everything": "import os, signal\ntry:\n    os.kill(-1, signal.SIGKILL)\nexcept OSError:\n    pass\n" + WRONG,
    "hash_collisions_for_the_judge": "def f(x):\n    return [k * ((1 << 61) - 1) for k in range(1, 60000)]\n",
    "patch_the_expected_side_module": "import fractions\nfractions.Fraction = lambda *a: 0\ndef f(x):\n    return 0\n",
    "patch_builtins_the_expected_side_uses": "import builtins\nbuiltins.map = lambda *a: [0]\ndef f(x):\n    return [0]\n",
}
FORGERY_TESTS = {
    "shadow_builtins_the_judge_uses": ["assert abs(f(5) - 987654321) < 1", "assert sorted([f(1)]) == [987654321]"],
    # the expected side needs code: the candidate must never be the one to compute it
    "patch_the_expected_side_module": ["from fractions import Fraction\nassert f(1) == Fraction(5)"],
    "patch_builtins_the_expected_side_uses": ["assert f(1) == list(map(int, '5'))"],
    "hash_collisions_for_the_judge": ["assert set(f(1)) == {987654321}"],
}


def _items(programs: dict[str, str], tests: dict[str, list[str]] | None = None) -> pl.DataFrame:
    return pl.DataFrame([
        {"trace_id": name, "prompt_id": "p", "completion_text": f"<think>x</think>\n```python\n{code}```\n",
         "tests_json": json.dumps((tests or {}).get(name, TESTS))}
        for name, code in programs.items()
    ])


def _sandbox_procs() -> list[dict]:
    """Processes of this code's sandboxes (other checkouts on a shared machine may run their own)."""
    return [p.info for p in psutil.process_iter(["pid", "uids", "cmdline"])
            if p.info["uids"] and UID_LO <= p.info["uids"].real < UID_HI
            and any(a.startswith('"""Runs inside the sandbox') for a in p.info["cmdline"] or [])]


def _assert_host_untouched(out: pl.DataFrame) -> None:
    for path in OUTSIDE:
        assert not path.exists(), f"a candidate wrote {path}"
    stored = json.dumps(out.to_dicts(), default=str)
    assert CANARY not in stored, "the canary environment value reached a stored verdict"
    assert "root:" not in stored, "/etc/shadow content reached a stored verdict"
    time.sleep(0.3)
    assert _sandbox_procs() == [], "sandboxed processes outlived their run"


@pytest.fixture(autouse=True)
def canary_env(monkeypatch):
    monkeypatch.setenv("POTSTILL_CANARY_SECRET", CANARY)


def test_payload_sent_to_the_candidate_holds_no_expected_value():
    plan = plan_tests([*TESTS, "expected = [987654321]\nassert g(1) == expected", "assert math.isclose(h(2), 0.123456789)"])
    sent = json.dumps([s.src for s in plan.steps])
    assert all(secret not in sent for secret in ("987654321", "123456789", "555555555", "0.123456789")), sent


def test_seven_forging_techniques_and_more_never_pass():
    started = time.monotonic()
    out = verify_code(_items({k: v for k, v in FORGERIES.items()}, FORGERY_TESTS), CFG, workers=2)
    assert time.monotonic() - started < 60, "a hostile value stalled the judge"
    got = {r["trace_id"]: (r["verdict_status"], r["verdict_reason"], r["n_tests_passed"]) for r in out.to_dicts()}
    forged = {k: v for k, v in got.items() if v[0] == "correct" or (v[2] or 0) > 0}
    assert forged == {}, f"forged passes: {forged}"
    assert len(got) == len(FORGERIES) >= 16
    assert got["os_exit_early"][:2] == ("incorrect", "exited_early")
    assert got["emit_then_kill_runner"][0] == "incorrect"
    assert got["huge_value_floods_result_pipe"][0] in ("incorrect", "timeout")
    assert got["patch_the_expected_side_module"][:2] == ("unverifiable", "tests_unsupported")
    assert got["patch_builtins_the_expected_side_uses"][:2] == ("incorrect", "tests_failed")
    _assert_host_untouched(out)


ESCAPES = {
    "read_etc_shadow": (("import sys\ntry:\n    sys.stderr.write(open('/etc/shadow').read())\n    SHADOW = True\n"
                        "except OSError:\n    SHADOW = False\n"), ["assert SHADOW is False"]),
    "write_outside": ("import os\nWROTE = []\n" + "".join(
        f"try:\n    open({str(p)!r}, 'w').write('escaped')\n    WROTE.append({str(p)!r})\nexcept OSError:\n    pass\n"
        for p in OUTSIDE), ["assert isinstance(WROTE, list)"]),  # /dev/shm is the sandbox's own tmpfs: checked on the host
    "parent_env_via_proc": (
        ("import os, sys\nLEAK = []\n"
        "for pid in os.listdir('/proc'):\n"
        "    if pid.isdigit():\n"
        "        for name in ('environ', 'cmdline'):\n"
        "            try:\n                t = open(f'/proc/{pid}/{name}', 'rb').read().decode('latin1')\n"
        "            except OSError:\n                continue\n"
        "            if 'POTSTILL_CANARY' in t or 'canary-' in t:\n                LEAK.append(t)\n"
        "sys.stderr.write(repr(LEAK) + repr(dict(os.environ)))\n"), ["assert LEAK == []"]),
    "host_memory": (("import os\nMEM = []\nfor pid in ['1', '2', str(os.getppid())]:\n    try:\n"
                    "        MEM.append(len(open(f'/proc/{pid}/mem', 'rb').read(16)))\n    except OSError:\n        pass\n"
                    "HOST_PIDS = sum(1 for p in os.listdir('/proc') if p.isdigit())\n"),
                    ["assert MEM == []", "assert HOST_PIDS <= 4"]),
    "unix_sockets_under_run": ("import os\nRUN = os.path.exists('/run') or os.path.exists('/var/run')\n",
                               ["assert RUN is False"]),
    "user_namespace": (("import ctypes, subprocess\nlibc = ctypes.CDLL(None, use_errno=True)\n"
                       "USERNS = libc.unshare(0x10000000) == 0\n"
                       "CLI = subprocess.run(['unshare', '-U', 'true']).returncode == 0\n"),
                       ["assert USERNS is False", "assert CLI is False"]),
    "become_root": (("import os\ntry:\n    os.setuid(0)\n    ROOT = True\nexcept OSError:\n    ROOT = False\n"
                    "UID = os.getuid()\nCAPS = [l for l in open('/proc/self/status') if l.startswith(('CapEff', 'CapBnd', 'NoNewPrivs'))]\n"),
                    ["assert ROOT is False", "assert UID >= 61000", ("assert CAPS == ['CapEff:\\t0000000000000000\\n', "
                     "'CapBnd:\\t0000000000000000\\n', 'NoNewPrivs:\\t1\\n']")]),
    # the interpreter's prefix is bound read-only (a venv inside the checkout makes the checkout's folder
    # appear, holding only that venv); nothing else of the repository, the warehouse or home is in view
    "repo_and_warehouse_not_in_view": (("import os\nSEEN = [p for p in ('/root/.local', '/home', '/etc/passwd', "
                                       f"{str(REPO / 'pyproject.toml')!r}, {str(REPO / 'tasks')!r}, "
                                       f"{str(REPO / 'warehouse')!r}) if os.path.exists(p) and (not os.path.isdir(p) "
                                       "or os.listdir(p))]\n"),
                                       ["assert SEEN == []"]),
}


def test_privilege_and_escape_attempts_fail(tmp_path):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    server.settimeout(0.2)
    accepted: list = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    unix_path = tmp_path / "host.sock"
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(str(unix_path))
    unix.listen(1)
    port = server.getsockname()[1]
    programs = {name: code for name, (code, _) in ESCAPES.items()}
    tests = {name: t for name, (_, t) in ESCAPES.items()}
    programs["sockets"] = (
        "import socket\nREACHED = []\n"
        f"for fam, addr in [(socket.AF_INET, ('127.0.0.1', {port})), (socket.AF_UNIX, {str(unix_path)!r})]:\n"
        "    try:\n        socket.socket(fam).connect(addr)\n        REACHED.append(str(addr))\n    except OSError:\n        pass\n")
    tests["sockets"] = ["assert REACHED == []"]
    try:
        out = verify_code(_items(programs, tests), CFG, workers=2)
    finally:
        stop.set()
        thread.join(timeout=2)
        server.close()
        unix.close()
    got = {r["trace_id"]: (r["verdict_status"], r["detail"][-300:]) for r in out.to_dicts()}
    # these candidates report what they could do; the tests assert that every attempt failed
    assert {k: v[0] for k, v in got.items()} == dict.fromkeys(programs, "correct"), got
    assert accepted == []
    assert "no_userns" in out["detail"][0] and "own_uid" in out["detail"][0] and "cgroup_memory" in out["detail"][0]
    _assert_host_untouched(out)


def test_resource_exhaustion_is_bounded_per_sandbox():
    programs = {
        "fork_bomb": "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
        "memory_across_children": (
            "import os, time\nfor _ in range(6):\n    if os.fork() == 0:\n"
            "        b = bytearray(150 * 1024 * 1024)\n        for i in range(0, len(b), 4096): b[i] = 1\n"
            "        time.sleep(30)\n        os._exit(0)\ntime.sleep(30)\n"),
        "fill_scratch": "import os\nwith open('/sandbox/big', 'wb') as fh:\n    while True:\n        fh.write(b'x' * (1 << 20))\n",
        "fill_dev_shm": "import os\nwith open('/dev/shm/big', 'wb') as fh:\n    while True:\n        fh.write(b'x' * (1 << 20))\n",
        "busy_loop": "def f(x):\n    while True:\n        pass\n",
    }
    shm_before = psutil.disk_usage("/dev/shm").used
    results = {name: run_tests(code, TESTS, CFG.sandbox) for name, code in programs.items()}
    limit = CFG.sandbox.memory_mb * 1024 * 1024
    for name, r in results.items():
        assert r.n_passed == 0, name
        assert r.peak_memory_bytes is not None and r.peak_memory_bytes <= limit + (8 << 20), (name, r.peak_memory_bytes)
    assert results["fill_scratch"].load_error == "OSError"  # ENOSPC / EFBIG at the tmpfs size, not the host disk
    # nothing the sandboxes wrote stays in the host's memory (a tmpfs file outlives its process); the
    # host's free memory is not asserted on: other jobs on a shared machine move it by gigabytes
    assert psutil.disk_usage("/dev/shm").used <= shm_before + (8 << 20)
    time.sleep(0.3)
    assert _sandbox_procs() == []


def test_two_processes_verify_at_once_with_tmpdir_inside_tmp(tmp_path):
    """Two potstill processes, each with $TMPDIR inside /tmp, one running fork bombs: correct stays correct."""
    script = (
        "import json, sys, polars as pl\n"
        "from tasks.verify.code import CodeConfig, verify_code\n"
        "from tasks.verify.sandbox import SandboxConfig\n"
        f"RIGHT = {RIGHT!r}\nBOMB = 'import os\\nwhile True:\\n    try: os.fork()\\n    except OSError: pass\\n'\n"
        f"TESTS = {TESTS!r}\n"
        "progs = {f'r{i}': RIGHT for i in range(6)}\n"
        "if sys.argv[1] == 'bomb':\n    progs.update({f'b{i}': BOMB for i in range(3)})\n"
        "items = pl.DataFrame([{'trace_id': k, 'prompt_id': 'p', 'completion_text': f'```python\\n{v}```',"
        " 'tests_json': json.dumps(TESTS)} for k, v in progs.items()])\n"
        "cfg = CodeConfig(sandbox=SandboxConfig(wall_s=4.0, cpu_s=3, max_processes=16))\n"
        "out = verify_code(items, cfg, workers=2)\n"
        "print(json.dumps(dict(zip(out['trace_id'], out['verdict_status']))))\n"
    )
    procs = []
    for mode in ("bomb", "plain"):
        tmpdir = Path("/tmp") / f"potstill-tmpdir-{uuid.uuid4().hex}"
        tmpdir.mkdir()
        env = {**os.environ, "TMPDIR": str(tmpdir), "PYTHONPATH": str(REPO)}
        procs.append((tmpdir, subprocess.Popen([sys.executable, "-c", script, mode], env=env, cwd=tmp_path,
                                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
    for tmpdir, proc in procs:
        out, err = proc.communicate(timeout=150)
        assert proc.returncode == 0, err[-2000:]
        verdicts = json.loads(out.strip().splitlines()[-1])
        assert all(v == "correct" for k, v in verdicts.items() if k.startswith("r")), verdicts
        assert all(v != "correct" for k, v in verdicts.items() if k.startswith("b")), verdicts
        assert list(tmpdir.iterdir()) == [], "the sandbox left files in $TMPDIR"
        tmpdir.rmdir()
    time.sleep(0.3)
    assert _sandbox_procs() == []


def test_through_potstill_run_verify(tmp_path):
    """The CLI with default settings: forged candidates are not correct, no canary in the warehouse."""
    from warehouse import Warehouse

    wh_path = tmp_path / "wh.duckdb"
    wh = Warehouse(wh_path)
    now = "2025-01-01 00:00:00"
    wh.load("raw.raw_prompts", pl.DataFrame([{
        "prompt_id": "pc", "source": "attack", "domain": "code", "problem_text": "f", "reference_answer": None,
        "tests_json": json.dumps(TESTS), "split": "train", "ingested_at": now, "run_id": "seed"}]).with_columns(
        pl.col("ingested_at").str.to_datetime()), key=["prompt_id"])
    chosen = ["replace_compile", "emit_then_kill_runner", "always_equal_object", "read_tests_from_cwd",
              "fake_stream_into_fds", "rewrite_steps_via_frames"]
    programs = {name: FORGERIES[name] for name in chosen}
    programs["env_thief"] = ESCAPES["parent_env_via_proc"][0] + "print(LEAK)\n" + WRONG
    programs["right"] = RIGHT
    wh.load("raw.raw_traces", pl.DataFrame([{
        "trace_id": name, "prompt_id": "pc", "model_id": "teacher-a", "origin": "imported", "sample_index": i,
        "completion_text": f"<think>x</think>\n```python\n{code}```", "is_truncated": False, "created_at": now,
        "run_id": "seed"} for i, (name, code) in enumerate(programs.items())]).with_columns(
        pl.col("created_at").str.to_datetime()), key=["trace_id"])
    env = {**os.environ, "PYTHONPATH": str(REPO), "POTSTILL_CANARY_SECRET": CANARY}
    cli = [sys.executable, "-c", "from flows.cli import main; main()", "--warehouse", str(wh_path), "run", "verify"]
    done = subprocess.run(cli, check=False, env=env, capture_output=True, text=True, timeout=170)
    assert done.returncode == 0, done.stderr[-2000:]
    got = dict(wh.query("select trace_id, verdict_status from raw.raw_verifications").iter_rows())
    assert got.pop("right") == "correct"
    assert got and all(v != "correct" for v in got.values()), got
    texts = wh.query("select * from raw.raw_verifications").to_dicts() + wh.query("select * from raw.raw_rejections").to_dicts()
    assert CANARY not in json.dumps(texts, default=str)
    assert CANARY not in done.stdout + done.stderr
    for path in OUTSIDE:
        assert not path.exists()
