"""Run an untrusted Python program in a sandbox; the judge (this process) decides from values only.

The candidate never sees a test. `tasks.verify.judge` splits each assert-test into the calls that
need the candidate's code (sent here as *steps*) and the comparison with the expected value (kept
by the judge). The sandbox gets the program and the steps on a memfd as stdin, and answers with one
JSON line per step on a pipe that only this process reads; nothing the candidate writes anywhere else
(stdout, files, exit codes) can make a test pass. A value that never arrives fails its test.

Tiers (`SandboxConfig.isolation`):

* `bwrap` (bubblewrap; `auto` uses it and refuses code verification without it): a private root
  holding only /usr, the interpreter and size-limited tmpfs scratch (/sandbox, /tmp, /dev/shm); no
  /etc, /home, /root, /run (no host sockets), repository, warehouse or tests file; own /proc, PID,
  network, IPC and UTS namespaces; the program runs as an unprivileged uid leased for this run only
  (a lock file per uid, so concurrent potstill processes never share one), with no capabilities
  (bounding set empty), `no_new_privs`, and a seccomp filter that refuses new user namespaces.
* `unshare` / `none` (only when chosen explicitly): the same unprivileged uid, no capabilities,
  `no_new_privs`, cgroup limits and scratch cwd; `unshare` adds network and PID namespaces. The host
  filesystem stays readable to the candidate (world-readable files only). Weaker: say so.

Limits per sandbox, not per process: a cgroup per run (v1 `memory` + `pids` controllers, or v2
`memory.max` + `pids.max`) bounds the whole candidate tree's memory (tmpfs scratch included) and
process count; it is killed as a whole at the end. Where no cgroup is writable (not root, or a
read-only cgroupfs), only per-process rlimits apply and `protections` lacks `cgroup_memory`.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import random
import selectors
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, fields
from functools import cache
from pathlib import Path
from typing import Self

from tasks.common.ids import config_fingerprint
from tasks.verify.judge import Plan, decode, judge_results, plan_tests
from tasks.verify.verdicts import VerifyError

RUNNER = Path(__file__).with_name("sandbox_runner.py")
TIERS = ("bwrap", "unshare", "none")
UID_RANGE = 1000
SCRATCH = "/sandbox"
RESULT_CAP = 8_000_000  # bytes of result lines the judge reads
INSTALL_HINT = "apt-get install bubblewrap (or: sh tasks/verify/install_sandbox.sh)"


@dataclass(frozen=True)
class SandboxConfig:
    """Limits of one sandboxed run; its fingerprint is part of the code verifier's version."""

    wall_s: float = field(default=10.0, metadata={"help": "wall-clock deadline; the whole process tree is killed after it"})
    cpu_s: int = field(default=5, metadata={"help": "RLIMIT_CPU seconds of CPU time per process"})
    memory_mb: int = field(default=1024, metadata={"help": "memory of the whole sandbox (cgroup; also RLIMIT_AS per process), MiB"})
    max_processes: int = field(default=32, metadata={"help": "processes of the whole sandbox (cgroup pids; also RLIMIT_NPROC)"})
    max_file_mb: int = field(default=16, metadata={"help": "RLIMIT_FSIZE: largest file the program may write, MiB"})
    scratch_mb: int = field(default=64, metadata={"help": "size of each scratch tmpfs (/sandbox, /tmp, /dev/shm), MiB"})
    max_open_files: int = field(default=64, metadata={"help": "RLIMIT_NOFILE open descriptors"})
    output_limit_kb: int = field(default=256, metadata={"help": "stdout+stderr cap in KiB; exceeding it kills the run"})
    isolation: str = field(default="auto", metadata={"help": "auto | bwrap | unshare | none (auto: bwrap, or refuse)"})
    sandbox_uid: int = field(default=61000, metadata={"help": "first of 1000 uids leased to sandboxed programs (as root)"})

    def __post_init__(self) -> None:
        if self.isolation not in ("auto", *TIERS):
            raise ValueError(f"isolation must be auto, bwrap, unshare or none, not {self.isolation!r}")
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "isolation":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"sandbox setting {f.name} must be a finite number > 0, not {value!r}")
        if not 1000 <= self.sandbox_uid <= 2**31 - UID_RANGE:
            raise ValueError(f"sandbox setting sandbox_uid must be an unprivileged uid (>= 1000), not {self.sandbox_uid}")

    def __str__(self) -> str:
        return f"SandboxConfig({config_fingerprint(self)})"


