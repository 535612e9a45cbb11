"""The judge side of code verification: tests are split so the candidate never sees an expected value.

Each assert-test is parsed (AST). Sub-expressions that need the candidate's code (a call of a name
the candidate defines, an attribute or item of one) are sent to the sandbox as *steps*; the
candidate's process evaluates them and sends back each value serialised (a tagged JSON tree, see
`sandbox_runner.encode`). Everything else — the expected value, the comparison, `abs(...) < 1e-6`,
`sorted(...)`, `math.isclose(...)` — stays here and is evaluated by `safe_eval`, a small AST
interpreter over plain values (no `exec`, no attribute access beyond a whitelist of methods of
builtin types, bounded arithmetic). The judge never calls `==` on an object the candidate built:
values are rebuilt from JSON as fresh `int`/`str`/`list`/... objects, and a value that is none of
those becomes an `Opaque` that refuses every comparison (the test fails).

>>> plan = plan_tests(["assert f(2) == 5", "assert abs(g(1.0) - 0.5) < 1e-9"])
>>> [s.src for s in plan.steps]
['f(2)', 'g(1.0)']
>>> judge_results(plan, {0: ("v", 5), 1: ("v", 0.5)})
(True, True)

A test form the judge cannot split without handing the candidate an expected value (a loop or a
comprehension over candidate calls, a `def` in a test) is *unsupported*: it is never run in the
candidate's process and never counts as passed (the code verifier says `tests_unsupported`).
"""

from __future__ import annotations

import ast
import builtins
import itertools
import math
import operator
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tasks.common import pyast

MAX_DEPTH = 64  # nesting of decoded values and of evaluated expressions
MAX_SEQ = 10_000_000  # largest sequence the judge builds (repeat, range)
MAX_INT_BITS = 100_000  # operands of ** and << beyond this are refused
MAX_LOOP = 500_000  # comprehension iterations in one judge expression (about a second of judge time)

# Builtins the judge evaluates itself; a test's call of any other name goes to the candidate.
SAFE_BUILTINS: dict[str, Any] = {
    name: getattr(builtins, name)
    for name in [
        "abs", "all", "any", "bin", "bool", "chr", "complex", "dict", "divmod", "enumerate", "float", "frozenset",
        "hex", "int", "isinstance", "len", "list", "max", "min", "oct", "ord", "repr", "reversed", "round", "set",
        "sorted", "str", "sum", "tuple", "type", "zip", "bytes", "map", "filter",
    ]
}
SAFE_BUILTINS.update({"True": True, "False": False, "None": None})
BUILTIN_NAMES = frozenset(dir(builtins))
MATH_NAMES = {
    "isclose", "sqrt", "floor", "ceil", "fabs", "isnan", "isinf", "isfinite", "inf", "nan", "pi", "e", "tau",
    "log", "log2", "log10", "exp", "gcd", "lcm", "comb", "perm", "prod", "fsum", "trunc", "hypot", "sin", "cos",
    "tan", "atan", "atan2", "asin", "acos", "degrees", "radians", "copysign",
}
PLAIN_TYPES = (int, float, complex, str, bytes, bool, list, tuple, dict, set, frozenset, type(None))
SAFE_METHODS = {
    str: {"lower", "upper", "strip", "lstrip", "rstrip", "split", "rsplit", "splitlines", "startswith", "endswith",
          "isdigit", "isalpha", "isalnum", "isspace", "islower", "isupper", "count", "find", "rfind", "index",
          "replace", "join", "title", "capitalize", "casefold", "swapcase", "zfill", "center", "ljust", "rjust",
          "partition", "rpartition", "encode"},
    bytes: {"decode", "hex", "count", "startswith", "endswith", "find"},
    list: {"count", "index", "copy"},
    tuple: {"count", "index"},
    dict: {"keys", "values", "items", "get", "copy"},
    set: {"issubset", "issuperset", "union", "intersection", "difference", "symmetric_difference", "isdisjoint", "copy"},
    frozenset: {"issubset", "issuperset", "union", "intersection", "difference", "symmetric_difference", "isdisjoint"},
    int: {"bit_length", "real", "imag"},
    float: {"is_integer", "real", "imag", "hex"},
    complex: {"real", "imag", "conjugate"},
}
SAFE_MODULES = {"math": math}


