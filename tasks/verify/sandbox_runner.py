"""Runs inside the sandbox, in the candidate's process: load the candidate, do the judge's steps, send values.

Invoked as `python -I -B -S -c <this file's source> LIMITS_JSON RESULT_FD SITE_DIRS_JSON` with stdin = a JSON payload
`{"program": ..., "steps": [[kind, src], ...]}`. It never sees a test or an expected value: each
step is a sub-expression of a test that needs the candidate's code (`f(3)`), and its value goes back
to the judge (the host) serialised by `encode`, one JSON line per step on RESULT_FD, a pipe only the
judge reads. Lines: `{"ready": 1}`, `{"loaded": 1}` | `{"load_error": TYPE}`, `{"i": K, "v": VALUE}` |
`{"i": K, "ok": 1}` | `{"i": K, "e": TYPE}`, `{"done": 1}`.

Everything here runs with the candidate in one process, so the candidate can rewrite any of it; that
is fine: all it can forge is the values of its own calls, and it never learns what they should be.
Stdlib only (it runs under the sandbox's interpreter, with nothing of the repository in view).
"""

import json
import os
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
MAX_DEPTH = 60
MAX_ITEMS = 1_000_000


def _set_limits(limits):
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    for name, which in LIMITS.items():
        value = int(limits[name])
        # CPU: the soft limit sends SIGXCPU (read as a timeout); the hard one, a second later, kills
        hard = value + 1 if which == resource.RLIMIT_CPU else value
        resource.setrlimit(which, (value, hard))


def encode(value, depth=0, budget=None):
    """A tagged JSON tree of a plain value; subclasses become their base type; anything else is opaque."""
    budget = budget if budget is not None else [MAX_ITEMS]
    budget[0] -= 1
    if depth > MAX_DEPTH or budget[0] < 0:
        raise ValueError("value too deep or too large to send to the judge")
    if value is None:
        return ["n"]
    if value is True or value is False:
        return ["b", value is True]
    if isinstance(value, int):
        return ["i", int.__index__(value).__format__("x") if value >= 0 else "-" + (-int.__index__(value)).__format__("x")]
    if isinstance(value, float):
        return ["f", float.hex(float(value))]
    if isinstance(value, complex):
        c = complex(value)
        return ["c", float.hex(c.real), float.hex(c.imag)]
    if isinstance(value, str):
        return ["s", str.__str__(value)]
    if isinstance(value, (bytes, bytearray)):
        return ["y", bytes(value).hex()]
    if isinstance(value, dict):
        return ["d", [[encode(k, depth + 1, budget), encode(v, depth + 1, budget)] for k, v in dict.items(value)]]
    for kind, tag in ((list, "l"), (tuple, "t"), (set, "S"), (frozenset, "F")):
        if isinstance(value, kind):
            return [tag, [encode(v, depth + 1, budget) for v in kind.__iter__(value)]]
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        return encode(value.tolist(), depth + 1, budget)  # numpy scalars and arrays as plain values
    return ["o", type(value).__qualname__[:100]]


def main():
    limits = json.loads(sys.argv[1])
    result_fd = int(sys.argv[2])
    sys.path.extend(json.loads(sys.argv[3]) if len(sys.argv) > 3 else [])  # started with -S: no site processing
    _set_limits(limits)

    def emit(record):
        os.write(result_fd, (json.dumps(record) + "\n").encode())

    emit({"ready": 1})
    payload = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    sys.stdin.close()
    namespace = {"__name__": "__main__", "__builtins__": __builtins__}
    try:
        exec(compile(payload["program"], "candidate.py", "exec"), namespace)  # noqa: S102 - sandboxed candidate
    except BaseException as exc:  # noqa: BLE001 - any failure of the candidate is reported, not raised
        traceback.print_exc()
        emit({"load_error": type(exc).__name__})
        return 1
    emit({"loaded": 1})
    for k, (kind, src) in enumerate(payload["steps"]):
        try:
            if kind == "exec":
                exec(compile(src, f"<step {k}>", "exec"), namespace)  # noqa: S102 - sandboxed
                emit({"i": k, "ok": 1})
            else:
                emit({"i": k, "v": encode(eval(compile(src, f"<step {k}>", "eval"), namespace))})
        except BaseException as exc:  # noqa: BLE001 - SystemExit/KeyboardInterrupt from the candidate fail the step
            print(f"step {k} raised: {src[:200]}", file=sys.stderr)
            traceback.print_exc(limit=3)
            emit({"i": k, "e": type(exc).__name__})
    emit({"done": 1})
    return 0


if __name__ == "__main__":
    code = 1
    try:
        code = main()
    except BaseException:  # noqa: BLE001 - the runner's own failure: shown on stderr, the judge sees no values
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