@dataclass(frozen=True)
class SandboxResult:
    """What one sandboxed run did. `tests[i]`: True/False as the judge decided, None when unsupported."""

    tests: tuple[bool | None, ...]
    ready: bool  # the runner started (else the sandbox itself failed)
    loaded: bool  # the candidate's top level ran without raising
    load_error: str | None
    finished: bool  # the runner reported every step
    exit_code: int | None
    timed_out: bool
    output_exceeded: bool
    stdout: str
    stderr: str
    protections: tuple[str, ...]
    tier: str
    elapsed_s: float
    problems: tuple[str | None, ...] = ()  # per test: why it is unsupported
    peak_memory_bytes: int | None = None  # the whole sandbox's peak (cgroup), when measured

    @property
    def n_passed(self) -> int:
        return sum(1 for t in self.tests if t)

    @property
    def n_unsupported(self) -> int:
        return sum(1 for t in self.tests if t is None)

    @property
    def signal_name(self) -> str | None:
        """The signal that ended the candidate (exit code 128+n), if any."""
        if self.exit_code is not None and self.exit_code > 128:
            try:
                return signal.Signals(self.exit_code - 128).name
            except ValueError:
                return f"signal {self.exit_code - 128}"
        if self.exit_code is not None and self.exit_code < 0:
            return signal.Signals(-self.exit_code).name
        return None


# --- tiers -----------------------------------------------------------------------------------------


@cache
def _probe(tier: str) -> bool:
    if tier == "none":
        return os.geteuid() != 0 or shutil.which("setpriv") is not None
    if tier == "unshare":
        return os.geteuid() == 0 and shutil.which("unshare") is not None and _runs(
            ["unshare", "--net", "--pid", "--fork", "--kill-child", "true"])
    if shutil.which("bwrap") is None:
        return False
    return _runs(_bwrap_args(64, None) + ["true"])


