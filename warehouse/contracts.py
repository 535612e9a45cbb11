"""Run a suite on warehouse rows at a stage boundary: load, validate, check references in SQL,
record to `meta.dq_results` (the flows publish the results as a Prefect artifact).

>>> result = run_contracts(wh, "raw.raw_traces", run_id)      # doctest: +SKIP
>>> result.raise_for_blocking()                               # doctest: +SKIP
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import polars as pl
import pyarrow as pa

from tasks.contracts.runner import (
    ContractResult,
    ExpectationOutcome,
    examples_for,
    validate_frame,
)
from tasks.contracts.suites import ContractError, Suite, load_suite

_IDENT = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$")


def _ident(name: str) -> str:
    if not _IDENT.match(name):
        raise ContractError(f"suite names an invalid SQL identifier {name!r}")
    return name


def table_exists(con, table: str) -> bool:
    schema, name = table.split(".")
    rows = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?", [schema, name]
    ).fetchall()
    return bool(rows[0][0])


def table_columns(con, table: str) -> list[str]:
    schema, name = table.split(".")
    rows = con.execute(
        "select column_name from information_schema.columns where table_schema = ? and table_name = ?"
        " order by ordinal_position",
        [schema, name],
    ).fetchall()
    return [r[0] for r in rows]


def load_rows(
    con, suite: Suite, *, run_id: str | None = None, scope_ids: Sequence[str] | None = None,
    where: dict[str, object] | None = None,
) -> pl.DataFrame:
    """The rows a suite checks: only the columns it reads, restricted by run, scope ids or equality filters."""
    table = _ident(suite.table)
    if not table_exists(con, table):
        raise ContractError(f"contract {suite.name}: table {table} does not exist in this warehouse")
    present = table_columns(con, table)
    cols = [c for c in suite.columns if c in present] or present[:1]
    clauses, params = [], []
    if run_id is not None:
        if not suite.run_id_column:
            raise ContractError(f"contract {suite.name}: {table} has no run id column to filter run {run_id}")
        clauses.append(f"{_ident(suite.run_id_column)} = ?")
        params.append(run_id)
    for col, value in (where or {}).items():
        clauses.append(f"{_ident(col)} = ?")
        params.append(value)
    if scope_ids is not None:
        if not suite.scope_column:
            raise ContractError(f"contract {suite.name}: no scope_column to restrict {table} to given ids")
        con.register("_dq_scope", pa.table({"scope_id": pa.array(list(scope_ids), pa.string())}))
        clauses.append(f"{_ident(suite.scope_column)} in (select scope_id from _dq_scope)")
    select = ", ".join(f'"{c}"' for c in cols)
    sql = f"select {select} from {table}" + (f" where {' and '.join(clauses)}" if clauses else "")
    try:
        return pl.from_arrow(con.sql(sql, params=params).to_arrow_table())  # type: ignore[return-value]
    finally:
        if scope_ids is not None:
            con.unregister("_dq_scope")


def check_references(con, suite: Suite, frame: pl.DataFrame, start_index: int) -> list[ExpectationOutcome]:
    """Referential integrity in SQL: every non-null `column` value exists in `table.ref_column`."""
    outcomes = []
    for offset, ref in enumerate(suite.references):
        index = start_index + offset
        kwargs = {"table": ref.table, "ref_column": ref.ref_column}
        kind = "sql_referential_integrity"
        if ref.column not in frame.columns:
            outcomes.append(ExpectationOutcome(index, kind, (ref.column,), kwargs, ref.severity, False,
                                               error_message=f"column {ref.column!r} not in the checked rows"))
            continue
        if not table_exists(con, _ident(ref.table)):
            outcomes.append(ExpectationOutcome(index, kind, (ref.column,), kwargs, ref.severity, False,
                                               error_message=f"referenced table {ref.table} does not exist"))
            continue
        probe = frame.select(pl.col(ref.column).cast(pl.String).alias("ref_value")).with_row_index("row_pos")
        con.register("_dq_ref", probe.to_arrow())
        try:
            rows = con.execute(
                f"select row_pos from _dq_ref s where s.ref_value is not null and not exists "
                f"(select 1 from {_ident(ref.table)} r where r.{_ident(ref.ref_column)} = s.ref_value) order by row_pos"
            ).fetchall()
        finally:
            con.unregister("_dq_ref")
        positions = [int(r[0]) for r in rows]
        outcomes.append(ExpectationOutcome(
            index=index, expectation_type=kind, columns=(ref.column,), kwargs=kwargs, severity=ref.severity,
            success=not positions, n_unexpected=len(positions),
            examples=examples_for(frame, positions, (ref.column,), suite.key),
        ))
    return outcomes


def record_results(wh, results: Iterable[ContractResult], *, checker_run_id: str | None = None, con=None) -> int:
    frames = [r.to_rows(checker_run_id) for r in results]
    if not frames:
        return 0
    return wh.load("meta.dq_results", pl.concat(frames), key=["validation_id", "expectation_index"], con=con)


def run_contracts(
    wh,
    table: str,
    run_id: str | None = None,
    *,
    frame: pl.DataFrame | None = None,
    scope_ids: Sequence[str] | None = None,
    where: dict[str, object] | None = None,
    checker_run_id: str | None = None,
    record: bool = True,
) -> ContractResult:
    """Validate the rows of `table` (a suite name or table name) written by `run_id` (all rows if None).

    Args:
        frame: check these rows instead of loading them (e.g. a selection before it is inserted).
        scope_ids: restrict to rows whose suite `scope_column` is in these ids.
        where: extra equality filters, e.g. {"dataset_name": "x", "version": 2}.
        checker_run_id: the run doing the check, stored with the results.
    Returns a ContractResult; call `.raise_for_blocking()` to stop on a blocking failure.
    """
    suite = load_suite(table)
    with wh.connect() as con:
        rows = frame if frame is not None else load_rows(con, suite, run_id=run_id, scope_ids=scope_ids, where=where)
        result = validate_frame(rows, suite, checked_run_id=run_id)
        refs = check_references(con, suite, rows, start_index=len(suite.expectations))
    if refs:
        result = ContractResult(result.validation_id, result.suite_name, result.table, result.n_rows,
                                result.outcomes + tuple(refs), result.checked_run_id, result.checked_at)
    if record:
        record_results(wh, [result], checker_run_id=checker_run_id)
    return result