class Unsupported(ValueError):
    """A test the judge cannot split without giving the candidate its expected values."""


class JudgeError(ValueError):
    """A test's judge-side expression did something the judge does not evaluate."""


class Opaque:
    """A candidate value of a type the judge does not rebuild: every comparison or use raises."""

    __slots__ = ("type_name",)

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name

    def __repr__(self) -> str:
        return f"<opaque {self.type_name}>"

    def _refuse(self, *args: object) -> Any:
        raise JudgeError(f"a {self.type_name} object from the candidate cannot be compared by the judge")

    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __bool__ = __len__ = __iter__ = __hash__ = _refuse
    __add__ = __sub__ = __mul__ = __truediv__ = __contains__ = __getitem__ = _refuse


# --- plans ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One thing the candidate's process does: `eval` an expression (value sent back) or `exec` a statement."""

    kind: str
    src: str


@dataclass(frozen=True)
class Action:
    """One judge-side action of a test: `check` a residual, `bind` names to a residual, `ran` a step."""

    kind: str
    node: ast.expr | None = None
    holes: Mapping[str, int] = field(default_factory=dict)  # placeholder name -> step index
    targets: ast.expr | None = None
    step: int | None = None


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...]
    tests: tuple[tuple[Action, ...] | None, ...]  # None: unsupported (or does not parse)
    problems: tuple[str | None, ...]  # why a test is None

    @property
    def unsupported(self) -> tuple[int, ...]:
        return tuple(i for i, t in enumerate(self.tests) if t is None)


def _local_names(node: ast.AST) -> set[str]:
    """Names bound inside an expression (comprehension targets, lambda args, walrus)."""
    bound: set[str] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
            bound.add(sub.id)
        elif isinstance(sub, ast.arg):
            bound.add(sub.arg)
    return bound


def _free_names(node: ast.AST) -> set[str]:
    loads = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return loads - _local_names(node)


