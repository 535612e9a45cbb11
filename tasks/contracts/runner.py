"""Validate a polars DataFrame against a suite with great-expectations (pure: no warehouse).

great-expectations is slow to import (~4 s): it is imported on first use, and one ephemeral
context with one pandas batch definition serves the whole process.

>>> result = validate_frame(pl.DataFrame({"trace_id": ["a"]}), load_suite("raw_traces"))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

import polars as pl

from tasks.contracts.suites import BLOCKING_SEVERITY, Suite

MAX_EXAMPLES = 5
_ge_lock = threading.Lock()


@dataclass(frozen=True)
class ExpectationOutcome:
    """The result of one expectation (or one SQL referential check) over the checked rows."""

    index: int
    expectation_type: str
    columns: tuple[str, ...]
    kwargs: dict[str, Any]
    severity: str
    success: bool
    n_unexpected: int | None = None
    examples: tuple[dict[str, Any], ...] = ()
    error_message: str | None = None

    @property
    def is_blocking(self) -> bool:
        return self.severity == BLOCKING_SEVERITY

    def describe(self, suite_name: str, n_rows: int) -> str:
        cols = ", ".join(self.columns)
        args = {k: v for k, v in self.kwargs.items() if k not in ("column", "column_list", "column_A", "column_B", "batch_id")}
        head = f"{suite_name}: {self.expectation_type}({cols}{', ' if args else ''}{_fmt_args(args)})"
        if self.error_message:
            return f"{head} could not be evaluated: {self.error_message}"
        if self.success:
            return f"{head} passed"
        examples = "; ".join(json.dumps(e, default=str, sort_keys=True) for e in self.examples)
        return f"{head} failed on {self.n_unexpected} of {n_rows} rows, e.g. {examples}"


def _fmt_args(args: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in sorted(args.items()))


@dataclass(frozen=True)
class ContractResult:
    """All outcomes of one suite over one set of rows."""

    validation_id: str
    suite_name: str
    table: str
    n_rows: int
    outcomes: tuple[ExpectationOutcome, ...]
    checked_run_id: str | None = None
    checked_at: datetime = field(default_factory=lambda: datetime.now(UTC).replace(tzinfo=None))

    @property
    def success(self) -> bool:
        """Every expectation passed (blocking or not)."""
        return all(o.success for o in self.outcomes)

    @property
    def blocking_failures(self) -> tuple[ExpectationOutcome, ...]:
        return tuple(o for o in self.outcomes if o.is_blocking and not o.success)

    @property
    def passed(self) -> bool:
        """No blocking expectation failed (warnings allowed)."""
        return not self.blocking_failures

    def failure_message(self) -> str:
        lines = [o.describe(self.suite_name, self.n_rows) for o in self.outcomes if not o.success]
        where = f" (rows of run {self.checked_run_id})" if self.checked_run_id else ""
        return f"data contract {self.suite_name} on {self.table}{where}:\n  " + "\n  ".join(lines)

    def raise_for_blocking(self) -> None:
        """Raise `ContractViolation` naming each failed blocking expectation and example rows."""
        if not self.passed:
            raise ContractViolation(self)

    def to_markdown(self) -> str:
        status = "passed" if self.success else ("failed (blocking)" if not self.passed else "passed with warnings")
        lines = [
            f"## Data contract `{self.suite_name}` on `{self.table}`: {status}",
            "",
            f"{self.n_rows} rows checked" + (f" from run `{self.checked_run_id}`" if self.checked_run_id else "") + ".",
            "",
            "| # | expectation | columns | severity | result | unexpected | examples |",
            "|---|---|---|---|---|---|---|",
        ]
        for o in self.outcomes:
            result = "error" if o.error_message else ("pass" if o.success else "FAIL")
            examples = o.error_message or "; ".join(json.dumps(e, default=str) for e in o.examples[:3])
            examples = examples.replace("|", "\\|")
            lines.append(
                f"| {o.index} | {o.expectation_type} | {', '.join(o.columns)} | {o.severity} | {result} "
                f"| {'' if o.n_unexpected is None else o.n_unexpected} | {examples} |"
            )
        return "\n".join(lines) + "\n"

    def to_rows(self, checker_run_id: str | None = None) -> pl.DataFrame:
        """Rows for meta.dq_results (one per expectation)."""
        rows = [
            {
                "validation_id": self.validation_id,
                "expectation_index": o.index,
                "suite_name": self.suite_name,
                "table_name": self.table,
                "checked_run_id": self.checked_run_id,
                "checker_run_id": checker_run_id,
                "expectation_type": o.expectation_type,
                "column_names": ",".join(o.columns),
                "kwargs_json": json.dumps(o.kwargs, default=str, sort_keys=True),
                "severity": o.severity,
                "is_blocking": o.is_blocking,
                "success": o.success,
                "n_rows": self.n_rows,
                "n_unexpected": o.n_unexpected,
                "unexpected_examples_json": json.dumps(list(o.examples), default=str) if o.examples else None,
                "error_message": o.error_message,
                "checked_at": self.checked_at,
            }
            for o in self.outcomes
        ]
        return pl.DataFrame(rows, schema=DQ_SCHEMA)


DQ_SCHEMA = {
    "validation_id": pl.String, "expectation_index": pl.Int32, "suite_name": pl.String, "table_name": pl.String,
    "checked_run_id": pl.String, "checker_run_id": pl.String, "expectation_type": pl.String,
    "column_names": pl.String, "kwargs_json": pl.String, "severity": pl.String, "is_blocking": pl.Boolean,
    "success": pl.Boolean, "n_rows": pl.Int64, "n_unexpected": pl.Int64, "unexpected_examples_json": pl.String,
    "error_message": pl.String, "checked_at": pl.Datetime("us"),
}


class ContractViolation(RuntimeError):
    """A blocking expectation failed; the message names it and shows example rows.

    `results` holds every failing ContractResult (one per suite), `result` the first.
    """

    def __init__(self, results: ContractResult | Sequence[ContractResult]) -> None:
        self.results = (results,) if isinstance(results, ContractResult) else tuple(results)
        self.result = self.results[0]
        super().__init__("\n".join(r.failure_message() for r in self.results))


@cache
def _batch_definition():
    """One ephemeral great-expectations context per process (import + set-up ~4 s, once)."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    asset = context.data_sources.add_pandas("potstill").add_dataframe_asset("rows")
    return asset.add_batch_definition_whole_dataframe("all")


