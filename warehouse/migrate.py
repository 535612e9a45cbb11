"""`potstill migrate-warehouse OLD.duckdb`: copy a single-file warehouse into a lake.

The lake is brought to the current schema first; the old file must not carry migrations the
lake lacks, nor an applied migration whose file changed. Every table is copied by column name in
one lake transaction (all or nothing), then the per-dataset views the old file had are re-created.
A lake that already holds rows in a table being copied is refused (a copy is not a merge).
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from warehouse import lake as _lake
from warehouse.db import Warehouse, WarehouseError, _q, discover_migrations

SKIP = {("meta", "schema_migrations"), ("meta", "view_sets"), ("curated", "cur_dataset_snapshots")}


def copy_into_lake(source: str | Path, target: str) -> dict[str, int]:
    """Copy every table of the single-file warehouse `source` into the lake `target`; rows per table."""
    source = Path(source).expanduser().resolve()
    if not source.is_file():
        raise WarehouseError(f"{source}: no such single-file warehouse")
    wh = Warehouse(target)
    if wh.lake is None:
        raise WarehouseError(f"{target}: the target must be a lake (a folder or a postgresql:// catalog), not a file")
    wh.ensure()
    try:
        old = duckdb.connect(str(source), read_only=True)
    except duckdb.Error as exc:
        raise WarehouseError(f"{source}: cannot open ({str(exc).splitlines()[0]}); a file written by a newer DuckDB "
                             f"than {duckdb.__version__} must be exported with that DuckDB first") from exc
    try:
        _check_migrations(old, source)
        tables = old.execute(
            "select schema_name, table_name from duckdb_tables() where database_name = current_database() "
            "and not internal order by schema_name, table_name").fetchall()
        views = old.execute(
            "select schema_name, view_name, sql from duckdb_views() where database_name = current_database() "
            "and not internal and schema_name in ('curated', 'staging', 'raw', 'meta')").fetchall()
    finally:
        old.close()
    own_views = {f"{p.parent.name}.{p.stem}" for p in wh._view_files()}
    extra_views = [(s, n, sql) for s, n, sql in views if f"{s}.{n}" not in own_views]

    def copy(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
        counts: dict[str, int] = {}
        for schema, table in tables:
            if (schema, table) in SKIP:
                continue
            name = f"{_q(schema)}.{_q(table)}"
            if not wh.has_table_in(con, f"{schema}.{table}"):
                raise WarehouseError(f"{source}: table {schema}.{table} is unknown to the lake's schema; "
                                     "update potstill before migrating")
            if con.execute(f"select count(*) from {name}").fetchone()[0]:
                raise WarehouseError(f"{target}: {schema}.{table} already has rows; migrate into an empty lake")
            have = {r[0] for r in con.execute(
                "select column_name from information_schema.columns where table_catalog = ? "
                "and table_schema = ? and table_name = ?", [_lake.CATALOG_ALIAS, schema, table]).fetchall()}
            cols = [r[0] for r in con.execute(
                "select column_name from information_schema.columns where table_catalog = 'old_warehouse' "
                "and table_schema = ? and table_name = ? order by ordinal_position", [schema, table]).fetchall()]
            missing = [c for c in cols if c not in have]
            if missing:
                raise WarehouseError(f"{source}: {schema}.{table} has columns the lake lacks: {missing}")
            listed = ", ".join(_q(c) for c in cols)
            row = con.execute(f"insert into {name} ({listed}) select {listed} "
                              f"from old_warehouse.{name}").fetchone()
            counts[f"{schema}.{table}"] = int(row[0]) if row else 0
        for _schema, _view, sql in extra_views:
            con.execute(sql.replace("CREATE VIEW", "CREATE OR REPLACE VIEW", 1))
        return counts

    with wh.connect() as con:  # attached to the process's lake session, so the write below sees it
        con.execute(f"attach {_lake._lit(str(source))} as old_warehouse (read_only)")
    try:
        return wh.write(copy, retry_s=0)
    finally:
        with wh.connect() as con:
            con.execute("detach database if exists old_warehouse")


def _check_migrations(old: duckdb.DuckDBPyConnection, source: Path) -> None:
    try:
        applied = old.execute("select version, name, checksum from meta.schema_migrations").fetchall()
    except duckdb.CatalogException as exc:
        raise WarehouseError(f"{source}: not a potstill warehouse (no meta.schema_migrations)") from exc
    known = {m.version: m for m in discover_migrations()}
    for version, name, checksum in applied:
        migration = known.get(version)
        if migration is None:
            raise WarehouseError(f"{source}: migration {name} is unknown here; update potstill before migrating")
        if not migration.matches(checksum):
            raise WarehouseError(f"{source}: migration {name} differs from this potstill's file (checksum)")