def _runs(cmd: list[str]) -> bool:
    try:
        return subprocess.run(cmd, check=False, capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def available_tier(requested: str = "auto") -> str:
    """The tier a run will use. `auto` is bubblewrap or a VerifyError: weaker tiers must be chosen explicitly."""
    if requested == "auto":
        if _probe("bwrap"):
            return "bwrap"
        raise VerifyError(
            "code verification needs bubblewrap (bwrap), which is missing or cannot create namespaces here: "
            f"{INSTALL_HINT}; or choose a weaker sandbox explicitly with --set isolation=unshare|none"
        )
    if not _probe(requested):
        raise VerifyError(f"sandbox isolation {requested!r} is not available here; {INSTALL_HINT}, or use isolation=auto")
    return requested


# --- one uid per running sandbox ----------------------------------------------------------------------


class _UidLease:
    """An exclusive uid from [first, first+1000) for one run, held by an flock on a per-uid lock file."""

    def __init__(self, first: int) -> None:
        self.first = first
        self.uid: int | None = None
        self._fd = -1

    def __enter__(self) -> Self:
        if os.geteuid() != 0:
            return self  # unprivileged already; no other uid to switch to
        directory = _lock_dir()
        start = random.randrange(UID_RANGE)
        for i in range(UID_RANGE):
            uid = self.first + (start + i) % UID_RANGE
            fd = os.open(directory / f"{uid}.lock", os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            self.uid, self._fd = uid, fd
            return self
        raise VerifyError(f"all {UID_RANGE} sandbox uids from {self.first} are in use ({directory})")

    def __exit__(self, *exc: object) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # releases the flock
            self._fd = -1


def _lock_dir() -> Path:
    # a fixed place (not $TMPDIR): every potstill process on this host must see the same locks
    for base in (Path("/run/lock"), Path("/var/lock"), Path("/tmp")):
        directory = base / "potstill-sandbox-uids"
        try:
            directory.mkdir(mode=0o700, exist_ok=True)
            if os.access(directory, os.W_OK):
                return directory
        except OSError:
            continue
    raise VerifyError("no writable lock directory for sandbox uids (/run/lock, /var/lock, /tmp)")


# --- cgroups: limits for the whole candidate tree -------------------------------------------------------


class _Cgroup:
    """A cgroup (v1 memory+pids, or v2) for one run; `procs_files` are where the launcher writes its pid."""

    def __init__(self, name: str, memory_bytes: int, max_pids: int) -> None:
        self.dirs: list[Path] = []
        self.kinds: list[str] = []
        own = _own_cgroups()
        v2_root = Path("/sys/fs/cgroup")
        if (v2_root / "cgroup.controllers").exists() and "0" in own:
            self._make(v2_root / own["0"].lstrip("/") / name, {"memory.max": memory_bytes, "pids.max": max_pids},
                       ("cgroup_memory", "cgroup_pids"))
            return
        for controller, limits, kind in (
            ("memory", {"memory.limit_in_bytes": memory_bytes, "memory.memsw.limit_in_bytes": memory_bytes}, "cgroup_memory"),
            ("pids", {"pids.max": max_pids}, "cgroup_pids"),
        ):
            if controller in own:
                self._make(Path("/sys/fs/cgroup") / controller / own[controller].lstrip("/") / name, limits, (kind,))

    def _make(self, path: Path, limits: dict[str, int], kinds: tuple[str, ...]) -> None:
        try:
            if path.exists():
                _empty_and_remove(path)
            path.mkdir()
        except OSError:
            return
        for key, value in limits.items():
            try:
                (path / key).write_text(str(value))
            except OSError:
                if key == "memory.memsw.limit_in_bytes":
                    continue  # no swap accounting: memory.limit_in_bytes alone bounds RAM
                _empty_and_remove(path)
                return
        self.dirs.append(path)
        self.kinds.extend(kinds)

    @property
    def procs_files(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in self.dirs]

    def peak_memory(self) -> int | None:
        for d in self.dirs:
            for name in ("memory.max_usage_in_bytes", "memory.peak"):
                try:
                    return int((d / name).read_text())
                except (OSError, ValueError):
                    continue
        return None

    def kill(self) -> None:
        """SIGKILL every process of the sandbox (all of them, whatever session or namespace they moved to)."""
        for d in self.dirs:
            try:
                pids = [int(p) for p in (d / "cgroup.procs").read_text().split()]
            except (OSError, ValueError):
                continue
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass

    def close(self) -> None:
        for d in self.dirs:
            _empty_and_remove(d)
        self.dirs = []


def _own_cgroups() -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            hier, controllers, path = line.split(":", 2)
            for c in controllers.split(",") if controllers else ["0" if hier == "0" else ""]:
                if c:
                    out[c] = path
    except (OSError, ValueError):
        pass
    return out


def _empty_and_remove(path: Path) -> None:
    """SIGKILL every process in the cgroup, then remove it (retrying while the kernel reaps them)."""
    kill_file = path / "cgroup.kill"
    for _ in range(200):
        try:
            if kill_file.exists():
                kill_file.write_text("1")
            pids = [int(p) for p in (path / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            pids = []
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.01)


# --- seccomp: no new user namespaces (and a few kernel interfaces a program never needs) ------------

_AUDIT_ARCH_X86_64 = 0xC000003E
_X86_64 = {"clone": 56, "unshare": 272, "clone3": 435, "setns": 308, "keyctl": 250, "add_key": 248,
           "request_key": 249, "bpf": 321, "perf_event_open": 298, "userfaultfd": 323, "ptrace": 101,
           "process_vm_readv": 310, "process_vm_writev": 311, "mount": 165, "umount2": 166, "pivot_root": 155,
           "open_by_handle_at": 304, "kexec_load": 246, "init_module": 175, "finit_module": 313}
_CLONE_NEWUSER = 0x10000000


def _seccomp_program() -> bytes | None:
    """A classic-BPF seccomp filter for bwrap --seccomp (x86-64 only; elsewhere None)."""
    if os.uname().machine != "x86_64":
        return None
    ld, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06
    allow, eperm, enosys = 0x7FFF0000, 0x00050000 | 1, 0x00050000 | 38
    denied = [n for name, n in _X86_64.items() if name not in ("clone", "unshare", "clone3")]
    # layout: 0 ld arch; 1 jeq arch; 2 ret eperm; 3 ld nr; 4 jge x32; 5 jeq clone3; 6 jeq unshare; 7 jeq clone;
    # 8.. jeq denied; then ret allow; flags: ld arg0; jset NEWUSER; ret allow; EPERM; ENOSYS
    n_denied = len(denied)
    allow_at = 8 + n_denied
    flags_at = allow_at + 1
    eperm_at = flags_at + 3
    enosys_at = eperm_at + 1
    prog: list[tuple[int, int, int, int]] = [
        (ld, 0, 0, 4),
        (jeq, 1, 0, _AUDIT_ARCH_X86_64),
        (ret, 0, 0, eperm),
        (ld, 0, 0, 0),
        (jge, eperm_at - 5, 0, 0x40000000),
        (jeq, enosys_at - 6, 0, _X86_64["clone3"]),
        (jeq, flags_at - 7, 0, _X86_64["unshare"]),
        (jeq, flags_at - 8, 0, _X86_64["clone"]),
    ]
    for i, nr in enumerate(denied):
        at = 8 + i
        prog.append((jeq, eperm_at - at - 1, 0, nr))
    prog += [
        (ret, 0, 0, allow),
        (ld, 0, 0, 16),  # args[0], low 32 bits
        (jset, eperm_at - (flags_at + 1) - 1, 0, _CLONE_NEWUSER),
        (ret, 0, 0, allow),
        (ret, 0, 0, eperm),
        (ret, 0, 0, enosys),
    ]
    return b"".join(struct.pack("HBBI", code, jt, jf, k) for code, jt, jf, k in prog)


# --- commands -------------------------------------------------------------------------------------------


def _python_binds() -> list[str]:
    """bwrap args that make this interpreter (and its venv) reachable, with traversable parent dirs."""
    args: list[str] = []
    made: set[Path] = {Path("/"), Path("/usr"), Path("/tmp")}
    prefixes = sorted({Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), Path(sys.prefix).absolute()})
    for prefix in prefixes:
        if prefix == Path("/usr") or Path("/usr") in prefix.parents:
            continue
        for parent in reversed(prefix.parents):
            if parent not in made:
                args += ["--perms", "0755", "--dir", str(parent)]
                made.add(parent)
        args += ["--ro-bind", str(prefix), str(prefix)]
        made.add(prefix)
    return args


def _root_binds() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    for f in ("/etc/ld.so.cache", "/etc/localtime"):
        args += ["--ro-bind-try", f, f]
    return args


def _bwrap_args(scratch_mb: int, seccomp_fd: int | None) -> list[str]:
    size = str(scratch_mb * 1024 * 1024)
    args = [
        "bwrap", "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
        "--die-with-parent", "--new-session",
        *_root_binds(),
        "--perms", "1777", "--size", size, "--tmpfs", "/tmp",
        *_python_binds(),
        "--proc", "/proc", "--dev", "/dev",
        "--perms", "1777", "--size", size, "--tmpfs", "/dev/shm",
        "--perms", "1777", "--size", size, "--tmpfs", SCRATCH,
        "--chdir", SCRATCH, "--clearenv",
    ]
    for key, value in _clean_env(SCRATCH).items():
        args += ["--setenv", key, value]
    if os.geteuid() != 0:
        args += ["--unshare-user", "--disable-userns"]
    if seccomp_fd is not None:
        args += ["--seccomp", str(seccomp_fd)]
    return args


def _drop(uid: int | None) -> list[str]:
    if uid is None:
        return ["setpriv", "--no-new-privs"] if shutil.which("setpriv") else []
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--no-new-privs",
            "--bounding-set=-all", "--inh-caps=-all"]


@cache
def _site_dirs() -> list[str]:
    """The interpreter's site-packages (venv and base), so candidates may import installed packages."""
    import site

    return [p for p in site.getsitepackages() if os.path.isdir(p)]


def _clean_env(home: str) -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home, "TMPDIR": "/tmp", "LANG": "C.UTF-8",
            "PYTHONHASHSEED": "0"}


