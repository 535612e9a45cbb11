"""Eval sets: JSONL/Parquet files of problems with reference answers (math) or tests (code).

Rows need a problem text (`problem` | `prompt` | `question`), a `domain` (default math), and a
reference (`answer` | `reference_answer`) for math or `tests` | `tests_json` for code.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from tasks.common.ids import stable_hash
from tasks.evaluate.config import EvalError

PROBLEM_SCHEMA = {
    "problem_id": pl.String, "domain": pl.String, "problem": pl.String,
    "reference_answer": pl.String, "tests_json": pl.String,
}
_TEXT_FIELDS = ("problem", "prompt", "question", "problem_text")
_ANSWER_FIELDS = ("answer", "reference_answer", "solution_answer")
_TESTS_FIELDS = ("tests", "tests_json", "test_list")
_ID_FIELDS = ("id", "problem_id", "prompt_id")


def _first(row: dict, names: tuple[str, ...]):
    for name in names:
        if row.get(name) not in (None, ""):
            return row[name]
    return None


def normalize_problems(records: list[dict], *, where: str) -> pl.DataFrame:
    """Rows → (problem_id, domain, problem, reference_answer, tests_json); errors name the row and field."""
    out = []
    for i, row in enumerate(records, start=1):
        problem = _first(row, _TEXT_FIELDS)
        if problem is None or not str(problem).strip():
            raise EvalError(f"{where}:{i}: field 'problem' is empty (also looked for {list(_TEXT_FIELDS[1:])})")
        domain = str(row.get("domain") or "math")
        answer = _first(row, _ANSWER_FIELDS)
        tests = _first(row, _TESTS_FIELDS)
        if isinstance(tests, str):
            try:
                tests = json.loads(tests)
            except json.JSONDecodeError as exc:
                raise EvalError(f"{where}:{i}: field 'tests' is not a JSON list: {exc}") from exc
        if domain == "math" and answer is None:
            raise EvalError(f"{where}:{i}: math problem has no 'answer'")
        if domain == "code" and not tests:
            raise EvalError(f"{where}:{i}: code problem has no 'tests'")
        pid = _first(row, _ID_FIELDS)
        out.append(
            {
                "problem_id": str(pid) if pid is not None else "e_" + stable_hash(domain, str(problem)),
                "domain": domain,
                "problem": str(problem),
                "reference_answer": None if answer is None else str(answer),
                "tests_json": json.dumps(list(tests)) if tests else None,
            }
        )
    df = pl.DataFrame(out, schema=PROBLEM_SCHEMA)
    dupes = df.filter(pl.col("problem_id").is_duplicated())["problem_id"].unique().to_list()
    if dupes:
        raise EvalError(f"{where}: problem ids used twice: {sorted(dupes)[:5]}")
    return df


def load_eval_set(path: str | Path, *, limit: int | None = None) -> pl.DataFrame:
    """Read a JSONL or Parquet eval set into the normalised problem table."""
    path = Path(path)
    if not path.is_file():
        raise EvalError(f"eval set {path} does not exist")
    if path.suffix == ".parquet":
        records = pl.read_parquet(path).to_dicts()
    else:
        records = []
        for i, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise EvalError(f"{path}:{i}: invalid JSON: {exc}") from exc
    df = normalize_problems(records, where=str(path))
    return df.head(limit) if limit is not None else df


def eval_set_hash(problems: pl.DataFrame) -> str:
    """Content hash of a problem table (ids, texts and references), order-independent."""
    rows = sorted(problems.select(list(PROBLEM_SCHEMA)).rows())
    return stable_hash(rows, length=16)