class _Planner:
    def __init__(self, defined: set[str] | None = None) -> None:
        self.defined = defined  # names the candidate's program binds (None: unknown, no check)
        self.derived: set[str] = set()  # names the test binds in the candidate from candidate values
        self.imported: set[str] = set()  # names the test's own imports bind (the test's, not the candidate's)
        self.passed_mutable: set[str] = set()  # judge lists/dicts/sets copied into a candidate call
        self.steps: list[Step] = []
        self.judge_pure: dict[str, Any] = {}  # judge names known before the candidate runs
        self.judge_mixed: set[str] = set()  # judge names that depend on candidate values
        self.candidate: set[str] = set()  # names the candidate's namespace binds via test statements

    def candidates(self, name: str) -> bool:
        """The name is the candidate's own (not a builtin it did not define, not one the test imported)."""
        if name in self.derived:
            return True
        if name in self.imported:
            return False
        return name not in BUILTIN_NAMES or (self.defined is not None and name in self.defined)

    def is_candidate_name(self, name: str) -> bool:
        if name in self.candidate:
            return True
        if name in self.judge_pure or name in self.judge_mixed:
            return False
        return name not in SAFE_BUILTINS and name not in SAFE_CALLABLES and name not in SAFE_MODULES

    def owned(self, node: ast.AST) -> bool:
        """The node's value comes from the candidate's code (a candidate name, or a call/attribute/item of one)."""
        if isinstance(node, ast.Name):
            return self.is_candidate_name(node.id)
        if isinstance(node, (ast.Attribute, ast.Subscript)):
            return self.owned(node.value)
        if isinstance(node, ast.Call):
            return self.owned(node.func)
        return False

    def tainted(self, node: ast.AST) -> bool:
        return any(self.is_candidate_name(n) for n in _free_names(node))

    def candidate_src(self, node: ast.expr) -> str:
        """Source of an owned expression, with the judge's pure names replaced by their literal values."""
        free = _free_names(node)
        if free & self.judge_mixed:
            raise Unsupported(f"{ast.unparse(node)[:80]} needs a value the judge computes from the candidate's results")
        if not any(self.candidates(n) for n in free):
            # e.g. the expected side `Fraction(5)` or `next(iter(...))`: the candidate would compute both sides
            raise Unsupported(f"{ast.unparse(node)[:80]} uses no name of the candidate's; the judge cannot evaluate it")

        class Inline(ast.NodeTransformer):
            def visit_Name(inner, name: ast.Name) -> ast.AST:
                if isinstance(name.ctx, ast.Load) and name.id in free and name.id in self.judge_pure:
                    value = self.judge_pure[name.id]
                    text = repr(value)
                    try:
                        if ast.literal_eval(text) != value or type(ast.literal_eval(text)) is not type(value):
                            raise ValueError
                    except (ValueError, SyntaxError) as exc:
                        raise Unsupported(f"{name.id} has no literal form to pass to the candidate") from exc
                    if isinstance(value, (list, dict, set, bytearray)):
                        self.passed_mutable.add(name.id)  # the candidate gets a copy: its in-place changes are not seen
                    return pyast.parse(text, mode="eval").body
                return name

        return ast.unparse(Inline().visit(_copy(node)))

    def split(self, node: ast.expr, holes: dict[str, int]) -> ast.expr:
        """The judge's residual of `node`: owned sub-expressions replaced by placeholders `_v<k>`."""
        if self.owned(node):
            self.steps.append(Step("eval", self.candidate_src(node)))
            index = len(self.steps) - 1
            name = f"_v{index}"
            holes[name] = index
            return ast.copy_location(ast.Name(id=name, ctx=ast.Load()), node)
        if isinstance(node, ast.Name) and node.id in self.passed_mutable:
            raise Unsupported(f"the test reads {node.id} after passing it to the candidate (in-place changes are not judged)")
        if isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.NamedExpr)):
            if self.passed_mutable & _free_names(node):
                raise Unsupported("the test reads a value after passing it to the candidate (in-place changes are not judged)")
            if self.tainted(node):
                raise Unsupported(f"{type(node).__name__.lower()} over the candidate's code: {ast.unparse(node)[:80]}")
            return node
        for name, value in ast.iter_fields(node):
            if isinstance(value, ast.expr):
                setattr(node, name, self.split(value, holes))
            elif isinstance(value, list):
                setattr(node, name, [self.split(v, holes) if isinstance(v, ast.expr) else v for v in value])
        if isinstance(node, ast.Call):
            for kw in node.keywords:
                kw.value = self.split(kw.value, holes)
        return node

    def statement(self, stmt: ast.stmt) -> list[Action]:
        if isinstance(stmt, ast.Assert):
            holes: dict[str, int] = {}
            residual = self.split(_copy(stmt.test), holes)
            return [Action("check", residual, holes)]
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            names = [(a.asname or a.name).split(".")[0] for a in stmt.names]
            self.candidate.update(n for n in names if n not in SAFE_MODULES)
            self.imported.update(names)
            self.steps.append(Step("exec", ast.unparse(stmt)))
            return [Action("ran", step=len(self.steps) - 1)]
        if isinstance(stmt, ast.Expr):
            if not self.owned(stmt.value):
                return [Action("check", ast.Constant(True), {})] if not self.tainted(stmt.value) else self._unsupported(stmt)
            self.steps.append(Step("exec", self.candidate_src(stmt.value)))
            return [Action("ran", step=len(self.steps) - 1)]
        if isinstance(stmt, ast.Assign) and all(_simple_target(t) for t in stmt.targets):
            targets = [n.id for t in stmt.targets for n in ast.walk(t) if isinstance(n, ast.Name)]
            if self.owned(stmt.value):  # `r = f(2)`: the candidate binds r in its own namespace
                src = " = ".join(ast.unparse(t) for t in stmt.targets) + " = " + self.candidate_src(stmt.value)
                self.steps.append(Step("exec", src))
                for name in targets:
                    self.candidate.add(name)
                    self.derived.add(name)
                    self.judge_pure.pop(name, None)
                    self.judge_mixed.discard(name)
                return [Action("ran", step=len(self.steps) - 1)]
            holes = {}
            residual = self.split(_copy(stmt.value), holes)
            target = stmt.targets[0] if len(stmt.targets) == 1 else None
            if target is None:
                return self._unsupported(stmt)
            for name in targets:
                self.candidate.discard(name)
                self.derived.discard(name)
            if not holes:
                value = safe_eval(residual, dict(self.judge_pure))
                _bind(target, value, self.judge_pure)
                return [Action("bind", residual, {}, targets=target)]
            self.judge_mixed.update(targets)
            return [Action("bind", residual, holes, targets=target)]
        if isinstance(stmt, ast.Pass):
            return []
        return self._unsupported(stmt)

    @staticmethod
    def _unsupported(stmt: ast.stmt) -> list[Action]:
        raise Unsupported(f"unsupported test statement: {ast.unparse(stmt)[:80]}")


