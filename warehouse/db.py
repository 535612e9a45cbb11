"""The one warehouse helper: connections, migrations, views and bulk loads for the DuckDB file.

Every write is a short-lived connection + transaction so other processes can get in between.
DuckDB allows one writing process per file; a second process gets a clear `WarehouseBusyError`
after a bounded retry. A block of work that reads and writes several times (one shard of a stage)
runs inside `Warehouse.session()`: the file is opened once for the block (opening it costs
~0.1-0.2 s: catalog load, and a checkpoint when the last connection closes) and every connection
inside is a cheap cursor on it.

>>> wh = Warehouse(":memory:")          # doctest: +SKIP
>>> wh.load("raw.raw_prompts", df, key=["prompt_id"])   # doctest: +SKIP
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import duckdb
import polars as pl
import pyarrow as pa

HERE = Path(__file__).resolve().parent
MIGRATIONS_DIR = HERE / "migrations"
VIEWS_DIR = HERE / "views"
QUERIES_DIR = HERE / "queries"
VIEW_LAYERS = ("staging", "curated", "meta")
DEFAULT_PATH = Path.home() / ".local" / "share" / "potstill" / "warehouse.duckdb"
MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_LOCK_PID = re.compile(r"PID (\d+)")
T = TypeVar("T")
_INCLUDE = re.compile(r"\{([a-z_]+)\}")

_process_locks: dict[str, threading.RLock] = {}
_sessions = threading.local()  # per thread: {(file, read_only): the open connection of a `session()`}
_migrated: set[str] = set()
_registry_lock = threading.Lock()


class WarehouseError(RuntimeError):
    """Base class of warehouse errors; the message says what to do."""


class WarehouseBusyError(WarehouseError):
    """Another process holds the DuckDB write lock."""


class MigrationError(WarehouseError):
    """A migration is malformed, failed, or was edited after it was applied."""


def default_path() -> Path:
    """`POTSTILL_WAREHOUSE` if set, else ~/.local/share/potstill/warehouse.duckdb (outside the source tree)."""
    env = os.environ.get("POTSTILL_WAREHOUSE")
    return Path(env).expanduser() if env else DEFAULT_PATH


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Migrations in version order; a badly named file or a repeated version is an error."""
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = MIGRATION_NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path}: migration files are named NNNN_<verb>_<object>.sql")
        found.append(Migration(int(match.group(1)), path.name, path.read_text()))
    versions = [m.version for m in found]
    dupes = sorted({v for v in versions if versions.count(v) > 1})
    if dupes:
        raise MigrationError(f"{directory}: migration versions used twice: {dupes}")
    return found


@functools.cache
def query_sql(name: str) -> str:
    """The text of the query file `warehouse/queries/<name>.sql` (e.g. `select/candidates`).

    Every query the stages run lives in such a file; this is the one place that reads them.
    `{name}` placeholders are replaced by the text of `warehouse/queries/<dir>/<name>.sql`
    without its comment lines (a shared CTE body, e.g. `{routed_traces}` in verify's queries).
    """
    path = QUERIES_DIR / f"{name}.sql"
    if not path.is_file():
        raise WarehouseError(f"no query file {path}")
    text = path.read_text()
    folder = name.rpartition("/")[0]
    for part in sorted(set(_INCLUDE.findall(text))):
        shared = query_sql(f"{folder}/{part}" if folder else part)
        body = "\n".join(line for line in shared.splitlines() if not line.lstrip().startswith("--"))
        text = text.replace("{" + part + "}", body)
    return text


