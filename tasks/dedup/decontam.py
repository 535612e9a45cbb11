"""Benchmark decontamination by word n-gram overlap (docs/methods.md#deduplication-and-decontamination; Open-R1 uses 8-grams).

A prompt is contaminated by a benchmark when it shares at least `min_matches` n-grams with one
of the benchmark's items. Tokens are the casefolded NFKC words and symbols of `minhash.tokens`,
so `7+5*3` and `7 + 5 * 3` match. A benchmark item shorter than n tokens contributes its whole
token sequence as one (shorter) n-gram, so short benchmark questions can still be caught.

>>> bench = Benchmark.from_items("toybench", [("b1", "Compute 7 + 5 * 3 - 4 and then add two to it.")])
>>> prompts = pl.DataFrame({"prompt_id": ["p1", "p2"], "text": ["compute 7+5*3-4 and then add two to it.", "What is 2+2?"]})
>>> find_contamination(prompts, [bench])["prompt_id"].to_list()
['p1']
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from tasks.common.ids import config_fingerprint
from tasks.dedup.formula import formula_content, formula_key, numbers
from tasks.dedup.minhash import DedupError, tokens

TEXT_FIELDS = ("problem", "question", "prompt", "text", "input")
ID_FIELDS = ("id", "item_id", "problem_id", "question_id", "uid")

CONTAMINATION_SCHEMA = {
    "prompt_id": pl.String,
    "benchmark_name": pl.String,
    "benchmark_item_id": pl.String,
    "n_matched_ngrams": pl.Int64,
    "overlap_ratio": pl.Float64,
    "matched_ngram": pl.String,
    "ngram_size": pl.Int64,
    "match_kind": pl.String,
}


class DecontamError(DedupError):
    """A benchmark file or spec is unusable; the message names the file, line and field."""


@dataclass(frozen=True)
class DecontamConfig:
    """n-gram overlap decontamination knobs."""

    ngram_size: int = field(default=8, metadata={"help": "word n-gram size (Open-R1 8, datatrove 12, NeMo Curator 13)"})
    min_matches: int = field(default=1, metadata={"help": "shared n-grams with one benchmark item needed to flag a prompt"})
    short_items: bool = field(
        default=True,
        metadata={"help": "benchmark items shorter than ngram_size match as one whole-item n-gram (else they are ignored)"},
    )
    max_items_per_ngram: int = field(
        default=5,
        metadata={"help": "n-grams shared by more benchmark items than this are template text and never match"},
    )
    require_numbers: bool = field(
        default=True,
        metadata={"help": "a match needs every number of the benchmark item in the prompt (same text, new numbers = new problem)"},
    )
    formula_match: bool = field(
        default=True,
        metadata={"help": "also flag a short formula prompt whose formula equals a benchmark item's (tasks/dedup/formula.py)"},
    )
    formula_max_prose_words: int = field(
        default=12, metadata={"help": "a formula prompt has at most this many words around its formula"}
    )

    def __post_init__(self) -> None:
        if self.ngram_size < 1:
            raise DecontamError(f"DecontamConfig.ngram_size must be >= 1, got {self.ngram_size}")
        if self.min_matches < 1:
            raise DecontamError(f"DecontamConfig.min_matches must be >= 1, got {self.min_matches}")

    def __str__(self) -> str:
        return f"decontam-{config_fingerprint(self)}"


@dataclass(frozen=True)
class Benchmark:
    """A named benchmark: (item_id, text) pairs and a content hash (changes when the file changes)."""

    name: str
    items: tuple[tuple[str, str], ...]
    content_hash: str

    @classmethod
    def from_items(cls, name: str, items: Iterable[tuple[str, str]]) -> Benchmark:
        items = tuple((str(i), str(t)) for i, t in items)
        digest = hashlib.sha256(json.dumps([name, items], ensure_ascii=False).encode()).hexdigest()[:16]
        return cls(name, items, digest)


def parse_benchmark_spec(spec: str) -> tuple[str, Path, str | None]:
    """`[NAME=]PATH[#FIELD]` -> (name, path, field). Name defaults to the file stem.

    >>> parse_benchmark_spec("aime=data/aime.jsonl#question")
    ('aime', PosixPath('data/aime.jsonl'), 'question')
    >>> parse_benchmark_spec("bench.parquet")
    ('bench', PosixPath('bench.parquet'), None)
    """
    name = None
    rest = spec
    if "=" in rest and not Path(rest).exists():
        name, rest = rest.split("=", 1)
    field_name = None
    if "#" in rest:
        rest, field_name = rest.rsplit("#", 1)
    path = Path(rest)
    if not name:
        name = path.name.split(".")[0]
    return name, path, field_name or None


def _pick(columns: Sequence[str], wanted: str | None, candidates: Sequence[str], path: Path, what: str) -> str | None:
    if wanted is not None:
        if wanted not in columns:
            raise DecontamError(f"{path}: {what} field {wanted!r} not found (fields: {sorted(columns)})")
        return wanted
    for c in candidates:
        if c in columns:
            return c
    return None


def load_benchmark(spec: str) -> Benchmark:
    """Read a benchmark named by `[NAME=]PATH[#FIELD]` from JSONL or Parquet.

    The text field defaults to the first of problem/question/prompt/text/input; the item id to
    `id` (or similar), else the line/row number.
    """
    name, path, text_field = parse_benchmark_spec(spec)
    if not path.exists():
        raise DecontamError(f"{path}: benchmark file not found (spec {spec!r})")
    items: list[tuple[str, str]] = []
    if path.suffix == ".parquet":
        frame = pl.read_parquet(path)
        tf = _pick(frame.columns, text_field, TEXT_FIELDS, path, "text")
        if tf is None:
            raise DecontamError(f"{path}: no text field; name one with {path}#FIELD (fields: {frame.columns})")
        idf = _pick(frame.columns, None, ID_FIELDS, path, "id")
        ids = frame[idf].cast(pl.String).to_list() if idf else [str(i) for i in range(frame.height)]
        for row_no, (item_id, text) in enumerate(zip(ids, frame[tf].to_list())):
            if not isinstance(text, str) or not text.strip():
                raise DecontamError(f"{path}: row {row_no}: field {tf!r} is empty or not a string")
            items.append((item_id, text))
    elif path.suffix in (".jsonl", ".json", ".ndjson"):
        with path.open(encoding="utf-8") as fh:
            for line_no, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DecontamError(f"{path}:{line_no}: invalid JSON ({exc.msg})") from exc
                if not isinstance(row, dict):
                    raise DecontamError(f"{path}:{line_no}: expected a JSON object per line")
                tf = _pick(list(row), text_field, TEXT_FIELDS, path, "text")
                if tf is None:
                    raise DecontamError(f"{path}:{line_no}: no text field; name one with {path}#FIELD (fields: {sorted(row)})")
                text = row[tf]
                if not isinstance(text, str) or not text.strip():
                    raise DecontamError(f"{path}:{line_no}: field {tf!r} is empty or not a string")
                idf = _pick(list(row), None, ID_FIELDS, path, "id")
                items.append((str(row[idf]) if idf else str(line_no), text))
    else:
        raise DecontamError(f"{path}: unsupported benchmark format {path.suffix!r}; use .jsonl or .parquet")
    if not items:
        raise DecontamError(f"{path}: benchmark has no items")
    return Benchmark.from_items(name, items)


def _ngrams(toks: list[str], n: int) -> list[str]:
    return [" ".join(toks[i : i + n]) for i in range(len(toks) - n + 1)]


class BenchmarkIndex:
    """n-gram -> benchmark item index for one benchmark (held in memory: benchmarks are small)."""

    def __init__(self, benchmark: Benchmark, cfg: DecontamConfig) -> None:
        self.benchmark = benchmark
        self.cfg = cfg
        self.index: dict[str, list[str]] = {}
        self.lengths: set[int] = set()
        self.formulas: dict[str, str] = {}
        self.numbers: dict[str, Counter] = {}
        self.formula_items: set[str] = set()
        n = cfg.ngram_size
        for item_id, text in benchmark.items:
            if cfg.formula_match:
                key = formula_key(text, max_prose_words=cfg.formula_max_prose_words)
                if key is not None:
                    self.formula_items.add(item_id)
                    if key not in self.formulas or item_id < self.formulas[key]:
                        self.formulas[key] = item_id
            toks = tokens(text)
            if len(toks) >= n:
                grams = set(_ngrams(toks, n))
                self.lengths.add(n)
            elif toks and cfg.short_items:
                grams = {" ".join(toks)}
                self.lengths.add(len(toks))
            else:
                grams = set()
            for g in grams:
                self.index.setdefault(g, []).append(item_id)
            self.numbers[item_id] = Counter(numbers(text))
        self.n_template_ngrams = 0
        for g in [g for g, items in self.index.items() if len(items) > cfg.max_items_per_ngram]:
            del self.index[g]
            self.n_template_ngrams += 1

    def match(self, text: str) -> dict | None:
        """Best-matching item for one text, or None.

        A short formula prompt is matched by formula identity only against formula items (their
        shared instruction words are template, not content); everything else by n-gram overlap,
        with the item's numbers required in the prompt (`require_numbers`).
        """
        key = formula_key(text, max_prose_words=self.cfg.formula_max_prose_words) if self.cfg.formula_match else None
        if key is not None and key in self.formulas:
            return {
                "benchmark_item_id": self.formulas[key],
                "n_matched_ngrams": 0,
                "overlap_ratio": 1.0,
                "matched_ngram": formula_content(text),
                "ngram_size": 0,
                "match_kind": "formula",
            }
        toks = tokens(text)
        counts: dict[str, int] = {}
        first: dict[str, str] = {}
        n_total = 0
        for length in sorted(self.lengths, reverse=True):
            grams = list(dict.fromkeys(_ngrams(toks, length)))
            if length == self.cfg.ngram_size:
                n_total = len(grams)
            for g in grams:
                for item_id in self.index.get(g, ()):
                    if key is not None and item_id in self.formula_items:
                        continue
                    counts[item_id] = counts.get(item_id, 0) + 1
                    first.setdefault(item_id, g)
        hits = [(c, i) for i, c in counts.items() if c >= self.cfg.min_matches]
        if hits and self.cfg.require_numbers:
            have = Counter(numbers(text))
            hits = [(c, i) for c, i in hits if not (self.numbers[i] - have)]
        if not hits:
            return None
        best_count, best_item = min(hits, key=lambda ci: (-ci[0], ci[1]))
        return {
            "benchmark_item_id": best_item,
            "n_matched_ngrams": best_count,
            "overlap_ratio": best_count / max(n_total, 1),
            "matched_ngram": first[best_item],
            "ngram_size": len(first[best_item].split(" ")),
            "match_kind": "ngram",
        }


def find_contamination(
    prompts: pl.DataFrame, benchmarks: Sequence[Benchmark] | Sequence[BenchmarkIndex], cfg: DecontamConfig | None = None
) -> pl.DataFrame:
    """One row per (contaminated prompt, benchmark): its best-matching benchmark item.

    Args:
        prompts: prompt_id, text.
        benchmarks: `Benchmark`s (indexed here) or prebuilt `BenchmarkIndex`es.
    """
    cfg = cfg or DecontamConfig()
    for col in ("prompt_id", "text"):
        if col not in prompts.columns:
            raise DecontamError(f"find_contamination: input has no column {col!r} (columns: {prompts.columns})")
    indexes = [b if isinstance(b, BenchmarkIndex) else BenchmarkIndex(b, cfg) for b in benchmarks]
    rows = []
    for prompt_id, text in zip(prompts["prompt_id"].to_list(), prompts["text"].to_list()):
        for idx in indexes:
            hit = idx.match(text or "")
            if hit is not None:
                rows.append({"prompt_id": prompt_id, "benchmark_name": idx.benchmark.name, **hit})
    return pl.DataFrame(rows, schema=CONTAMINATION_SCHEMA)