def _copy(node: ast.expr) -> ast.expr:
    return pyast.parse(ast.unparse(node), mode="eval").body


def _simple_target(target: ast.expr) -> bool:
    if isinstance(target, ast.Name):
        return True
    return isinstance(target, (ast.Tuple, ast.List)) and all(isinstance(e, ast.Name) for e in target.elts)


def _bind(target: ast.expr, value: Any, env: dict[str, Any]) -> None:
    if isinstance(target, ast.Name):
        env[target.id] = value
        return
    items = list(value)
    if len(items) != len(target.elts):  # type: ignore[attr-defined]
        raise JudgeError(f"cannot unpack {len(items)} values into {len(target.elts)} names")  # type: ignore[attr-defined]
    for sub, item in zip(target.elts, items):  # type: ignore[attr-defined]
        _bind(sub, item, env)


def defined_names(program: str) -> set[str]:
    """Every name the program binds anywhere (defs, classes, imports, assignments); empty if it does not parse."""
    try:
        tree = pyast.parse(program)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            names.update(node.names)
    return names


def plan_tests(tests: list[str], program: str | None = None) -> Plan:
    """Split assert-tests into candidate steps and judge actions (see the module docstring).

    A step must use a name of the candidate's: not a builtin (unless `program` defines it), not a
    name the test imported itself. An expected value built only from names the judge does not
    evaluate (`Fraction(5)`, `next(iter(x))`) would otherwise be computed, and so chosen, by the
    candidate; such a test is unsupported.
    """
    planner = _Planner(defined_names(program) if program is not None else None)
    plans: list[tuple[Action, ...] | None] = []
    problems: list[str | None] = []
    for test in tests:
        before = (len(planner.steps), dict(planner.judge_pure), set(planner.judge_mixed), set(planner.candidate))
        derived_before, imported_before = set(planner.derived), set(planner.imported)
        passed_before = set(planner.passed_mutable)
        try:
            tree = pyast.parse(test, mode="exec")
            actions = [a for stmt in tree.body for a in planner.statement(stmt)]
            plans.append(tuple(actions))
            problems.append(None)
        except (Unsupported, JudgeError, SyntaxError, ValueError, TypeError, ArithmeticError, RecursionError) as exc:
            del planner.steps[before[0]:]
            planner.judge_pure, planner.judge_mixed, planner.candidate = before[1], before[2], before[3]
            planner.derived, planner.imported = derived_before, imported_before
            planner.passed_mutable = passed_before
            plans.append(None)
            problems.append(f"{type(exc).__name__}: {str(exc)[:120]}")
    return Plan(tuple(planner.steps), tuple(plans), tuple(problems))


def judge_results(plan: Plan, results: Mapping[int, tuple]) -> tuple[bool | None, ...]:
    """Per test: True (passed), False (failed, or a needed value never arrived), None (unsupported).

    `results[k]` is ("v", value) for an evaluated step, ("ok",) for an executed statement,
    ("e", exception type name) when the candidate raised; a missing k means the candidate never
    reported it (it exited, was killed, ran out of time): the test fails.
    """
    env: dict[str, Any] = {}
    out: list[bool | None] = []
    for actions in plan.tests:
        if actions is None:
            out.append(None)
            continue
        passed = True
        for action in actions:
            try:
                if action.kind == "ran":
                    passed = results.get(action.step, ("missing",))[0] == "ok"
                else:
                    local = dict(env)
                    for hole, step in action.holes.items():
                        got = results.get(step, ("missing",))
                        if got[0] != "v":
                            raise JudgeError(f"step {step}: {got[0]}")
                        local[hole] = got[1]
                    value = safe_eval(action.node, local)
                    if action.kind == "check":
                        passed = _truthy(value)
                    else:
                        _bind(action.targets, value, env)
            except (JudgeError, ValueError, TypeError, ArithmeticError, LookupError, RecursionError, AttributeError):
                passed = False
            if not passed:
                break
        out.append(passed)
    return tuple(out)