def _ge_suite(suite: Suite, indices: list[int]):
    from great_expectations.core.expectation_suite import ExpectationSuite
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    configs = [
        ExpectationConfiguration(type=e.type, kwargs=dict(e.kwargs), severity=e.severity, meta={"potstill_index": i})
        for i, e in enumerate(suite.expectations)
        if i in indices
    ]
    return ExpectationSuite(name=suite.name, expectations=configs)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item") and not isinstance(value, (list, dict, str)):
        try:
            return _json_safe(value.item())
        except (ValueError, AttributeError):
            return str(value)
    return value


def examples_for(frame: pl.DataFrame, positions: list[int], columns: tuple[str, ...], key: tuple[str, ...]) -> tuple[dict, ...]:
    """Key columns and checked columns of the offending rows (at most MAX_EXAMPLES)."""
    cols = [c for c in dict.fromkeys((*key, *columns)) if c in frame.columns]
    picked = [p for p in positions[:MAX_EXAMPLES] if 0 <= p < frame.height]
    if not picked or not cols:
        return ()
    sub = frame.select(cols)[picked]
    return tuple({k: _json_safe(v) for k, v in row.items()} for row in sub.to_dicts())


def validate_frame(frame: pl.DataFrame, suite: Suite, *, checked_run_id: str | None = None) -> ContractResult:
    """Run every expectation of `suite` over `frame`; never raises for failing data.

    An expectation whose column is missing or that cannot be evaluated fails with `error_message`.
    """
    runnable = [i for i, e in enumerate(suite.expectations) if all(c in frame.columns for c in e.columns)]
    by_index: dict[int, Any] = {}
    if runnable and frame.height == 0:  # vacuously true, as great-expectations says too, without its ~0.1 s/expectation
        outcomes = [
            ExpectationOutcome(i, e.type, e.columns, e.kwargs, e.severity, True, n_unexpected=0) if i in runnable
            else ExpectationOutcome(i, e.type, e.columns, e.kwargs, e.severity, False,
                                    error_message=f"column(s) {[c for c in e.columns if c not in frame.columns]} not in the checked rows")
            for i, e in enumerate(suite.expectations)
        ]
        return ContractResult(f"dq-{uuid.uuid4()}", suite.name, suite.table, 0, tuple(outcomes), checked_run_id)
    if runnable:
        pdf = frame.to_pandas()
        with _ge_lock:
            batch = _batch_definition().get_batch(batch_parameters={"dataframe": pdf})
            report = batch.validate(_ge_suite(suite, runnable), result_format={"result_format": "COMPLETE"})
        by_index = {int((r.expectation_config.meta or {}).get("potstill_index", -1)): r for r in report.results}
    outcomes: list[ExpectationOutcome] = []
    for i, exp in enumerate(suite.expectations):
        missing = [c for c in exp.columns if c not in frame.columns]
        if missing:
            outcomes.append(ExpectationOutcome(i, exp.type, exp.columns, exp.kwargs, exp.severity, False,
                                               error_message=f"column(s) {missing} not in the checked rows"))
        else:
            outcomes.append(_outcome(i, exp, by_index.get(i), frame, suite.key))
    return ContractResult(
        validation_id=f"dq-{uuid.uuid4()}",
        suite_name=suite.name,
        table=suite.table,
        n_rows=frame.height,
        outcomes=tuple(outcomes),
        checked_run_id=checked_run_id,
    )