class Warehouse:
    """Owns every connection to one DuckDB file.

    Args:
        path: the DuckDB file, ":memory:" for tests; default `default_path()`.
        busy_timeout_s: how long to retry when another process holds the write lock.
        read_only: open read-only (a process that only queries).
        config: DuckDB settings for every connection (e.g. `enable_external_access=False`).
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        busy_timeout_s: float = 10.0,
        read_only: bool = False,
        migrations_dir: Path = MIGRATIONS_DIR,
        views_dir: Path = VIEWS_DIR,
        config: dict | None = None,
    ) -> None:
        self.path = str(path) if path is not None else str(default_path())
        self.config = dict(config or {})
        self.busy_timeout_s = busy_timeout_s
        self.read_only = read_only
        self.migrations_dir = migrations_dir
        self.views_dir = views_dir
        self._memory_con: duckdb.DuckDBPyConnection | None = None
        key = self.path if self.path == ":memory:" else os.path.realpath(self.path)
        self._session_key = (key if self.path != ":memory:" else str(id(self)), read_only)
        with _registry_lock:
            self._lock = _process_locks.setdefault(key if self.path != ":memory:" else str(id(self)), threading.RLock())

    # -- connections ---------------------------------------------------------------------------
    def _connect_once(self) -> duckdb.DuckDBPyConnection:
        if self.path == ":memory:":
            if self._memory_con is None:
                self._memory_con = duckdb.connect(":memory:")
            return self._memory_con.cursor()
        if not self.read_only:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        elif not Path(self.path).exists():
            raise WarehouseError(f"no warehouse at {self.path}; run `potstill init` or point --warehouse elsewhere")
        return duckdb.connect(self.path, read_only=self.read_only, config=self.config)

    def _connect(self) -> duckdb.DuckDBPyConnection:
        deadline = time.monotonic() + self.busy_timeout_s
        delay = 0.05
        while True:
            try:
                return self._connect_once()
            except duckdb.IOException as exc:
                message = str(exc)
                if "lock" not in message.lower():
                    raise WarehouseError(f"cannot open warehouse {self.path}: {message.splitlines()[0]}") from exc
                if time.monotonic() >= deadline:
                    pid = _LOCK_PID.search(message)
                    holder = f"PID {pid.group(1)}" if pid else "another process"
                    raise WarehouseBusyError(
                        f"warehouse is busy: held by {holder}; retry or point --warehouse elsewhere ({self.path})"
                    ) from exc
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A short-lived connection (migrated on first use in this process); closed on exit.

        Inside `session()` (same thread) it is a cursor on the session's open connection: its own
        transaction, no reopening of the file.
        """
        self.ensure()
        with self._lock:
            held = self._held()
            con = held.cursor() if held is not None else self._connect()
            try:
                yield con
            finally:
                con.close()

    def _held(self) -> duckdb.DuckDBPyConnection | None:
        return getattr(_sessions, "cons", {}).get(self._session_key)

    @contextmanager
    def session(self) -> Iterator[Warehouse]:
        """Keep the file open for a block of work (e.g. one shard): every `connect`, `transaction`,
        `query` and `load` inside it, in this thread, on any `Warehouse` of this file, reuses one open
        connection. Nested sessions are one session. The write lock is held only while a connection
        is in use, as without a session; other processes can open the file once it ends.

        >>> with wh.session():                     # doctest: +SKIP
        ...     rows = wh.query("select ...")
        ...     wh.load("raw.raw_scores", scores, key=[...])
        """
        if self._held() is not None or self.path == ":memory:":
            yield self
            return
        self.ensure()
        if not hasattr(_sessions, "cons"):
            _sessions.cons = {}
        with self._lock:
            _sessions.cons[self._session_key] = self._connect()
        try:
            yield self
        finally:
            with self._lock:
                _sessions.cons.pop(self._session_key).close()

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One write transaction: committed on success, rolled back on any error."""
        if self.read_only:
            raise WarehouseError(f"warehouse {self.path} was opened read-only")
        with self.connect() as con:
            con.execute("begin transaction")
            try:
                yield con
            except BaseException:
                try:
                    con.execute("rollback")
                except duckdb.Error:  # an aborted transaction (e.g. disk full) may refuse the rollback
                    pass
                raise
            try:
                con.execute("commit")
            except duckdb.Error as exc:
                raise _translate_write_error(exc, self.path) from exc

    # -- schema ----------------------------------------------------------------------------------
    def ensure(self) -> None:
        """Apply pending migrations and re-create views once per process and file."""
        key = self.path if self.path != ":memory:" else str(id(self))
        if key in _migrated or self.read_only:
            return
        with self._lock:
            if key in _migrated:
                return
            self.migrate()
            _migrated.add(key)
            self._mark_abandoned()

    def _mark_abandoned(self) -> None:
        """Runs whose process died stop saying `running` (once per process and file, after migrations)."""
        from warehouse.runs import mark_abandoned

        try:
            mark_abandoned(self)
        except WarehouseError:  # busy or read-only elsewhere: the next open tries again
            pass

    def migrate(self) -> list[str]:
        """Apply pending migrations in order, each in its own transaction; returns names applied.

        Raises MigrationError when an applied migration's file changed (forward-only).
        """
        migrations = discover_migrations(self.migrations_dir)
        applied_now: list[str] = []
        with self._lock:
            con = self._connect()
            try:
                con.execute("create schema if not exists meta")
                con.execute(
                    "create table if not exists meta.schema_migrations ("
                    " version integer primary key, name varchar not null, checksum varchar not null,"
                    " applied_at timestamp not null default current_timestamp)"
                )
                applied = {
                    row[0]: (row[1], row[2])
                    for row in con.execute("select version, name, checksum from meta.schema_migrations").fetchall()
                }
                for migration in migrations:
                    if migration.version in applied:
                        _, checksum = applied[migration.version]
                        if checksum != migration.checksum:
                            raise MigrationError(
                                f"migration {migration.name} was edited after it was applied to {self.path} "
                                f"(checksum {checksum[:12]} != {migration.checksum[:12]}); migrations are "
                                "forward-only: restore the file and add a new migration instead"
                            )
                        continue
                    con.execute("begin transaction")
                    try:
                        con.execute(migration.sql)
                        con.execute(
                            "insert into meta.schema_migrations (version, name, checksum) values (?, ?, ?)",
                            [migration.version, migration.name, migration.checksum],
                        )
                        con.execute("commit")
                    except duckdb.Error as exc:
                        con.execute("rollback")
                        raise MigrationError(f"migration {migration.name} failed: {exc}") from exc
                    applied_now.append(migration.name)
                try:
                    self._create_views(con)
                except duckdb.Error as exc:  # e.g. disk full: say so instead of a raw DuckDB error
                    raise _translate_write_error(exc, self.path, "views") from exc
            finally:
                con.close()
        return applied_now

    def _create_views(self, con: duckdb.DuckDBPyConnection) -> None:
        """Re-create every view from its file; views that depend on later ones are retried."""
        pending = [p for layer in VIEW_LAYERS for p in sorted((self.views_dir / layer).glob("*.sql"))]
        while pending:
            failed: list[tuple[Path, Exception]] = []
            for path in pending:
                try:
                    con.execute(path.read_text())
                except duckdb.CatalogException as exc:
                    failed.append((path, exc))
            if len(failed) == len(pending):
                path, exc = failed[0]
                raise MigrationError(f"view {path.relative_to(self.views_dir)} failed: {exc}")
            pending = [p for p, _ in failed]

    def refresh_views(self) -> None:
        with self.connect() as con:
            self._create_views(con)

    # -- reads -----------------------------------------------------------------------------------
    def query(self, sql: str, params: Sequence | dict | None = None) -> pl.DataFrame:
        """Run a query and return a polars DataFrame (via Arrow)."""
        with self.connect() as con:
            rel = con.sql(sql, params=params)
            if rel is None:  # a statement that returns nothing
                return pl.DataFrame()
            return pl.from_arrow(rel.to_arrow_table())  # type: ignore[return-value]

    def run_file(self, name: str, params: Sequence | dict | None = None) -> pl.DataFrame:
        """Run the query file `warehouse/queries/<name>.sql` (see `query_sql`) and return its rows."""
        return self.query(query_sql(name), params)

    def scalar_file(self, name: str, params: Sequence | dict | None = None):
        """The first value of the query file `warehouse/queries/<name>.sql`."""
        return self.scalar(query_sql(name), params)

    def execute_file(self, name: str, params: Sequence | dict | None = None) -> None:
        """Run the statement file `warehouse/queries/<name>.sql` in one write transaction."""
        self.execute(query_sql(name), params)

    def scalar(self, sql: str, params: Sequence | dict | None = None):
        with self.connect() as con:
            row = con.execute(sql, params).fetchone()
            return None if row is None else row[0]

    def execute(self, sql: str, params: Sequence | dict | None = None) -> None:
        with self.transaction() as con:
            con.execute(sql, params)

    def has_table(self, name: str) -> bool:
        """Whether the table or view `schema.name` exists."""
        schema, table = name.split(".")
        with self.connect() as con:
            row = con.execute(
                "select count(*) from information_schema.tables where table_schema = ? and table_name = ?", [schema, table]
            ).fetchone()
        return bool(row and row[0])

    def count_rows(self, table: str) -> int:
        """Rows in `schema.table` (a name the warehouse listed, quoted here)."""
        schema, name = table.split(".")
        return int(self.scalar(f"select count(*) from {_q(schema)}.{_q(name)}"))

    def columns(self, table: str) -> list[str]:
        schema, name = table.split(".")
        with self.connect() as con:
            rows = con.execute(
                "select column_name from information_schema.columns where table_schema = ? and table_name = ?"
                " order by ordinal_position",
                [schema, name],
            ).fetchall()
        if not rows:
            raise WarehouseError(f"no table {table} in {self.path}")
        return [r[0] for r in rows]

    # -- bulk loads ------------------------------------------------------------------------------
    def load(
        self,
        table: str,
        data: pl.DataFrame | pa.Table,
        *,
        key: Sequence[str] | None = None,
        mode: str = "ignore",
        con: duckdb.DuckDBPyConnection | None = None,
    ) -> int:
        """Bulk-load a DataFrame/Arrow table into `table` by column name; returns rows inserted.

        With `key`, the load is idempotent: `mode="ignore"` skips rows whose key exists (raw tables
        are append-only), `mode="replace"` deletes and re-inserts them. Rows repeated within `data`
        keep their first occurrence. Pass `con` to take part in an open transaction.
        """
        if mode not in ("ignore", "replace", "append"):
            raise ValueError(f"mode must be ignore, replace or append, not {mode!r}")
        arrow = data.to_arrow() if isinstance(data, pl.DataFrame) else data
        if arrow.num_rows == 0:
            return 0
        if con is None:
            with self.transaction() as own:
                return self.load(table, arrow, key=key, mode=mode, con=own)
        view = f"_incoming_{threading.get_ident()}"
        con.register(view, arrow)
        try:
            cols = ", ".join(_q(c) for c in arrow.column_names)
            if key:
                keys = ", ".join(_q(k) for k in key)
                match = " and ".join(f"t.{_q(k)} is not distinct from s.{_q(k)}" for k in key)
                source = f"(select * from {view} qualify row_number() over (partition by {keys}) = 1)"
                if mode == "replace":
                    con.execute(f"delete from {table} t where exists (select 1 from {source} s where {match})")
                    select = f"select {cols} from {source} s"
                elif mode == "ignore":
                    select = f"select {cols} from {source} s where not exists (select 1 from {table} t where {match})"
                else:
                    select = f"select {cols} from {view}"
            else:
                select = f"select {cols} from {view}"
            inserted = con.execute(f"insert into {table} by name {select}").fetchone()
            return int(inserted[0]) if inserted else 0
        except duckdb.Error as exc:
            raise _translate_write_error(exc, self.path, table) from exc
        finally:
            try:
                con.unregister(view)
            except duckdb.Error:  # the transaction already failed; its error is the one to report
                pass


def one_connection(fn: Callable[..., T]) -> Callable[..., T]:
    """Decorate a shard function whose first argument is the warehouse path: it runs inside that
    warehouse's `session()`, so its reads and writes share one open connection.

    >>> @task(name="score-shard")              # doctest: +SKIP
    ... @one_connection
    ... def score_task(warehouse: str, ...): ...
    """

    @functools.wraps(fn)
    def wrapper(warehouse, *args, **kwargs):
        with Warehouse(warehouse).session():
            return fn(warehouse, *args, **kwargs)

    return wrapper


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _translate_write_error(exc: duckdb.Error, path: str, table: str | None = None) -> WarehouseError:
    message = str(exc).splitlines()[0]
    where = f" into {table}" if table else ""
    if "No space left" in message or "disk is full" in message.lower() or "could not write" in message.lower():
        return WarehouseError(f"warehouse {path}: disk full while writing{where}; this transaction was rolled back ({message})")
    return WarehouseError(f"warehouse {path}: write{where} failed: {message}")