def _truthy(value: Any) -> bool:
    if isinstance(value, Opaque):
        raise JudgeError("an opaque candidate value has no truth value for the judge")
    return bool(value)


# --- the judge's evaluator ---------------------------------------------------------------------


def _guard_pow(a: Any, b: Any, mod: Any = None) -> Any:
    if isinstance(a, int) and isinstance(b, int) and b > 0 and abs(a) > 1 and a.bit_length() * b > MAX_INT_BITS:
        raise JudgeError("** result too large for the judge")
    return pow(a, b, mod) if mod is not None else a ** b


def _guard_lshift(a: Any, b: Any) -> Any:
    if isinstance(b, int) and b > MAX_INT_BITS:
        raise JudgeError("<< result too large for the judge")
    return a << b


def _guard_mul(a: Any, b: Any) -> Any:
    for seq, n in ((a, b), (b, a)):
        if isinstance(seq, (str, bytes, list, tuple)) and isinstance(n, int) and len(seq) * n > MAX_SEQ:
            raise JudgeError("sequence repeat too large for the judge")
    return a * b


BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: _guard_mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: _guard_pow, ast.LShift: _guard_lshift,
    ast.RShift: operator.rshift, ast.BitOr: operator.or_, ast.BitXor: operator.xor, ast.BitAnd: operator.and_,
}
UNARY: dict[type, Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg, ast.Not: operator.not_,
                                            ast.Invert: operator.invert}
COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt,
    ast.GtE: operator.ge, ast.Is: operator.is_, ast.IsNot: operator.is_not,
    ast.In: lambda a, b: operator.contains(b, a), ast.NotIn: lambda a, b: not operator.contains(b, a),
}


def _safe_range(*args: int) -> range:
    r = range(*args)
    if len(r) > MAX_SEQ:
        raise JudgeError("range too long for the judge")
    return r


def _safe_pow(a: Any, b: Any, mod: Any = None) -> Any:
    return _guard_pow(a, b, mod)


def _guarded_math(name: str) -> Any:
    fn = getattr(math, name)
    if name in ("comb", "perm", "factorial"):
        def bounded(*args: int) -> int:
            if any(isinstance(a, int) and a > 20_000 for a in args):
                raise JudgeError(f"math.{name} argument too large for the judge")
            return fn(*args)
        return bounded
    return fn


SAFE_CALLABLES = {**{k: v for k, v in SAFE_BUILTINS.items() if callable(v)}, "range": _safe_range, "pow": _safe_pow}
_SAFE_CALLABLE_IDS = {id(v) for v in SAFE_CALLABLES.values()}


class _MathModule:
    """What a test sees as `math`: the whitelisted functions and constants only."""

    def __init__(self) -> None:
        self.members = {name: _guarded_math(name) for name in MATH_NAMES if hasattr(math, name)}


_MATH = _MathModule()


_BUDGET = threading.local()


def _spend(n: int) -> None:
    _BUDGET.left = getattr(_BUDGET, "left", MAX_LOOP) - n
    if _BUDGET.left < 0:
        raise JudgeError(f"the judge stops after {MAX_LOOP} loop iterations in one expression")


