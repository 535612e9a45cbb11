"""Expectation suites as files: `tasks/contracts/suites/<name>.json`.

Each file is a great-expectations suite (`name`, `expectations` with `type`, `kwargs`, `severity`)
plus a `meta.potstill` block the runner reads:

- `table`: the warehouse table or view the suite checks;
- `key`: the columns that name a row in failure examples;
- `run_id_column`: the column that says which stage run wrote a row (null: none);
- `scope_column` / `scope`: the column restricted when a caller checks only some rows
  (`scope="trace_ids"` → filtered by trace ids, `"prompt_ids"` → by prompt ids);
- `references`: referential integrity, checked in SQL (`column` must exist in `table.ref_column`).

Severity `critical` is *blocking* (publishing stops); `warning` and `info` are recorded only.

>>> load_suite("raw_traces").table
'raw.raw_traces'
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

SUITES_DIR = Path(__file__).resolve().parent / "suites"
SEVERITIES = ("critical", "warning", "info")
BLOCKING_SEVERITY = "critical"


class ContractError(RuntimeError):
    """A suite file is malformed, or a contract cannot be run (unknown table, missing table)."""


@dataclass(frozen=True)
class Reference:
    """`column` of the checked rows must exist in `table.ref_column` (checked in SQL)."""

    column: str
    table: str
    ref_column: str
    severity: str = BLOCKING_SEVERITY


@dataclass(frozen=True)
class Expectation:
    type: str
    kwargs: dict[str, Any]
    severity: str = BLOCKING_SEVERITY

    @property
    def is_blocking(self) -> bool:
        return self.severity == BLOCKING_SEVERITY

    @property
    def columns(self) -> tuple[str, ...]:
        kw = self.kwargs
        if "column" in kw:
            return (kw["column"],)
        if "column_list" in kw:
            return tuple(kw["column_list"])
        if "column_A" in kw:
            return (kw["column_A"], kw["column_B"])
        return ()


@dataclass(frozen=True)
class Suite:
    name: str
    table: str
    key: tuple[str, ...]
    run_id_column: str | None
    scope_column: str | None
    scope: str | None
    expectations: tuple[Expectation, ...]
    references: tuple[Reference, ...] = ()
    path: Path | None = field(default=None, compare=False)

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column the suite reads, key first (what the runner loads)."""
        out: list[str] = list(self.key)
        for exp in self.expectations:
            out.extend(exp.columns)
        out.extend(ref.column for ref in self.references)
        if self.scope_column:
            out.append(self.scope_column)
        return tuple(dict.fromkeys(out))


def _parse(path: Path) -> Suite:
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ContractError(f"{path}: cannot read suite: {exc}") from exc
    meta = (raw.get("meta") or {}).get("potstill")
    if not isinstance(meta, dict) or "table" not in meta:
        raise ContractError(f"{path}: field 'meta.potstill.table' is missing")
    expectations = []
    for i, item in enumerate(raw.get("expectations") or []):
        if "type" not in item or not str(item["type"]).startswith("expect_"):
            raise ContractError(f"{path}: expectations[{i}]: field 'type' must name a great-expectations expectation")
        severity = item.get("severity", BLOCKING_SEVERITY)
        if severity not in SEVERITIES:
            raise ContractError(f"{path}: expectations[{i}]: severity {severity!r} is not one of {SEVERITIES}")
        expectations.append(Expectation(item["type"], dict(item.get("kwargs") or {}), severity))
    references = []
    for i, ref in enumerate(meta.get("references") or []):
        missing = {"column", "table", "ref_column"} - set(ref)
        if missing:
            raise ContractError(f"{path}: meta.potstill.references[{i}]: missing {sorted(missing)}")
        references.append(Reference(ref["column"], ref["table"], ref["ref_column"], ref.get("severity", BLOCKING_SEVERITY)))
    name = raw.get("name") or path.stem
    if name != path.stem:
        raise ContractError(f"{path}: suite name {name!r} must equal the file name {path.stem!r}")
    return Suite(
        name=name,
        table=meta["table"],
        key=tuple(meta.get("key") or ()),
        run_id_column=meta.get("run_id_column"),
        scope_column=meta.get("scope_column"),
        scope=meta.get("scope"),
        expectations=tuple(expectations),
        references=tuple(references),
        path=path,
    )


@cache
def all_suites(directory: Path = SUITES_DIR) -> dict[str, Suite]:
    """Every suite in `directory`, by name."""
    return {p.stem: _parse(p) for p in sorted(directory.glob("*.json"))}


def load_suite(name_or_table: str, directory: Path = SUITES_DIR) -> Suite:
    """A suite by its name (`raw_traces`) or by the table it checks (`raw.raw_traces`)."""
    suites = all_suites(directory)
    if name_or_table in suites:
        return suites[name_or_table]
    for suite in suites.values():
        if suite.table == name_or_table:
            return suite
    known = ", ".join(sorted(suites))
    raise ContractError(f"no expectation suite for {name_or_table!r} in {directory} (known: {known})")
