"""Run an untrusted Python program against assert-tests in a sandboxed subprocess.

Protections, strongest available tier first (`SandboxConfig.isolation="auto"`):

* `bwrap` (bubblewrap, `tasks/verify/install_sandbox.sh`): read-only root filesystem, private
  /tmp, /dev and /proc, only the scratch directory writable; new network, PID, IPC and UTS
  namespaces (no network, whole tree dies with the sandbox); when we are root, the program runs
  as an unprivileged uid so the process-count limit holds.
* `unshare` (util-linux, root only): new network and PID namespaces; the filesystem is NOT
  protected beyond the fresh scratch cwd.
* `none`: rlimits, scratch cwd, scrubbed environment, own process group only (as root without
  bubblewrap the process-count limit is not enforced: the kernel exempts root).

Every tier applies rlimits (CPU, address space, processes, file size, open files), a scrubbed
environment, a fresh scratch cwd, an output cap and a wall-clock deadline after which the whole
process group (and namespace) is SIGKILLed. `SandboxResult.protections` lists what was in force.
"""

from __future__ import annotations

import itertools
import json
import os
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from tasks.common.ids import config_fingerprint
from tasks.verify.verdicts import VerifyError

RUNNER = Path(__file__).with_name("sandbox_runner.py")
TIERS = ("bwrap", "unshare", "none")
_uid_counter = itertools.count()


@dataclass(frozen=True)
class SandboxConfig:
    """Limits of one sandboxed run; its fingerprint is part of the code verifier's version."""

    wall_s: float = field(default=10.0, metadata={"help": "wall-clock deadline; the whole process tree is killed after it"})
    cpu_s: int = field(default=5, metadata={"help": "RLIMIT_CPU seconds of CPU time"})
    memory_mb: int = field(default=1024, metadata={"help": "RLIMIT_AS address-space limit in MiB"})
    max_processes: int = field(default=32, metadata={"help": "RLIMIT_NPROC for the sandbox user (fork bombs stop here)"})
    max_file_mb: int = field(default=16, metadata={"help": "RLIMIT_FSIZE: largest file the program may write, MiB"})
    max_open_files: int = field(default=64, metadata={"help": "RLIMIT_NOFILE open descriptors"})
    output_limit_kb: int = field(default=256, metadata={"help": "stdout+stderr cap in KiB; exceeding it kills the run"})
    isolation: str = field(default="auto", metadata={"help": "auto | bwrap | unshare | none (auto: strongest available)"})
    sandbox_uid: int = field(default=61000, metadata={"help": "first uid used for sandboxed programs when running as root"})

    def __post_init__(self) -> None:
        if self.isolation not in ("auto", *TIERS):
            raise ValueError(f"isolation must be auto, bwrap, unshare or none, not {self.isolation!r}")

    def __str__(self) -> str:
        return f"SandboxConfig({config_fingerprint(self)})"


@dataclass(frozen=True)
class SandboxResult:
    """What one sandboxed run did. `tests[i]` is True/False, or None when test i never reported."""

    tests: tuple[bool | None, ...]
    ready: bool  # the runner started (else the sandbox itself failed)
    loaded: bool  # the candidate's top level ran without raising
    load_error: str | None
    finished: bool  # the runner reported every test
    exit_code: int | None
    timed_out: bool
    output_exceeded: bool
    stdout: str
    stderr: str
    protections: tuple[str, ...]
    tier: str
    elapsed_s: float

    @property
    def n_passed(self) -> int:
        return sum(1 for t in self.tests if t)

    @property
    def signal_name(self) -> str | None:
        """The signal that ended the candidate (runner exit code 128+n), if any."""
        if self.exit_code is not None and self.exit_code > 128:
            try:
                return signal.Signals(self.exit_code - 128).name
            except ValueError:
                return f"signal {self.exit_code - 128}"
        return None


