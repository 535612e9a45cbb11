"""Pure row parsers: a raw row becomes a prompt (and, for trace datasets, a trace) or a rejection.

Column mapping: `mapping={"problem": "question", "reference_answer": "answer"}` says which input
column feeds which potstill field. Unmapped fields are looked up under their usual names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tasks.common.ids import imported_trace_id, prompt_id_for
from tasks.common.text import join_think, split_think

DOMAINS = ("math", "code")

# Usual column names per field, in order of preference (first present wins).
PROMPT_FIELDS: dict[str, tuple[str, ...]] = {
    "problem": ("problem", "question", "prompt", "query", "instruction"),
    "reference_answer": ("reference_answer", "answer", "final_answer", "ground_truth", "gold"),
    "tests": ("tests", "test_cases", "test_list"),
    "domain": ("domain",),
    "split": ("split",),
    "id": ("id", "problem_id", "uid"),
}
TRACE_FIELDS: dict[str, tuple[str, ...]] = {
    "messages": ("messages", "conversations"),
    "completion": ("completion", "response", "generation", "output"),
    "reasoning": ("reasoning", "reasoning_content", "thinking"),
    "answer": ("model_answer", "final_response"),
    "n_completion_tokens": ("n_completion_tokens", "num_tokens", "n_tokens"),
    "finish_reason": ("finish_reason",),
    "sample_index": ("sample_index",),
}
USER_ROLES = ("user", "human")
ASSISTANT_ROLES = ("assistant", "gpt", "model")


@dataclass(frozen=True)
class IngestConfig:
    source: str = field(metadata={"help": "dataset name recorded on every prompt; part of prompt_id"})
    domain: str | None = field(default=None, metadata={"help": "math|code for every row; default: the row's domain, else code when it has tests, else math"})
    split: str = field(default="train", metadata={"help": "split for rows without a split column"})
    mapping: tuple[tuple[str, str], ...] = field(default=(), metadata={"help": "(potstill field, input column) pairs"})
    max_row_bytes: int = field(default=1_000_000, metadata={"help": "rows larger than this are rejected as too_large"})
    model_id: str | None = field(default=None, metadata={"help": "model name for imported traces"})


class RowRejected(ValueError):
    """A row cannot be accepted; carries its snake_case reason code."""

    def __init__(self, reason_code: str, detail: str) -> None:
        super().__init__(detail)
        self.reason_code = reason_code
        self.detail = detail


def _lookup(row: dict[str, Any], name: str, cfg: IngestConfig, usual: dict[str, tuple[str, ...]]) -> tuple[str | None, Any]:
    mapped = dict(cfg.mapping).get(name)
    if mapped is not None:
        return (mapped, row[mapped]) if mapped in row else (mapped, None)
    for column in usual.get(name, (name,)):
        if column in row and row[column] is not None:
            return column, row[column]
    return None, None


def _as_text(value: Any, field_name: str, column: str | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise RowRejected("invalid_field", f"field {field_name!r} (column {column!r}) must be text, got {type(value).__name__}")
    return value


MAX_COUNT = 2**31 - 1  # counts and indices are stored as 32-bit integers


def _count(value: Any, field_name: str, column: str | None) -> int | None:
    """A non-negative integer field (token count, sample index) or a rejection."""
    if value is None:
        return None
    try:
        number = int(value)
        exact = not isinstance(value, float) or float(number) == value
    except (TypeError, ValueError, OverflowError):
        number, exact = -1, False
    if isinstance(value, bool) or not exact or not 0 <= number <= MAX_COUNT:
        raise RowRejected("invalid_field", f"field {field_name!r} (column {column!r}) must be an integer in [0, {MAX_COUNT}], got {value!r}")
    return number


def _tests(value: Any, column: str | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            value = [value]
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise RowRejected("invalid_field", f"field 'tests' (column {column!r}) must be a list of strings")
    return [t for t in value if t.strip()]


def parse_prompt(row: dict[str, Any], cfg: IngestConfig, *, problem: str | None = None) -> dict[str, Any]:
    """A raw row → a `raw_prompts` row (without ingested_at/run_id). Raises RowRejected.

    >>> cfg = IngestConfig(source="toy")
    >>> parse_prompt({"question": "1+1?", "answer": 2}, cfg, )["reference_answer"]
    '2'
    """
    if problem is None:
        column, value = _lookup(row, "problem", cfg, PROMPT_FIELDS)
        if column is None or column not in row:
            wanted = dict(cfg.mapping).get("problem") or "/".join(PROMPT_FIELDS["problem"])
            raise RowRejected("missing_field", f"field 'problem' is missing (looked for column {wanted!r})")
        problem = _as_text(value, "problem", column)
    if problem is None or not problem.strip():
        raise RowRejected("empty_problem", "field 'problem' is empty")
    ans_col, answer = _lookup(row, "reference_answer", cfg, PROMPT_FIELDS)
    answer = _as_text(answer, "reference_answer", ans_col)
    tests_col, tests_value = _lookup(row, "tests", cfg, PROMPT_FIELDS)
    tests = _tests(tests_value, tests_col)
    dom_col, domain = _lookup(row, "domain", cfg, PROMPT_FIELDS)
    domain = cfg.domain or _as_text(domain, "domain", dom_col) or ("code" if tests else "math")
    domain = domain.strip().lower()
    if domain not in DOMAINS:
        raise RowRejected("invalid_domain", f"field 'domain' is {domain!r}; expected one of {DOMAINS}")
    if domain == "code" and not tests:
        raise RowRejected("missing_tests", "code prompts need a non-empty 'tests' list")
    split_col, split = _lookup(row, "split", cfg, PROMPT_FIELDS)
    split = _as_text(split, "split", split_col) or cfg.split
    _, external_id = _lookup(row, "id", cfg, PROMPT_FIELDS)
    metadata = {"external_id": external_id} if external_id is not None else {}
    return {
        "prompt_id": prompt_id_for(problem, cfg.source),
        "source": cfg.source,
        "domain": domain,
        "problem_text": problem,
        "reference_answer": None if answer is None or not answer.strip() else answer.strip(),
        "tests_json": json.dumps(tests) if tests else None,
        "split": split,
        "metadata_json": json.dumps(metadata, default=str) if metadata else None,
    }


def _messages(value: Any, column: str) -> tuple[str | None, str | None]:
    """(first user turn, last assistant turn) of a chat `messages` / ShareGPT `conversations` list."""
    if not isinstance(value, list):
        raise RowRejected("invalid_field", f"field {column!r} must be a list of chat turns")
    user = assistant = None
    for turn in value:
        if not isinstance(turn, dict):
            raise RowRejected("invalid_field", f"field {column!r} holds a turn that is not an object")
        role = str(turn.get("role", turn.get("from", ""))).lower()
        content = turn.get("content", turn.get("value"))
        if content is not None and not isinstance(content, str):
            raise RowRejected("invalid_field", f"field {column!r}: a {role} turn's content is not text")
        if role in USER_ROLES and user is None:
            user = content
        elif role in ASSISTANT_ROLES:
            assistant = content
    return user, assistant


def parse_trace(row: dict[str, Any], cfg: IngestConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """A raw trace row → (`raw_prompts` row, `raw_traces` row without sample_index/created_at/run_id).

    Layouts: chat `messages` (or ShareGPT `conversations`) with a `<think>` block in the assistant
    turn; or flat columns problem + completion; or problem + reasoning + answer.
    """
    if not cfg.model_id:
        raise ValueError("importing traces needs a model name (--model)")
    msg_col, messages = _lookup(row, "messages", cfg, TRACE_FIELDS)
    problem = completion = None
    if messages is not None:
        problem, completion = _messages(messages, msg_col or "messages")
        if problem is None:
            raise RowRejected("missing_field", f"field {msg_col!r} has no user turn")
        if completion is None:
            raise RowRejected("missing_field", f"field {msg_col!r} has no assistant turn")
    else:
        comp_col, completion = _lookup(row, "completion", cfg, TRACE_FIELDS)
        completion = _as_text(completion, "completion", comp_col)
        if completion is None:
            r_col, reasoning = _lookup(row, "reasoning", cfg, TRACE_FIELDS)
            a_col, answer = _lookup(row, "answer", cfg, TRACE_FIELDS)
            reasoning = _as_text(reasoning, "reasoning", r_col)
            answer = _as_text(answer, "answer", a_col)
            if reasoning is None and answer is None:
                raise RowRejected("missing_field", "no completion: expected messages, completion/response, or reasoning + answer")
            completion = join_think(reasoning, answer or "")
    prompt = parse_prompt(row, cfg, problem=problem)
    if not completion or not completion.strip():
        raise RowRejected("empty_completion", "the model's completion is empty")
    split = split_think(completion)
    tok_col, n_tokens = _lookup(row, "n_completion_tokens", cfg, TRACE_FIELDS)
    fin_col, finish_reason = _lookup(row, "finish_reason", cfg, TRACE_FIELDS)
    idx_col, sample_index = _lookup(row, "sample_index", cfg, TRACE_FIELDS)
    n_tokens = _count(n_tokens, "n_completion_tokens", tok_col)
    sample_index = _count(sample_index, "sample_index", idx_col)
    finish_reason = _as_text(finish_reason, "finish_reason", fin_col)
    trace = {
        "trace_id": imported_trace_id(prompt["prompt_id"], cfg.model_id, completion),
        "prompt_id": prompt["prompt_id"],
        "model_id": cfg.model_id,
        "origin": "imported",
        "sample_index": sample_index,
        "completion_text": completion,
        "reasoning_text": split.reasoning,
        "answer_text": split.answer,
        "n_completion_tokens": n_tokens,
        "finish_reason": finish_reason,
        "is_truncated": (not split.is_closed) or finish_reason == "length",
    }
    return prompt, trace