def _protections(tier: str, uid: int | None, cgroup: _Cgroup, seccomp: bool) -> tuple[str, ...]:
    base = ["rlimits", "clean_env", "output_cap", "judge_apart", "no_capabilities", "no_new_privs", *cgroup.kinds]
    if uid is not None or os.geteuid() != 0:
        base += ["unprivileged_uid", "nproc_limit"]
    if uid is not None:
        base.append("own_uid")
    if tier == "bwrap":
        base += ["private_root", "readonly_fs", "scratch_tmpfs", "private_tmp", "no_network", "pid_namespace", "own_proc",
                 "no_host_sockets"]
        if seccomp or os.geteuid() != 0:
            base.append("no_userns")
    elif tier == "unshare":
        base += ["scratch_cwd", "no_network", "pid_namespace"]
    else:
        base.append("scratch_cwd")
    return tuple(base)


def _interpreter_open_to(uid: int | None) -> bool:
    if uid is None:
        return True
    for p in (sys.base_prefix, sys.prefix):
        for parent in reversed((Path(p).resolve() / "x").parents):
            try:
                if not parent.stat().st_mode & stat.S_IXOTH:
                    return False
            except OSError:
                return False
    return True


def _scratch_dir(uid: int | None) -> Path:
    """A host scratch dir for the weaker tiers, under $TMPDIR when the sandbox uid can reach it, else /tmp."""
    for base in (Path(tempfile.gettempdir()), Path("/tmp")):
        if uid is None or all(p.stat().st_mode & stat.S_IXOTH for p in [base, *base.parents]):
            path = Path(tempfile.mkdtemp(prefix="potstill-sbx-", dir=base))
            if uid is not None:
                os.chown(path, uid, uid)
            return path
    raise VerifyError("no scratch directory the sandbox uid can reach ($TMPDIR and /tmp are closed to other users)")