@cache
def _probe(tier: str) -> bool:
    if tier == "none":
        return True
    if tier == "bwrap":
        cmd = ["bwrap", "--ro-bind", "/", "/", "--unshare-net", "--unshare-pid", "--die-with-parent", "true"]
    else:
        if os.geteuid() != 0:
            return False
        cmd = ["unshare", "--net", "--pid", "--fork", "--kill-child", "true"]
    if shutil.which(cmd[0]) is None:
        return False
    try:
        return subprocess.run(cmd, check=False, capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def available_tier(requested: str = "auto") -> str:
    """The isolation tier a run will use; an explicitly requested tier that is missing is an error."""
    if requested != "auto":
        if not _probe(requested):
            raise VerifyError(
                f"sandbox isolation {requested!r} is not available here; install bubblewrap "
                "(`sh tasks/verify/install_sandbox.sh`) or use isolation='auto'"
            )
        return requested
    return next(t for t in TIERS if _probe(t))


def _locked_ancestor(path: Path) -> Path | None:
    """The first ancestor of `path` that other users cannot traverse (e.g. /root with mode 700)."""
    for parent in reversed(path.parents):
        try:
            if not parent.stat().st_mode & stat.S_IXOTH:
                return parent
        except OSError:
            return None
    return None


def _python_binds() -> list[str]:
    """bwrap args that make the interpreter reachable by an unprivileged uid (pyenv under /root)."""
    args: list[str] = []
    hidden: set[Path] = set()
    for prefix in sorted({Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), Path(sys.prefix).absolute()}):
        locked = _locked_ancestor(prefix / "x")
        if locked is not None and locked not in hidden:
            args += ["--perms", "0755", "--tmpfs", str(locked)]
            hidden.add(locked)
        # bound again after the private /tmp, so a venv that lives under /tmp (a CI checkout) stays reachable
        args += ["--ro-bind", str(prefix), str(prefix)]
    return args


def _python_open_to_others() -> bool:
    return all(
        _locked_ancestor(Path(p).resolve() / "x") is None for p in (sys.base_prefix, sys.prefix)
    )


def _command(tier: str, scratch: Path, uid: int | None, limits: dict, result_fd: int) -> list[str]:
    python = [sys.executable, "-I", "-B", str(scratch / "runner.py"), json.dumps(limits), str(result_fd)]
    drop = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"] if uid is not None else []
    if tier == "bwrap":
        return [
            "bwrap", "--ro-bind", "/", "/", "--tmpfs", "/tmp", *_python_binds(),
            "--bind", str(scratch), str(scratch),
            "--dev", "/dev", "--proc", "/proc",
            "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--die-with-parent", "--new-session", "--chdir", str(scratch),
            "--clearenv", *itertools.chain.from_iterable(["--setenv", k, v] for k, v in _clean_env(scratch).items()),
            *drop, *python,
        ]
    if tier == "unshare":
        return ["unshare", "--net", "--pid", "--fork", "--kill-child", *drop, *python]
    return [*drop, *python]


def _clean_env(scratch: Path) -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(scratch), "LANG": "C.UTF-8", "PYTHONHASHSEED": "0"}


def _protections(tier: str, uid: int | None) -> tuple[str, ...]:
    base = ["rlimits", "scratch_cwd", "clean_env", "process_group_kill", "output_cap"]
    if uid is not None or os.geteuid() != 0:
        base.append("nproc_limit")  # the kernel ignores RLIMIT_NPROC for root
    if tier == "bwrap":
        base += ["readonly_fs", "private_tmp", "no_network", "pid_namespace"]
    elif tier == "unshare":
        base += ["no_network", "pid_namespace"]
    if uid is not None:
        base.append("unprivileged_uid")
    return tuple(base)


