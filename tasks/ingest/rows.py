"""Pure row parsers: a raw row becomes a prompt (and, for trace datasets, its traces) or a rejection.

Column mapping: `mapping={"problem": "question", "reference_answer": "answer"}` says which input
column feeds which potstill field. Unmapped fields are looked up under their usual names.

Trace row shapes (`IngestConfig.shape`, "auto" detects per row):
- `chat`: a `messages` / ShareGPT `conversations` list (`role`/`content` or `from`/`value`, an optional
  `system` turn or field); the first user turn is the problem, the last assistant turn the completion.
- `flat`: problem + completion (or problem + reasoning + answer) columns.
- `generations`: one problem, a `generations[]` list → one trace per element (`sample_index` = position),
  with aligned per-generation lists: `finish_reasons[]`, `is_reasoning_complete[]` and correctness lists
  (`correctness_math_verify[]`, `correctness_llama[]`, …) that become verdicts `source:<column>`.
Any single-trace row may carry token log-probs (`token_ids[]`, `logprobs[]`, optionally `tokens[]`)
that land in `raw.raw_token_logprobs`, and a `sample_uuid` kept on the trace.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from tasks.common.ids import imported_trace_id, prompt_id_for, stable_hash
from tasks.ingest.readers import MAX_DEPTH, deep_key, nesting_depth, too_deep_detail
from tasks.ingest.segment import Markers, parse_markers, remap_offsets, segment, spans_between

DOMAINS = ("math", "code")

# Usual column names per field, in order of preference (first present wins).
PROMPT_FIELDS: dict[str, tuple[str, ...]] = {
    "problem": ("problem", "question", "prompt", "query", "instruction", "input"),
    "reference_answer": ("reference_answer", "answer", "final_answer", "ground_truth", "gold"),
    "tests": ("tests", "test_cases", "test_list"),
    "domain": ("domain",),
    "split": ("split",),
    "id": ("id", "problem_id", "uid", "uuid"),
}
# Scalar columns kept in a prompt's metadata_json when present (dataset-card fields worth keeping).
METADATA_COLUMNS = ("source", "difficulty", "problem_type", "question_type", "level", "type", "subject")
TRACE_FIELDS: dict[str, tuple[str, ...]] = {
    "messages": ("messages", "conversations"),
    "completion": ("completion", "response", "generation", "output", "solution"),  # solution last: LIMO
    "reasoning": ("reasoning", "reasoning_content", "thinking"),
    "answer": ("model_answer", "final_response"),
    "n_completion_tokens": ("n_completion_tokens", "num_tokens", "n_tokens", "generated_token_count"),
    "finish_reason": ("finish_reason",),
    "sample_index": ("sample_index",),
    "system": ("system", "system_prompt"),
    "generations": ("generations",),
    "finish_reasons": ("finish_reasons",),
    "reasoning_complete": ("is_reasoning_complete",),
    "sample_uuid": ("sample_uuid", "sample_id", "uuid"),  # uuid: per sample in DASD's SFT release
    "token_ids": ("token_ids", "completion_token_ids"),
    "logprobs": ("logprobs", "token_logprobs", "completion_logprobs"),
    "tokens": ("tokens", "completion_tokens"),
    "char_starts": ("char_starts", "token_char_starts"),
}
USER_ROLES = ("user", "human")
ASSISTANT_ROLES = ("assistant", "gpt", "model")
SYSTEM_ROLES = ("system",)
SHAPES = ("auto", "chat", "flat", "generations")
# Imported traces keep other domains (OpenThoughts3's "science"); the verify stage routes them to no verifier.
TRACE_DOMAIN = re.compile(r"[a-z][a-z0-9_]{0,31}")
# Columns read as the source's own correctness verdicts when no --verdict is given (bool or list of bool).
VERDICT_COLUMNS = ("correct", "is_correct", "correctness")
VERDICT_PREFIX = "correctness_"
GENERATION_TEXT_KEYS = ("content", "text", "completion", "response", "generation", "output")


@dataclass(frozen=True)
class IngestConfig:
    source: str = field(metadata={"help": "dataset name recorded on every prompt; part of prompt_id"})
    domain: str | None = field(default=None, metadata={"help": "math|code for every row; default: the row's domain, else code when it has tests, else math"})
    split: str = field(default="train", metadata={"help": "split for rows without a split column"})
    mapping: tuple[tuple[str, str], ...] = field(default=(), metadata={"help": "(potstill field, input column) pairs"})
    max_row_bytes: int = field(default=1_000_000, metadata={"help": "rows larger than this are rejected as too_large"})
    model_id: str | None = field(default=None, metadata={"help": "model name for imported traces"})
    shape: str = field(default="auto", metadata={"help": "trace row shape: auto|chat|flat|generations"})
    markers: str | None = field(default=None, metadata={"help": "extra reasoning marker pair OPEN,CLOSE tried before <think> and <|begin_of_thought|>"})
    verdict_fields: tuple[str, ...] = field(default=(), metadata={"help": "columns holding the source's correctness verdicts; default: correctness_*, correct, is_correct"})
    logprob_model: str | None = field(default=None, metadata={"help": "model the imported token log-probs belong to (default: model_id)"})

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ValueError(f"shape must be one of {', '.join(SHAPES)}, not {self.shape!r}")
        if self.markers:
            parse_markers(self.markers)

    @property
    def marker_pair(self) -> Markers | None:
        return parse_markers(self.markers) if self.markers else None


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


def _as_text(value: Any, field_name: str, column: str | None, *, numbers: bool = False) -> str | None:
    """A text field, or a rejection. Numbers are text only where `numbers` says so (answers such as 18)."""
    if value is None:
        return None
    if numbers and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise RowRejected("invalid_field", f"field {field_name!r} (column {column!r}) must be text, got {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", list: "a list", dict: "an object"}
    return names.get(type(value), type(value).__name__)


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


def parse_prompt(
    row: dict[str, Any], cfg: IngestConfig, *, problem: str | None = None, extra: dict[str, Any] | None = None,
    for_traces: bool = False,
) -> dict[str, Any]:
    """A raw row → a `raw_prompts` row (without ingested_at/run_id). Raises RowRejected.

    `problem`: the problem text when it came from elsewhere (a chat's user turn); `extra`: values found
    elsewhere in the row (a reference answer in a turn's `info`, metadata). `for_traces`: the prompt of
    an imported trace, which may be a code prompt without tests or of another domain (not verifiable).

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
    extra = extra or {}
    ans_col, answer = _lookup(row, "reference_answer", cfg, PROMPT_FIELDS)
    if ans_col is None and extra.get("reference_answer") is not None:
        ans_col, answer = "messages[].info.reference_answer", extra["reference_answer"]
    answer = _as_text(answer, "reference_answer", ans_col, numbers=True)
    tests_col, tests_value = _lookup(row, "tests", cfg, PROMPT_FIELDS)
    try:
        tests = _tests(tests_value, tests_col)
    except RowRejected:
        if not for_traces:
            raise
        # stdin/stdout cases (APPS, TACO, OpenThoughts' test_cases) are not assert tests: the trace
        # is kept, unverifiable, and the prompt says why
        tests = []
        extra = {**extra, "tests_unsupported": f"column {tests_col!r} is not a list of assert strings"}
    dom_col, domain = _lookup(row, "domain", cfg, PROMPT_FIELDS)
    domain = cfg.domain or _as_text(domain, "domain", dom_col) or ("code" if tests else "math")
    domain = domain.strip().lower()
    if for_traces and domain not in DOMAINS:  # "instruction following" -> instruction_following
        domain = re.sub(r"[^a-z0-9]+", "_", domain).strip("_")
    if domain not in DOMAINS and not (for_traces and TRACE_DOMAIN.fullmatch(domain)):
        raise RowRejected("invalid_domain", f"field 'domain' (column {dom_col!r}) is {domain!r}; expected one of {DOMAINS}")
    if domain == "code" and not tests and not for_traces:
        raise RowRejected("missing_tests", "code prompts need a non-empty 'tests' list")
    split_col, split = _lookup(row, "split", cfg, PROMPT_FIELDS)
    split = _as_text(split, "split", split_col) or cfg.split
    id_col, external_id = _lookup(row, "id", cfg, PROMPT_FIELDS)
    metadata = {"external_id": external_id} if external_id is not None else {}
    metadata.update({k: row[k] for k in METADATA_COLUMNS if isinstance(row.get(k), (str, int, float)) and k != id_col})
    metadata.update({k: v for k, v in extra.items() if k != "reference_answer" and v is not None})
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


@dataclass
class ParsedRow:
    """What one input row yields: its prompt, its traces, the source's verdicts and token log-probs.

    `item_rejections` are parts of an accepted row that could not be kept (one generation of many, a
    log-prob record), as (suffix of the row's source_ref, reason_code, detail).
    """

    prompt: dict[str, Any]
    traces: list[dict[str, Any]] = field(default_factory=list)
    verdicts: list[dict[str, Any]] = field(default_factory=list)
    logprobs: list[dict[str, Any]] = field(default_factory=list)
    item_rejections: list[tuple[str, str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class _Completion:
    text: str | None  # None: no completion at all
    reasoning: str | None = None  # a separate reasoning field (reasoning_content)
    column: str = "completion"


def _turn_info(turn: dict[str, Any]) -> dict[str, Any]:
    info = turn.get("info")
    return info if isinstance(info, dict) else {}


def _messages(value: Any, column: str) -> tuple[str | None, _Completion | None, dict[str, Any]]:
    """(first user turn, last assistant turn, extras) of a chat `messages` / ShareGPT `conversations` list."""
    if not isinstance(value, list):
        raise RowRejected("invalid_field", f"field {column!r} must be a list of chat turns, got {_kind(value)}")
    user = assistant = None
    extra: dict[str, Any] = {}
    for i, turn in enumerate(value):
        if not isinstance(turn, dict):
            raise RowRejected("invalid_field", f"field {column!r}: turn {i} is {_kind(turn)}, not an object")
        role = turn.get("role", turn.get("from", ""))
        role = role.lower() if isinstance(role, str) else ""
        content = turn.get("content", turn.get("value"))
        if content is not None and not isinstance(content, str):
            raise RowRejected("invalid_field", f"field {column!r}: turn {i} ({role}) content must be text, got {_kind(content)}")
        if role in USER_ROLES and user is None:
            user = content
            info = _turn_info(turn)
            if info.get("reference_answer") not in (None, ""):
                extra["reference_answer"] = info["reference_answer"]
            if isinstance(info.get("source"), str):
                extra["source"] = info["source"]
        elif role in ASSISTANT_ROLES:
            reasoning = turn.get("reasoning_content", turn.get("reasoning"))
            if reasoning is not None and not isinstance(reasoning, str):
                raise RowRejected("invalid_field", f"field {column!r}: turn {i} reasoning_content must be text, got {_kind(reasoning)}")
            assistant = _Completion(content, reasoning, f"{column}[{i}]")
        elif role in SYSTEM_ROLES and isinstance(content, str):
            extra["system_prompt_hash"] = stable_hash("system", content)
    return user, assistant, extra


def _flat_completion(row: dict[str, Any], cfg: IngestConfig) -> _Completion:
    comp_col, completion = _lookup(row, "completion", cfg, TRACE_FIELDS)
    completion = _as_text(completion, "completion", comp_col)
    r_col, reasoning = _lookup(row, "reasoning", cfg, TRACE_FIELDS)
    reasoning = _as_text(reasoning, "reasoning", r_col)
    if completion is None:
        a_col, answer = _lookup(row, "answer", cfg, TRACE_FIELDS)
        answer = _as_text(answer, "answer", a_col)
        if reasoning is None and answer is None:
            raise RowRejected("missing_field", "no completion: expected messages, completion/response, generations, or reasoning + answer")
        return _Completion(answer or "", reasoning, a_col or r_col or "answer")
    return _Completion(completion, reasoning, comp_col or "completion")


def _generation(value: Any, column: str) -> _Completion:
    """One element of `generations[]`: a string, or an object with content/text and optional reasoning_content."""
    if isinstance(value, str):
        return _Completion(value, None, column)
    if isinstance(value, dict):
        text = next((value[k] for k in GENERATION_TEXT_KEYS if value.get(k) is not None), None)
        reasoning = value.get("reasoning_content", value.get("reasoning"))
        if text is not None and not isinstance(text, str):
            raise RowRejected("invalid_field", f"field {column!r}: text must be a string, got {_kind(text)}")
        if reasoning is not None and not isinstance(reasoning, str):
            raise RowRejected("invalid_field", f"field {column!r}: reasoning_content must be text, got {_kind(reasoning)}")
        return _Completion(text, reasoning, column)
    if value is None:
        return _Completion(None, None, column)
    raise RowRejected("invalid_field", f"field {column!r} must be text, got {_kind(value)}")


def _verdict_value(value: Any, column: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise RowRejected("invalid_field", f"field {column!r} must be true/false (or a list of them), got {_kind(value)} {value!r}"[:300])


def _verdict_columns(row: dict[str, Any], cfg: IngestConfig) -> list[str]:
    if cfg.verdict_fields:  # a row without the column (or with null) was not judged by the source
        return [c for c in cfg.verdict_fields if row.get(c) is not None]

    def one(v: Any) -> bool:
        return isinstance(v, bool) or (isinstance(v, str) and v.strip().lower() in ("true", "false"))

    def boolish(v: Any) -> bool:  # a verdict or a list of them (nulls: not judged); counts and scores are not
        return one(v) or (isinstance(v, list) and any(one(x) for x in v) and all(x is None or one(x) for x in v))

    return [c for c in row if (c.startswith(VERDICT_PREFIX) or c in VERDICT_COLUMNS) and boolish(row[c])]


def _aligned(row: dict[str, Any], column: str | None, value: Any, n: int, label: str) -> list[Any]:
    """A per-generation list of length n (a scalar applies to every generation; None = no value)."""
    if value is None:
        return [None] * n
    if not isinstance(value, list):
        if n == 1:
            return [value]
        raise RowRejected("invalid_field", f"field {label!r} (column {column!r}) must be a list aligned with {n} generations, got {_kind(value)}")
    if len(value) != n:
        raise RowRejected("invalid_field", f"field {label!r} (column {column!r}) has {len(value)} entries for {n} generations")
    return value


def parse_trace_row(row: dict[str, Any], cfg: IngestConfig, decode=None) -> ParsedRow:
    """A raw trace row → its prompt, traces (sample_index None = next free), source verdicts, log-probs.

    Raises RowRejected when the row yields no trace; a generation that cannot be kept while others
    can is listed in `item_rejections` instead.
    """
    if not cfg.model_id:
        raise ValueError("importing traces needs a model name (--model)")
    check_depth(row)
    shape = cfg.shape
    gen_col, generations = _lookup(row, "generations", cfg, TRACE_FIELDS)
    msg_col, messages = _lookup(row, "messages", cfg, TRACE_FIELDS)
    if shape == "auto":
        shape = "generations" if generations is not None else "chat" if messages is not None else "flat"
    extra: dict[str, Any] = {}
    problem = None
    if shape == "generations":
        if generations is None:
            raise RowRejected("missing_field", "field 'generations' is missing (looked for column " + repr(gen_col or "generations") + ")")
        if not isinstance(generations, list) or not generations:
            raise RowRejected("invalid_field", f"field {gen_col!r} must be a non-empty list, got {_kind(generations)}")
        completions = [_generation(g, f"{gen_col}[{i}]") for i, g in enumerate(generations)]
        if messages is not None and isinstance(messages, list):
            _, _, extra = _messages(messages, msg_col or "messages")
            extra.pop("reference_answer", None)  # the row's own answer column is the reference
    elif shape == "chat":
        if messages is None:
            raise RowRejected("missing_field", f"field 'messages' is missing (looked for column {msg_col or 'messages/conversations'!r})")
        problem, completion, extra = _messages(messages, msg_col or "messages")
        if problem is None:
            raise RowRejected("missing_field", f"field {msg_col!r} has no user turn")
        if completion is None or (completion.text is None and completion.reasoning is None):
            raise RowRejected("missing_field", f"field {msg_col!r} has no assistant turn")
        completions = [completion]
    else:
        completions = [_flat_completion(row, cfg)]
    _, system = _lookup(row, "system", cfg, TRACE_FIELDS)
    if isinstance(system, str) and system.strip():
        extra["system_prompt_hash"] = stable_hash("system", system)
    prompt = parse_prompt(row, cfg, problem=problem, extra=extra, for_traces=True)
    n = len(completions)
    fin_col, finish = _lookup(row, "finish_reasons" if shape == "generations" else "finish_reason", cfg, TRACE_FIELDS)
    finishes = _aligned(row, fin_col, finish, n, "finish_reasons")
    rc_col, complete = _lookup(row, "reasoning_complete", cfg, TRACE_FIELDS)
    completes = _aligned(row, rc_col, complete, n, "is_reasoning_complete")
    verdict_lists = {c: _aligned(row, c, row[c], n, c) for c in _verdict_columns(row, cfg)}
    tok_col, n_tokens = _lookup(row, "n_completion_tokens", cfg, TRACE_FIELDS)
    idx_col, sample_index = _lookup(row, "sample_index", cfg, TRACE_FIELDS)
    uuid_col, sample_uuid = _lookup(row, "sample_uuid", cfg, TRACE_FIELDS)
    if shape != "generations":
        n_tokens = _count(n_tokens, "n_completion_tokens", tok_col)
        sample_index = _count(sample_index, "sample_index", idx_col)
        sample_uuid = _as_text(sample_uuid, "sample_uuid", uuid_col, numbers=True)
    out = ParsedRow(prompt=prompt)
    first_error: RowRejected | None = None
    for i, completion in enumerate(completions):
        suffix = f"#generation[{i}]" if shape == "generations" else ""
        try:
            trace = _trace(prompt, completion, cfg, finishes[i], fin_col, completes[i], rc_col)
        except RowRejected as exc:
            first_error = first_error or exc
            out.item_rejections.append((suffix, exc.reason_code, exc.detail))
            continue
        if shape == "generations":
            trace["_position"] = i
            if any(t["trace_id"] == trace["trace_id"] for t in out.traces):
                # the same text sampled twice is two samples: the repeat's id also names its position
                trace["trace_id"] = "t_" + stable_hash("imported", prompt["prompt_id"], cfg.model_id, trace["completion_text"], i)
        else:
            trace.update(sample_index=sample_index, n_completion_tokens=n_tokens, source_sample_id=sample_uuid)
        out.traces.append(trace)
        for column, values in verdict_lists.items():
            try:
                verdict = _verdict_value(values[i], f"{column}[{i}]" if shape == "generations" else column)
            except RowRejected as exc:
                if len(completions) == 1:
                    raise
                out.item_rejections.append((suffix, exc.reason_code, exc.detail))
                continue
            if verdict is not None:
                out.verdicts.append(_source_verdict(trace, column, i if shape == "generations" else None, verdict, cfg))
        try:
            record = _token_logprobs(row, trace, cfg, decode, i if shape == "generations" else None, n)
        except RowRejected as exc:
            out.item_rejections.append((suffix + "#logprobs", exc.reason_code, exc.detail))
            continue
        if record is not None:
            out.logprobs.append(record)
    if not out.traces:
        assert first_error is not None  # every completion was rejected
        if len(completions) == 1:
            raise first_error
        raise RowRejected(first_error.reason_code, f"no generation could be kept; first: {first_error.detail}")
    return out


def _trace(
    prompt: dict[str, Any], completion: _Completion, cfg: IngestConfig,
    finish_reason: Any, fin_col: str | None, reasoning_complete: Any, rc_col: str | None,
) -> dict[str, Any]:
    text = completion.text
    if text is None and not completion.reasoning:
        raise RowRejected("missing_field", f"field {completion.column!r} holds no completion")
    if not (text or "").strip() and not (completion.reasoning or "").strip():
        raise RowRejected("empty_completion", f"field {completion.column!r}: the model's completion is empty")
    seg = segment(text or "", markers=cfg.marker_pair, reasoning=completion.reasoning)
    finish_reason = _as_text(finish_reason, "finish_reason", fin_col)
    if reasoning_complete is not None and not isinstance(reasoning_complete, bool):
        raise RowRejected("invalid_field", f"field 'is_reasoning_complete' (column {rc_col!r}) must be true/false, got {_kind(reasoning_complete)}")
    truncated = seg.is_truncated or finish_reason == "length" or reasoning_complete is False
    return {
        "trace_id": imported_trace_id(prompt["prompt_id"], cfg.model_id, seg.completion),
        "prompt_id": prompt["prompt_id"],
        "model_id": cfg.model_id,
        "origin": "imported",
        "sample_index": None,
        "completion_text": seg.completion,
        "reasoning_text": seg.reasoning,
        "answer_text": seg.answer,
        "n_completion_tokens": None,
        "finish_reason": finish_reason,
        "is_truncated": truncated,
        "source_sample_id": None,
        "_spans": seg.spans,
        "_original": text or "",
    }


def _source_verdict(trace: dict[str, Any], column: str, index: int | None, verdict: bool, cfg: IngestConfig) -> dict[str, Any]:
    where = f"{column}[{index}]" if index is not None else column
    return {
        "trace_id": trace["trace_id"],
        "prompt_id": trace["prompt_id"],
        "verifier": f"source:{column}",
        "verifier_version": f"source:{cfg.source}",
        "input_hash": stable_hash("source_verdict", column, trace["trace_id"], verdict, length=32),
        "verdict_status": "correct" if verdict else "incorrect",
        "verdict_reason": "source_marked_correct" if verdict else "source_marked_incorrect",
        "score": 1.0 if verdict else 0.0,
        "detail": f"{where} = {str(verdict).lower()} in the imported dataset {cfg.source!r}",
    }


def _number_list(value: Any, column: str, kind: type) -> list:
    if not isinstance(value, list):
        raise RowRejected("invalid_field", f"field {column!r} must be a list, got {_kind(value)}")
    for i, x in enumerate(value):
        ok = isinstance(x, int) and not isinstance(x, bool) if kind is int else isinstance(x, (int, float)) and not isinstance(x, bool)
        if not ok or (kind is int and not 0 <= x <= MAX_COUNT) or (kind is float and not (math.isfinite(x) and x <= 1e-6)):
            want = "a token id (integer >= 0)" if kind is int else "a finite log-prob <= 0"
            raise RowRejected("invalid_field", f"field {column!r}: entry {i} is {x!r}, expected {want}")
    return value


def token_logprob_record(
    *, trace: dict[str, Any], token_ids: Any, logprobs: Any, tokens: Any = None, char_starts: Any = None,
    text: str | None = None, spans=None, model_id: str, logprob_source: str, columns: dict[str, str] | None = None,
    decode=None,
) -> dict[str, Any]:
    """A `raw.raw_token_logprobs` row for `trace` from released token ids/log-probs, or a rejection.

    Char offsets come from `char_starts`, else from token strings that concatenate to the text, else
    from `decode(token_ids) -> (text, char_starts)` (a tokenizer), else they stay null (the log-probs
    are kept, and sentence scoring reports them as missing_char_offsets). `text` is what the tokens spell (default: the trace's completion
    as released); offsets follow the completion if it was rewritten.
    """
    cols = {"token_ids": "token_ids", "logprobs": "logprobs", "tokens": "tokens", "char_starts": "char_starts", **(columns or {})}
    lps = _number_list(logprobs, cols["logprobs"], float)
    ids = None if token_ids is None else _number_list(token_ids, cols["token_ids"], int)
    if ids is not None and len(ids) != len(lps):
        raise RowRejected("logprob_length_mismatch", f"{len(ids)} token_ids vs {len(lps)} logprobs")
    if ids is None and tokens is None:
        raise RowRejected("missing_field", f"log-probs need token ids (column {cols['token_ids']!r}) or token strings (column {cols['tokens']!r})")
    text = trace["_original"] if text is None else text
    if tokens is not None and (not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens) or len(tokens) != len(lps)):
        raise RowRejected("invalid_field", f"field {cols['tokens']!r} must be a list of {len(lps)} token strings")
    if char_starts is not None:
        starts = _number_list(char_starts, cols["char_starts"], int)
        if len(starts) != len(lps) or any(s > len(text) for s in starts) or starts != sorted(starts):
            raise RowRejected("invalid_field", f"field {cols['char_starts']!r} must hold {len(lps)} increasing offsets within the {len(text)}-char text")
    elif tokens is not None and "".join(tokens) == text:
        starts = [0] * len(tokens)
        pos = 0
        for i, piece in enumerate(tokens):
            starts[i] = pos
            pos += len(piece)
    elif decode is not None and ids is not None:
        decoded, starts = decode(ids)
        if decoded != text:
            lead = len(decoded) - len(decoded.lstrip())
            if decoded.strip() != text.strip():
                raise RowRejected("logprob_text_mismatch", "the token ids decode to a different text than the completion")
            shift = (len(text) - len(text.lstrip())) - lead
            starts = [min(max(s + shift, 0), len(text)) for s in starts]
    else:
        starts = None  # kept unplaced: sentence scoring reports missing_char_offsets until a tokenizer places them
    if starts is not None:
        starts = remap_offsets(list(starts), spans if spans is not None else trace["_spans"], len(trace["completion_text"]))
    return {
        "trace_id": trace["trace_id"],
        "model_id": model_id,
        "logprob_source": logprob_source,
        "n_tokens": len(lps),
        "token_ids": ids,
        "tokens": None if ids is not None else list(tokens),
        "logprobs": [float(x) for x in lps],
        "char_starts": starts,
        "top_k": 0,
    }


def _token_logprobs(
    row: dict[str, Any], trace: dict[str, Any], cfg: IngestConfig, decode=None, index: int | None = None, n: int = 1
) -> dict[str, Any] | None:
    """The trace's log-prob record from the row; `index`: the generation, when the row holds one list per generation."""
    lp_col, logprobs = _lookup(row, "logprobs", cfg, TRACE_FIELDS)
    if logprobs is None:
        return None
    id_col, token_ids = _lookup(row, "token_ids", cfg, TRACE_FIELDS)
    tk_col, tokens = _lookup(row, "tokens", cfg, TRACE_FIELDS)
    cs_col, char_starts = _lookup(row, "char_starts", cfg, TRACE_FIELDS)
    if index is not None:  # generations[]: a list of per-generation lists, aligned
        lists = {lp_col: logprobs, id_col: token_ids, tk_col: tokens, cs_col: char_starts}
        for column, value in lists.items():
            if value is not None and not (isinstance(value, list) and len(value) == n and all(v is None or isinstance(v, list) for v in value)):
                raise RowRejected("invalid_field", f"field {column!r} must hold one list per generation ({n})")
        logprobs, token_ids, tokens, char_starts = (None if v is None else v[index] for v in (logprobs, token_ids, tokens, char_starts))
        if logprobs is None:
            return None
    model = cfg.logprob_model or cfg.model_id
    return token_logprob_record(
        trace=trace, token_ids=token_ids, logprobs=logprobs, tokens=tokens, char_starts=char_starts,
        model_id=model, logprob_source="sampled" if model == cfg.model_id else "teacher_forced",
        columns={"logprobs": lp_col or "logprobs", "token_ids": id_col or "token_ids", "tokens": tk_col or "tokens",
                 "char_starts": cs_col or "char_starts"},
        decode=decode,
    )


def check_depth(row: dict[str, Any]) -> None:
    """Reject rows nested deeper than MAX_DEPTH (counted without recursion: hostile input cannot overflow)."""
    if nesting_depth(row) > MAX_DEPTH:
        raise RowRejected("too_deep", too_deep_detail(deep_key(row)))


LOGPROB_TEXT_FIELDS = ("completion", "response", "text", "generation", "output")


def parse_logprob_row(row: dict[str, Any], cfg: IngestConfig, matches: list[dict[str, Any]], decode=None) -> dict[str, Any]:
    """A row of a released log-prob file (`sample_uuid`, `token_ids[]`, `logprobs[]`, optionally the
    text they spell) joined to its imported trace → a `raw.raw_token_logprobs` row, or a rejection.

    `matches`: the traces whose `source_sample_id` equals the row's sample id (trace_id, model_id,
    completion_text). `cfg.logprob_model` (else `cfg.model_id`) names the model the log-probs belong to.
    """
    check_depth(row)
    uuid_col, sample_id = _lookup(row, "sample_uuid", cfg, TRACE_FIELDS)
    sample_id = _as_text(sample_id, "sample_uuid", uuid_col, numbers=True)
    if sample_id is None:
        raise RowRejected("missing_field", f"field 'sample_uuid' is missing (looked for column {uuid_col or 'sample_uuid/sample_id'!r})")
    if not matches:
        raise RowRejected("trace_missing", f"no imported trace has sample_uuid {sample_id!r}; ingest the traces first")
    if len(matches) > 1:
        raise RowRejected("ambiguous_sample_id", f"{len(matches)} traces have sample_uuid {sample_id!r}; name the dataset with --source")
    match = matches[0]
    text_col = next((c for c in LOGPROB_TEXT_FIELDS if isinstance(row.get(c), str)), None)
    spans, text = None, match["completion_text"]
    if text_col is not None and row[text_col] != match["completion_text"]:
        # the same reasoning and answer written another way (thought markers, a pre-filled <think>)
        spans = spans_between(segment(row[text_col], markers=cfg.marker_pair), segment(match["completion_text"]))
        if spans is None:
            raise RowRejected("logprob_text_mismatch", f"field {text_col!r} is not the text of trace {match['trace_id']}")
        text = row[text_col]
    trace = {"trace_id": match["trace_id"], "completion_text": match["completion_text"], "_spans": spans, "_original": text}
    lp_col, logprobs = _lookup(row, "logprobs", cfg, TRACE_FIELDS)
    if logprobs is None:
        raise RowRejected("missing_field", f"field 'logprobs' is missing (looked for column {lp_col or 'logprobs'!r})")
    id_col, token_ids = _lookup(row, "token_ids", cfg, TRACE_FIELDS)
    tk_col, tokens = _lookup(row, "tokens", cfg, TRACE_FIELDS)
    cs_col, char_starts = _lookup(row, "char_starts", cfg, TRACE_FIELDS)
    model = cfg.logprob_model or cfg.model_id or match["model_id"]
    return token_logprob_record(
        trace=trace, token_ids=token_ids, logprobs=logprobs, tokens=tokens, char_starts=char_starts,
        model_id=model, logprob_source="sampled" if model == match["model_id"] else "teacher_forced",
        columns={"logprobs": lp_col or "logprobs", "token_ids": id_col or "token_ids", "tokens": tk_col or "tokens",
                 "char_starts": cs_col or "char_starts"},
        decode=decode,
    )


def sample_id_of(row: dict[str, Any] | None, cfg: IngestConfig) -> str | None:
    """The sample id a log-prob row joins on (None when absent or not text/number)."""
    if row is None:
        return None
    _, value = _lookup(row, "sample_uuid", cfg, TRACE_FIELDS)
    return str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else None