# --- running --------------------------------------------------------------------------------------------


def run_tests(program: str, tests: list[str], cfg: SandboxConfig) -> SandboxResult:
    """Run `program` in the sandbox and judge it against assert-`tests`; never raises for bad programs.

    >>> run_tests("def f(x):\\n    return x + 1", ["assert f(1) == 2"], SandboxConfig()).tests   # doctest: +SKIP
    (True,)
    """
    plan = plan_tests(tests, program)
    raw = run_steps(program, plan, cfg)
    verdicts = judge_results(plan, raw.pop("results"))
    return SandboxResult(tests=verdicts, problems=plan.problems, **raw)


def run_steps(program: str, plan: Plan, cfg: SandboxConfig) -> dict:
    """Run the candidate and its steps; the values it reports, decoded, plus what happened."""
    tier = available_tier(cfg.isolation)
    limits = {
        "cpu_s": cfg.cpu_s, "memory_bytes": cfg.memory_mb * 1024 * 1024, "max_processes": cfg.max_processes,
        "max_file_bytes": cfg.max_file_mb * 1024 * 1024, "max_open_files": cfg.max_open_files,
    }
    payload = json.dumps({"program": program, "steps": [[s.kind, s.src] for s in plan.steps]}).encode()
    with _UidLease(cfg.sandbox_uid) as lease:
        uid = lease.uid
        if tier != "bwrap" and not _interpreter_open_to(uid):
            raise VerifyError(f"isolation={tier}: the interpreter under {sys.base_prefix} is not readable by the sandbox "
                              "uid, and the candidate never runs as root; install bubblewrap: " + INSTALL_HINT)
        cgroup = _Cgroup(f"potstill-sbx-{uid if uid is not None else os.getpid()}-{random.randrange(1 << 30)}",
                         cfg.memory_mb * 1024 * 1024, cfg.max_processes + 4)
        fds: list[int] = []
        scratch: Path | None = None
        try:
            stdin_fd = os.memfd_create("potstill-payload", os.MFD_CLOEXEC)
            fds.append(stdin_fd)
            os.write(stdin_fd, payload)
            os.lseek(stdin_fd, 0, os.SEEK_SET)
            read_fd, write_fd = os.pipe()
            fds += [read_fd, write_fd]
            pass_fds = [write_fd]
            # -S: no site processing (half the interpreter's start-up); site-packages are added plainly instead
            python = [sys.executable, "-I", "-B", "-S", "-c", RUNNER.read_text(encoding="utf-8"), json.dumps(limits),
                      str(write_fd), json.dumps(_site_dirs())]
            seccomp = _seccomp_program() if tier == "bwrap" else None
            if tier == "bwrap":
                seccomp_fd = None
                if seccomp is not None:
                    seccomp_fd = os.memfd_create("potstill-seccomp", os.MFD_CLOEXEC)
                    fds.append(seccomp_fd)
                    os.write(seccomp_fd, seccomp)
                    os.lseek(seccomp_fd, 0, os.SEEK_SET)
                    pass_fds.append(seccomp_fd)
                cmd = [*_bwrap_args(cfg.scratch_mb, seccomp_fd), *_drop(uid), *python]
                cwd, env = "/", _clean_env(SCRATCH)
            else:
                scratch = _scratch_dir(uid)
                ns = ["unshare", "--net", "--pid", "--fork", "--kill-child", "--mount-proc"] if tier == "unshare" else []
                cmd = [*ns, *_drop(uid), *python]
                cwd, env = str(scratch), _clean_env(str(scratch))
            if cgroup.procs_files:
                attach = 'for f; do [ "$f" = -- ] && break; echo $$ > "$f" || exit 125; shift; done; shift; exec "$@"'
                cmd = ["/bin/sh", "-c", attach, "sh", *cgroup.procs_files, "--", *cmd]
            started = time.monotonic()
            proc = subprocess.Popen(
                cmd, cwd=cwd, env=env, stdin=stdin_fd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                pass_fds=pass_fds, close_fds=True, start_new_session=True,
            )
            os.close(write_fd)
            fds.remove(write_fd)
            out, err, lines, timed_out, exceeded, peak = _collect(proc, read_fd, started + cfg.wall_s,
                                                                  cfg.output_limit_kb * 1024, cgroup)
            elapsed = time.monotonic() - started
        finally:
            cgroup.close()
            for fd in fds:
                os.close(fd)
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)
    results, flags = _parse_lines(lines, len(plan.steps))
    return {
        "results": results, "ready": flags["ready"], "loaded": flags["loaded"], "load_error": flags["load_error"],
        "finished": flags["done"] and len(results) == len(plan.steps),
        "exit_code": proc.returncode if not timed_out else None, "timed_out": timed_out, "output_exceeded": exceeded,
        "stdout": out.decode("utf-8", "replace"), "stderr": err.decode("utf-8", "replace"),
        "protections": _protections(tier, uid, cgroup, seccomp is not None), "tier": tier, "elapsed_s": elapsed,
        "peak_memory_bytes": peak,
    }


