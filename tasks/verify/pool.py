"""A process pool with a hard per-item deadline: a hung item's worker is SIGKILLed and replaced.

`concurrent.futures` and `multiprocessing.Pool` cannot cancel a running item, and math-verify's
own timeout uses `signal.alarm`, which fails outside the main thread. Here each worker owns one
pipe; the parent waits on all busy pipes with a timeout equal to the nearest deadline, kills the
worker whose item overran, records a `timeout` outcome and starts a fresh worker. The batch goes on.

>>> with DeadlinePool(2, deadline_s=1.0) as pool:          # doctest: +SKIP
...     pool.map(pow, [(2, 3), (9, 9**99)])                 # second item never finishes
[Outcome(kind='ok', value=8, ...), Outcome(kind='timeout', ...)]
"""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Self

REPO_ROOT = Path(__file__).resolve().parents[2]

OK, RAISED, TIMEOUT, CRASHED = "ok", "raised", "timeout", "crashed"


class PoolError(RuntimeError):
    """The pool itself failed (a worker could not start); the message says which and why."""


@dataclass(frozen=True)
class Outcome:
    """What happened to one item: `ok` (value), `raised` (detail), `timeout` or `crashed`."""

    kind: str
    value: Any = None
    detail: str = ""
    elapsed_s: float = 0.0


def _worker_main(conn: Connection, memory_limit_mb: int | None) -> None:
    if memory_limit_mb:
        limit = memory_limit_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    conn.send(("ready", os.getpid()))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        index, fn, args = message
        try:
            result = (OK, fn(*args), "")
        except MemoryError:
            result = (RAISED, None, "MemoryError: over the worker's address-space limit")
        except Exception as exc:  # noqa: BLE001 - reported per item as `raised`, the batch goes on
            result = (RAISED, None, f"{type(exc).__name__}: {str(exc)[:300]}")
        conn.send((index, result))


def _zygote_main(control_fd: int, memory_limit_mb: int | None, preload: Sequence[str]) -> None:
    """A single-threaded process that imports `preload` once and forks a worker per request.

    It plays the role of multiprocessing's forkserver without re-importing the caller's
    `__main__` (scripts without an `if __name__ == "__main__"` guard still work).
    """
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # workers are reaped by the kernel
    for name in preload:
        __import__(name)
        warm_up = getattr(sys.modules[name], "warm_up", None)
        if callable(warm_up):
            warm_up()  # first-use costs (parser tables, caches) are paid once, before any deadline
    control = socket.socket(fileno=control_fd)
    control.sendall(b"R")
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, 16, 1)
        except OSError:
            return
        if not message or not fds:
            return
        pid = os.fork()
        if pid == 0:
            control.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            code = 0
            try:
                _worker_main(Connection(fds[0]), memory_limit_mb)
            except BaseException:  # noqa: BLE001 - a worker never returns into the zygote loop
                code = 1
            os._exit(code)
        os.close(fds[0])


class _Zygote:
    def __init__(self, memory_limit_mb: int | None, preload: Sequence[str], start_timeout_s: float) -> None:
        ours, theirs = socket.socketpair()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])])
        code = f"from tasks.verify.pool import _zygote_main; _zygote_main({theirs.fileno()}, {memory_limit_mb!r}, {tuple(preload)!r})"
        self.process = subprocess.Popen(
            [sys.executable, "-c", code], pass_fds=[theirs.fileno()], env=env, stdin=subprocess.DEVNULL
        )
        theirs.close()
        self.control = ours
        self.control.settimeout(start_timeout_s)
        try:
            ready = self.control.recv(1)
        except TimeoutError:
            ready = b""
        if ready != b"R":
            self.close()
            raise PoolError(
                f"worker zygote did not start within {start_timeout_s:.0f} s (exit code {self.process.poll()}); "
                f"check that {list(preload)} import: {sys.executable} -c 'import {','.join(preload) or 'sys'}'"
            )
        self.control.settimeout(None)

    def fork(self) -> Connection:
        ours, theirs = socket.socketpair()
        try:
            socket.send_fds(self.control, [b"F"], [theirs.fileno()])
        except OSError as exc:
            raise PoolError(f"worker zygote {self.process.pid} is gone (exit code {self.process.poll()})") from exc
        finally:
            theirs.close()
        return Connection(ours.detach())

    def close(self) -> None:
        self.control.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class _Worker:
    def __init__(self, zygote: _Zygote, start_timeout_s: float) -> None:
        self.conn = zygote.fork()
        self.pid: int | None = None
        if not self.conn.poll(start_timeout_s):
            self.conn.close()
            raise PoolError(f"worker process did not start within {start_timeout_s:.0f} s")
        try:
            _, self.pid = self.conn.recv()
        except (EOFError, OSError) as exc:
            self.conn.close()
            raise PoolError("worker process died while starting") from exc

    def kill(self) -> None:
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.conn.close()

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except (OSError, ValueError):
            pass
        self.conn.close()