def run_tests(program: str, tests: list[str], cfg: SandboxConfig) -> SandboxResult:
    """Run `program` then each assert-string in `tests` inside the sandbox; never raises for bad programs.

    >>> run_tests("def f(x):\\n    return x + 1", ["assert f(1) == 2"], SandboxConfig()).tests   # doctest: +SKIP
    (True,)
    """
    tier = available_tier(cfg.isolation)
    is_root = os.geteuid() == 0
    uid = None
    if is_root and (tier == "bwrap" or _python_open_to_others()):
        uid = cfg.sandbox_uid + next(_uid_counter) % 1000
    limits = {
        "cpu_s": cfg.cpu_s,
        "memory_bytes": cfg.memory_mb * 1024 * 1024,
        "max_processes": cfg.max_processes,
        "max_file_bytes": cfg.max_file_mb * 1024 * 1024,
        "max_open_files": cfg.max_open_files,
    }
    scratch = Path(tempfile.mkdtemp(prefix="potstill-sbx-"))
    read_fd, write_fd = os.pipe()
    try:
        (scratch / "candidate.py").write_text(program, encoding="utf-8")
        (scratch / "tests.json").write_text(json.dumps(tests), encoding="utf-8")
        shutil.copyfile(RUNNER, scratch / "runner.py")
        if uid is not None:
            os.chown(scratch, uid, uid)
            os.chmod(scratch, 0o700)
        cmd = _command(tier, scratch, uid, limits, write_fd)
        env = _clean_env(scratch)
        started = time.monotonic()
        proc = subprocess.Popen(
            cmd, cwd=scratch, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            pass_fds=(write_fd,), start_new_session=True,
        )
        os.close(write_fd)
        write_fd = -1
        streams = _collect(proc, read_fd, started + cfg.wall_s, cfg.output_limit_kb * 1024)
        elapsed = time.monotonic() - started
    finally:
        if write_fd >= 0:
            os.close(write_fd)
        os.close(read_fd)
        shutil.rmtree(scratch, ignore_errors=True)
    out, err, lines, timed_out, exceeded = streams
    results: list[bool | None] = [None] * len(tests)
    ready = loaded = finished = False
    load_error = None
    for line in lines:
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "ready":
            ready = True
        elif parts[0] == "loaded":
            loaded = True
        elif parts[0] == "load_error":
            load_error = parts[1] if len(parts) > 1 else "Exception"
        elif parts[0] == "test" and len(parts) >= 3 and parts[1].isdigit() and int(parts[1]) < len(tests):
            results[int(parts[1])] = parts[2] == "1"
        elif parts[0] == "done":
            finished = True
    return SandboxResult(
        tests=tuple(results), ready=ready, loaded=loaded, load_error=load_error, finished=finished,
        exit_code=proc.returncode if not timed_out else None, timed_out=timed_out, output_exceeded=exceeded,
        stdout=out.decode("utf-8", "replace"), stderr=err.decode("utf-8", "replace"),
        protections=_protections(tier, uid), tier=tier, elapsed_s=elapsed,
    )


def _collect(proc: subprocess.Popen, result_fd: int, deadline: float, cap: int):
    """Read stdout, stderr and the result pipe until all close and the runner exits, or the deadline."""
    sel = selectors.DefaultSelector()
    buffers = {"out": bytearray(), "err": bytearray(), "res": bytearray()}
    sel.register(proc.stdout, selectors.EVENT_READ, "out")
    sel.register(proc.stderr, selectors.EVENT_READ, "err")
    sel.register(result_fd, selectors.EVENT_READ, "res")
    total_output = 0
    timed_out = exceeded = False
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = proc.poll() is None or bool(sel.get_map())
                break
            if not sel.get_map():
                try:
                    proc.wait(timeout=remaining)
                except subprocess.TimeoutExpired:
                    timed_out = True
                break
            if proc.poll() is not None and b"done" in buffers["res"]:
                # Runner finished; a straggler holding a pipe open must not stretch the run.
                _drain(sel, buffers, cap)
                break
            for key, _ in sel.select(timeout=min(remaining, 0.25)):
                fd = key.fileobj if isinstance(key.fileobj, int) else key.fileobj.fileno()
                chunk = os.read(fd, 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                if key.data == "res":
                    buffers["res"] += chunk[: 1_000_000 - len(buffers["res"])]
                    continue
                total_output += len(chunk)
                room = cap - len(buffers["out"]) - len(buffers["err"])
                buffers[key.data] += chunk[: max(0, room)]
                if total_output > cap:
                    exceeded = True
            if exceeded:
                break
    finally:
        sel.close()
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()
    lines = buffers["res"].decode("utf-8", "replace").splitlines()
    return bytes(buffers["out"]), bytes(buffers["err"]), lines, timed_out, exceeded


def _drain(sel: selectors.BaseSelector, buffers: dict[str, bytearray], cap: int) -> None:
    for key, _ in sel.select(timeout=0):
        fd = key.fileobj if isinstance(key.fileobj, int) else key.fileobj.fileno()
        chunk = os.read(fd, 65536)
        if key.data == "res":
            buffers["res"] += chunk
        else:
            room = cap - len(buffers["out"]) - len(buffers["err"])
            buffers[key.data] += chunk[: max(0, room)]