def safe_eval(node: ast.expr, env: Mapping[str, Any], depth: int = 0) -> Any:
    """Evaluate a judge-side expression over plain values; anything outside the whitelist raises JudgeError."""
    if depth == 0:
        _BUDGET.left = MAX_LOOP
    if depth > MAX_DEPTH * 4:
        raise JudgeError("expression too deep")
    ev = lambda n, e=env: safe_eval(n, e, depth + 1)
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in env:
            return env[node.id]
        if node.id in SAFE_CALLABLES:
            return SAFE_CALLABLES[node.id]
        if node.id in SAFE_BUILTINS:
            return SAFE_BUILTINS[node.id]
        if node.id == "math":
            return _MATH
        raise JudgeError(f"name {node.id!r} is not available to the judge")
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        items: list[Any] = []
        for elt in node.elts:
            if isinstance(elt, ast.Starred):
                items.extend(ev(elt.value))
            else:
                items.append(ev(elt))
        return {ast.List: list, ast.Tuple: tuple, ast.Set: set}[type(node)](items)
    if isinstance(node, ast.Dict):
        out: dict[Any, Any] = {}
        for k, v in zip(node.keys, node.values):
            if k is None:
                out.update(ev(v))
            else:
                out[ev(k)] = ev(v)
        return out
    if isinstance(node, ast.BinOp):
        return BINOPS[type(node.op)](ev(node.left), ev(node.right))
    if isinstance(node, ast.UnaryOp):
        operand = ev(node.operand)
        return (not _truthy(operand)) if isinstance(node.op, ast.Not) else UNARY[type(node.op)](operand)
    if isinstance(node, ast.BoolOp):
        value: Any = None
        for sub in node.values:
            value = ev(sub)
            if isinstance(node.op, ast.And) and not _truthy(value):
                return value
            if isinstance(node.op, ast.Or) and _truthy(value):
                return value
        return value
    if isinstance(node, ast.Compare):
        left = ev(node.left)
        for op, comp in zip(node.ops, node.comparators):
            right = ev(comp)
            result = COMPARE[type(op)](left, right)
            if not _truthy(result):
                return False
            left = right
        return True
    if isinstance(node, ast.IfExp):
        return ev(node.body) if _truthy(ev(node.test)) else ev(node.orelse)
    if isinstance(node, ast.Subscript):
        return ev(node.value)[ev(node.slice)]
    if isinstance(node, ast.Slice):
        return slice(*(ev(p) if p is not None else None for p in (node.lower, node.upper, node.step)))
    if isinstance(node, ast.Attribute):
        return _attribute(ev(node.value), node.attr)
    if isinstance(node, ast.Call):
        fn = ev(node.func)
        args: list[Any] = []
        for a in node.args:
            if isinstance(a, ast.Starred):
                args.extend(ev(a.value))
            else:
                args.append(ev(a))
        kwargs = {kw.arg: ev(kw.value) for kw in node.keywords if kw.arg is not None}
        if not _callable_ok(fn):
            raise JudgeError(f"the judge does not call {fn!r}")
        if (fn is set or fn is frozenset) and args:
            args[0] = list(args[0])
            check_hashes(args[0])
        if fn is type and (len(args) != 1 or kwargs):
            raise JudgeError("the judge calls type() with one argument only (no new classes)")
        if any(type(a) is int and a > MAX_SEQ for a in [*args, *kwargs.values()]) and getattr(fn, "__self__", None) is not None:
            raise JudgeError("a width or count too large for the judge")  # "x".center(10**12), ...
        if fn is SAFE_BUILTINS["isinstance"] and not _types_ok(args[1] if len(args) > 1 else None):
            raise JudgeError("isinstance against a non-builtin type")
        return fn(*args, **kwargs)
    if isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
        return _comprehension(node, env, depth)
    if isinstance(node, ast.JoinedStr):
        return "".join(ev(v) if not isinstance(v, ast.FormattedValue) else _formatted(v, env, depth) for v in node.values)
    raise JudgeError(f"the judge does not evaluate {type(node).__name__}")


def _formatted(node: ast.FormattedValue, env: Mapping[str, Any], depth: int) -> str:
    value = safe_eval(node.value, env, depth + 1)
    if not isinstance(value, PLAIN_TYPES):
        raise JudgeError("f-string of a non-plain value")
    spec = safe_eval(node.format_spec, env, depth + 1) if node.format_spec else ""
    if any(len(digits) > 5 for digits in re.findall(r"\d+", str(spec))):
        raise JudgeError("format width or precision too large for the judge")
    if node.conversion == ord("r"):
        value = repr(value)
    elif node.conversion == ord("s"):
        value = str(value)
    return format(value, spec)


def _types_ok(types: Any) -> bool:
    if isinstance(types, tuple):
        return all(_types_ok(t) for t in types)
    return types in PLAIN_TYPES


def _callable_ok(fn: Any) -> bool:
    if id(fn) in _SAFE_CALLABLE_IDS or fn in PLAIN_TYPES:
        return True
    if any(fn is v for v in _MATH.members.values()):
        return True
    owner = getattr(fn, "__self__", None)
    return owner is not None and type(owner) in SAFE_METHODS and getattr(fn, "__name__", "") in SAFE_METHODS[type(owner)]