def _outcome(index: int, exp, res, frame: pl.DataFrame, key: tuple[str, ...]) -> ExpectationOutcome:
    if res is None:
        return ExpectationOutcome(index, exp.type, exp.columns, exp.kwargs, exp.severity, False,
                                  error_message="great-expectations returned no result for this expectation")
    info = res.exception_info or {}
    raised = info.get("raised_exception") if isinstance(info, dict) else None
    result = res.result or {}
    if raised or (not res.success and result.get("unexpected_count") is None and "observed_value" not in result):
        message = (info.get("exception_message") or "great-expectations could not evaluate it").splitlines()[0]
        return ExpectationOutcome(index, exp.type, exp.columns, exp.kwargs, exp.severity, False, error_message=message)
    positions = [int(p) for p in (result.get("unexpected_index_list") or []) if isinstance(p, (int,)) or hasattr(p, "__index__")]
    return ExpectationOutcome(
        index=index,
        expectation_type=exp.type,
        columns=exp.columns,
        kwargs=exp.kwargs,
        severity=exp.severity,
        success=bool(res.success),
        n_unexpected=result.get("unexpected_count"),
        examples=() if res.success else examples_for(frame, positions, exp.columns, key),
    )


def merge_results(results: Sequence[ContractResult]) -> ContractResult:
    """One result from the same suite run over disjoint chunks of rows (counts add, examples concatenate).

    Only valid when every key of a uniqueness expectation falls inside one chunk (chunks split by
    a column of the key, e.g. trace_id).
    """
    if not results:
        raise ValueError("merge_results needs at least one result")
    first = results[0]
    if len(results) == 1:
        return first
    merged = []
    for i, outcome in enumerate(first.outcomes):
        parts = [r.outcomes[i] for r in results]
        counts = [p.n_unexpected for p in parts]
        examples = tuple(e for p in parts for e in p.examples)[:MAX_EXAMPLES]
        error = next((p.error_message for p in parts if p.error_message), None)
        merged.append(ExpectationOutcome(
            index=outcome.index, expectation_type=outcome.expectation_type, columns=outcome.columns,
            kwargs=outcome.kwargs, severity=outcome.severity, success=all(p.success for p in parts),
            n_unexpected=None if any(c is None for c in counts) else sum(counts), examples=examples,
            error_message=error,
        ))
    return ContractResult(first.validation_id, first.suite_name, first.table, sum(r.n_rows for r in results),
                          tuple(merged), first.checked_run_id, first.checked_at)