def _parse_lines(lines: list[str], n_steps: int) -> tuple[dict[int, tuple], dict]:
    """The runner's JSON lines, decoded; malformed lines and repeated steps are ignored (first one wins)."""
    results: dict[int, tuple] = {}
    flags: dict = {"ready": False, "loaded": False, "load_error": None, "done": False}
    for line in lines:
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if not isinstance(record, dict):
            continue
        if "i" in record:
            k = record["i"]
            if type(k) is not int or not 0 <= k < n_steps or k in results:
                continue
            try:
                if "v" in record:
                    results[k] = ("v", decode(record["v"]))
                elif "ok" in record:
                    results[k] = ("ok",)
                else:
                    results[k] = ("e", str(record.get("e"))[:80])
            except (ValueError, TypeError, IndexError, OverflowError, RecursionError):
                results[k] = ("e", "UndecodableValue")
        elif record.get("ready") == 1:
            flags["ready"] = True
        elif record.get("loaded") == 1:
            flags["loaded"] = True
        elif "load_error" in record:
            flags["load_error"] = str(record["load_error"])[:80]
        elif record.get("done") == 1:
            flags["done"] = True
    return results, flags


def _collect(proc: subprocess.Popen, result_fd: int, deadline: float, cap: int, cgroup: _Cgroup):
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
            if proc.poll() is not None:
                # the sandbox ended; a straggler holding a pipe open must not stretch the run
                _drain(sel, buffers, cap)
                break
            for key, _ in sel.select(timeout=min(remaining, 0.25)):
                fd = key.fileobj if isinstance(key.fileobj, int) else key.fileobj.fileno()
                chunk = os.read(fd, 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                if key.data == "res":
                    if len(buffers["res"]) + len(chunk) > RESULT_CAP:
                        exceeded = True
                    buffers["res"] += chunk[: RESULT_CAP - len(buffers["res"])]
                    continue
                total_output += len(chunk)
                room = cap - len(buffers["out"]) - len(buffers["err"])
                buffers[key.data] += chunk[: max(0, room)]
                if total_output > cap:
                    exceeded = True
            if exceeded:
                _drain(sel, buffers, cap)
                break
    finally:
        sel.close()
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        peak = cgroup.peak_memory()
        cgroup.kill()
        proc.wait()
        cgroup.close()
    # only complete lines count: a line cut by the cap or by a kill is dropped
    lines = buffers["res"].decode("utf-8", "replace").split("\n")[:-1]
    return bytes(buffers["out"]), bytes(buffers["err"]), lines, timed_out, exceeded, peak


def _drain(sel: selectors.BaseSelector, buffers: dict[str, bytearray], cap: int) -> None:
    for _ in range(64):
        ready = sel.select(timeout=0)
        if not ready:
            return
        for key, _ in ready:
            fd = key.fileobj if isinstance(key.fileobj, int) else key.fileobj.fileno()
            chunk = os.read(fd, 65536)
            if not chunk:
                sel.unregister(key.fileobj)
                continue
            if key.data == "res":
                buffers["res"] += chunk[: max(0, RESULT_CAP - len(buffers["res"]))]
            else:
                room = cap - len(buffers["out"]) - len(buffers["err"])
                buffers[key.data] += chunk[: max(0, room)]