class DeadlinePool:
    """`n_workers` processes; `map(fn, args_list)` returns one `Outcome` per item, in order.

    Args:
        n_workers: worker processes (default: CPU count).
        deadline_s: wall-clock limit per item, measured from dispatch; overrun → worker killed.
        memory_limit_mb: RLIMIT_AS per worker (an allocation bomb becomes `raised: MemoryError`).
        preload: modules imported once by the zygote that forks the workers (replacements are cheap);
            a module's `warm_up()` function, if any, runs there too.
    """

    def __init__(
        self,
        n_workers: int | None = None,
        *,
        deadline_s: float = 5.0,
        memory_limit_mb: int | None = 2048,
        preload: Sequence[str] = (),
        start_timeout_s: float = 60.0,
    ) -> None:
        if deadline_s <= 0:
            raise ValueError(f"deadline_s must be > 0, not {deadline_s}")
        self.n_workers = max(1, n_workers or os.cpu_count() or 1)
        self.deadline_s = deadline_s
        self.memory_limit_mb = memory_limit_mb
        self.preload = tuple(preload)
        self.start_timeout_s = start_timeout_s
        self._zygote: _Zygote | None = None
        self._workers: list[_Worker] = []
        self.n_killed = 0
        self.n_crashed = 0

    def _new_worker(self) -> _Worker:
        if self._zygote is None:
            self._zygote = _Zygote(self.memory_limit_mb, self.preload, self.start_timeout_s)
        return _Worker(self._zygote, self.start_timeout_s)

    def start(self) -> DeadlinePool:
        while len(self._workers) < self.n_workers:
            self._workers.append(self._new_worker())
        return self

    def close(self) -> None:
        for worker in self._workers:
            worker.stop()
        self._workers = []
        if self._zygote is not None:
            self._zygote.close()
            self._zygote = None

    def __enter__(self) -> Self:
        return self  # workers start on the first map(): a run with no math work never pays for them

    def __exit__(self, *exc: object) -> None:
        self.close()

    def map(self, fn: Callable[..., Any], args_list: Iterable[tuple], *, deadline_s: float | None = None) -> list[Outcome]:
        """Run `fn(*args)` for each args tuple; `fn` must be importable (a module-level function)."""
        self.start()
        deadline = deadline_s or self.deadline_s
        pending = deque(enumerate(args_list))
        results: list[Outcome | None] = [None] * len(pending)
        idle = list(self._workers)
        busy: dict[int, tuple[_Worker, int, float]] = {}  # fileno -> (worker, index, started)
        while pending or busy:
            while idle and pending:
                worker = idle.pop()
                index, args = pending.popleft()
                worker.conn.send((index, fn, args))
                busy[worker.conn.fileno()] = (worker, index, time.monotonic())
            nearest = min(started for _, _, started in busy.values()) + deadline
            ready = wait([w.conn for w, _, _ in busy.values()], timeout=max(0.0, nearest - time.monotonic()))
            now = time.monotonic()
            for conn in ready:
                worker, index, started = busy.pop(conn.fileno())
                try:
                    got_index, (kind, value, detail) = conn.recv()
                    if got_index != index:
                        raise PoolError(f"worker {worker.pid} answered item {got_index}, expected {index}")
                    results[index] = Outcome(kind, value, detail, now - started)
                    idle.append(worker)
                except (EOFError, OSError):
                    worker.kill()
                    self.n_crashed += 1
                    results[index] = Outcome(CRASHED, None, f"worker {worker.pid} died mid-item", now - started)
                    idle.append(self._replace(worker))
            for fileno, (worker, index, started) in list(busy.items()):
                if now - started >= deadline:
                    del busy[fileno]
                    worker.kill()
                    self.n_killed += 1
                    results[index] = Outcome(TIMEOUT, None, f"no result within {deadline:g} s; worker killed", now - started)
                    idle.append(self._replace(worker))
        return [r for r in results if r is not None]

    def _replace(self, dead: _Worker) -> _Worker:
        fresh = self._new_worker()
        self._workers = [fresh if w is dead else w for w in self._workers]
        return fresh