def _attribute(value: Any, attr: str) -> Any:
    if value is _MATH:
        if attr in _MATH.members:
            return _MATH.members[attr]
        raise JudgeError(f"math.{attr} is not available to the judge")
    if type(value) in SAFE_METHODS and attr in SAFE_METHODS[type(value)]:
        return getattr(value, attr)
    raise JudgeError(f"the judge does not read .{attr} of a {type(value).__name__}")


def _comprehension(node: ast.expr, env: Mapping[str, Any], depth: int) -> Any:
    results: list[Any] = []

    def loop(generators: list[ast.comprehension], scope: dict[str, Any]) -> None:
        if not generators:
            if isinstance(node, ast.DictComp):
                results.append((safe_eval(node.key, scope, depth + 1), safe_eval(node.value, scope, depth + 1)))
            else:
                results.append(safe_eval(node.elt, scope, depth + 1))  # type: ignore[attr-defined]
            if len(results) > MAX_SEQ:
                raise JudgeError("comprehension too long for the judge")
            return
        gen = generators[0]
        if gen.is_async or not _simple_target(gen.target):
            raise JudgeError("comprehension form not evaluated by the judge")
        for item in safe_eval(gen.iter, scope, depth + 1):
            _spend(1)
            inner = dict(scope)
            _bind(gen.target, item, inner)
            if all(_truthy(safe_eval(cond, inner, depth + 1)) for cond in gen.ifs):
                loop(generators[1:], inner)

    loop(node.generators, dict(env))  # type: ignore[attr-defined]
    if isinstance(node, ast.SetComp):
        return set(results)
    if isinstance(node, ast.DictComp):
        return dict(results)
    return results  # list comprehension, or a generator consumed eagerly (all/any/sum see the same items)


# --- values from the candidate -------------------------------------------------------------------


MAX_SAME_HASH = 256  # more equal hashes than this in one set/dict: crafted collisions (quadratic inserts)


def check_hashes(items: list[Any]) -> None:
    """Refuse a set/dict whose keys share a hash value many times (e.g. ints n*(2**61-1)): building it is quadratic."""
    if len(items) <= MAX_SAME_HASH:
        return
    try:
        hashes = sorted(hash(x) for x in items)
    except TypeError as exc:
        raise ValueError(f"unhashable value: {exc}") from exc
    run = 1
    for a, b in itertools.pairwise(hashes):
        run = run + 1 if a == b else 1
        if run > MAX_SAME_HASH:
            raise ValueError("too many keys with one hash value")


def decode(tree: Any, depth: int = 0) -> Any:
    """Rebuild a value from the runner's tagged JSON (`sandbox_runner.encode`); malformed input raises ValueError."""
    if depth > MAX_DEPTH or not isinstance(tree, list) or not tree or not isinstance(tree[0], str):
        raise ValueError("malformed value")
    tag, rest = tree[0], tree[1:]
    if tag == "n":
        return None
    if tag == "b":
        return rest[0] is True
    if tag == "i":
        text = rest[0]
        if not isinstance(text, str) or len(text) > 100_000:
            raise ValueError("malformed int")
        return int(text, 16)
    if tag == "f":
        return float.fromhex(rest[0])
    if tag == "c":
        return complex(float.fromhex(rest[0]), float.fromhex(rest[1]))
    if tag == "s":
        if not isinstance(rest[0], str):
            raise ValueError("malformed str")
        return str(rest[0])
    if tag == "y":
        return bytes.fromhex(rest[0])
    if tag in ("l", "t", "S", "F"):
        if not isinstance(rest[0], list):
            raise ValueError("malformed sequence")
        items = [decode(x, depth + 1) for x in rest[0]]
        if tag in ("S", "F"):
            check_hashes(items)
        return {"l": list, "t": tuple, "S": set, "F": frozenset}[tag](items)
    if tag == "d":
        if not isinstance(rest[0], list):
            raise ValueError("malformed dict")
        pairs = [(decode(k, depth + 1), decode(v, depth + 1)) for k, v in rest[0]]
        check_hashes([k for k, _ in pairs])
        return dict(pairs)
    if tag == "o":
        return Opaque(str(rest[0])[:100])
    raise ValueError(f"unknown value tag {tag!r}")
