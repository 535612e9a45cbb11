"""Runs inside the sandbox: set rlimits, fork, run the candidate and its tests, report on a private fd.

Invoked as `python -I sandbox_runner.py LIMITS_JSON RESULT_FD` with cwd = the scratch directory
holding `candidate.py` and `tests.json`. Stdlib only (it runs under the sandbox's interpreter).
Protocol on RESULT_FD, one line each: `ready`, `loaded` | `load_error <Type>`, `test <i> <0|1> <Type>`, `done`.
The candidate runs in a forked child, so `os.kill(os.getppid(), ...)` hits this runner, never the host.
"""

import json
import os
import random
import resource
import sys
import traceback

LIMITS = {
    "cpu_s": resource.RLIMIT_CPU,
    "memory_bytes": resource.RLIMIT_AS,
    "max_processes": resource.RLIMIT_NPROC,
    "max_file_bytes": resource.RLIMIT_FSIZE,
    "max_open_files": resource.RLIMIT_NOFILE,
}


def _set_limits(limits):
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    for name, which in LIMITS.items():
        value = int(limits[name])
        # CPU: the soft limit sends SIGXCPU (read as a timeout); the hard one, a second later, kills
        hard = value + 1 if which == resource.RLIMIT_CPU else value
        resource.setrlimit(which, (value, hard))


def _run_candidate(result_fd, max_open_files):
    # Move the result pipe to an unpredictable descriptor so casual fd scribbling misses it.
    private_fd = os.dup2(result_fd, random.randint(10, max(10, max_open_files - 1)))
    if private_fd != result_fd:
        os.close(result_fd)

    def emit(line):
        os.write(private_fd, (line + "\n").encode())

    with open("tests.json", encoding="utf-8") as f:
        tests = json.load(f)
    with open("candidate.py", encoding="utf-8") as f:
        source = f.read()
    namespace = {"__name__": "candidate", "__builtins__": __builtins__}
    try:
        exec(compile(source, "candidate.py", "exec"), namespace)  # noqa: S102 - running it is the point (sandboxed)
    except BaseException as exc:  # noqa: BLE001 - any failure of the candidate is reported, not raised
        traceback.print_exc()
        emit(f"load_error {type(exc).__name__}")
        return 1
    emit("loaded")
    for i, test in enumerate(tests):
        try:
            exec(compile(test, f"<test {i}>", "exec"), namespace)  # noqa: S102 - sandboxed
            emit(f"test {i} 1 -")
        except BaseException as exc:  # noqa: BLE001 - SystemExit/KeyboardInterrupt from the candidate fail the test
            print(f"test {i} failed: {test[:200]}", file=sys.stderr)
            traceback.print_exc(limit=3)
            emit(f"test {i} 0 {type(exc).__name__}")
    emit("done")
    return 0


def main():
    limits = json.loads(sys.argv[1])
    result_fd = int(sys.argv[2])
    _set_limits(limits)
    os.write(result_fd, b"ready\n")
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = _run_candidate(result_fd, int(limits["max_open_files"]))
        except BaseException:  # noqa: BLE001 - the runner's own failure: report it on stderr
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    os.close(result_fd)
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except ChildProcessError:
            status = 0
            break
        except InterruptedError:
            continue
    if os.WIFSIGNALED(status):
        sys.exit(128 + os.WTERMSIG(status))
    sys.exit(os.WEXITSTATUS(status))


if __name__ == "__main__":
    main()
