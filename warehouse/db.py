"""The one warehouse helper: connections, migrations, views and bulk loads.

The warehouse is a DuckLake (see `warehouse/lake.py`): a folder with a SQLite catalog and Parquet
data (the default, nothing to start), or a PostgreSQL catalog (`postgresql://...`) with a data path
on shared storage. Readers never block writers; writers of one lake take turns per transaction
(a lock file next to a SQLite catalog, a PostgreSQL advisory lock for a PostgreSQL catalog) and
retry DuckLake commit conflicts with backoff.

A path ending in `.duckdb` (or ":memory:") is a single DuckDB file, the earlier format: it keeps
working, and `potstill migrate-warehouse OLD.duckdb` copies it into a lake. DuckDB allows one
writing process per file; a second process gets a clear `WarehouseBusyError` after a bounded retry.

A block of work that reads and writes several times (one shard of a stage) runs inside
`Warehouse.session()`: a single file is opened once for the block (opening it costs ~0.1-0.2 s:
catalog load, and a checkpoint when the last connection closes) and every connection inside is a
cheap cursor on it. A lake keeps one attached DuckDB instance per process anyway, so there every
connection is already a cursor on it.

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
import numpy as np
import polars as pl
import pyarrow as pa

from warehouse import lake as _lake

HERE = Path(__file__).resolve().parent
MIGRATIONS_DIR = HERE / "migrations"
VIEWS_DIR = HERE / "views"
QUERIES_DIR = HERE / "queries"
VIEW_LAYERS = ("staging", "curated", "meta")
DEFAULT_PATH = Path.home() / ".local" / "share" / "potstill" / "lake"
MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_LOCK_PID = re.compile(r"PID (\d+)")
T = TypeVar("T")
_INCLUDE = re.compile(r"\{([a-z_]+)\}")

_process_locks: dict[str, threading.RLock] = {}
_sessions = threading.local()  # per thread: {(file, read_only): the open connection of a `session()`}
_migrated: set[str] = set()
_registry_lock = threading.Lock()
_write_depth: dict[str, int] = {}  # lake key -> nesting of writes holding the writers' lock in this process
_instances: dict[tuple, duckdb.DuckDBPyConnection] = {}  # (pid, lake, read_only, snapshot) -> attached session
_CONFLICT_RETRY_S = 120.0
_ROW = "__potstill_row"  # row positions of a keyed load's incoming data


class WarehouseError(RuntimeError):
    """Base class of warehouse errors; the message says what to do."""


class WarehouseBusyError(WarehouseError):
    """Another process holds the DuckDB write lock."""


class MigrationError(WarehouseError):
    """A migration is malformed, failed, or was edited after it was applied."""


def default_path() -> str:
    """`POTSTILL_WAREHOUSE` if set, else the lake folder ~/.local/share/potstill/lake (outside the source tree)."""
    env = os.environ.get("POTSTILL_WAREHOUSE")
    if env:
        return env if _lake.is_dsn(env) else str(Path(env).expanduser())
    return str(DEFAULT_PATH)


# Checksums a migration had before a comment-only edit (their statements are unchanged): warehouses
# migrated earlier recorded these. 0040/0041: a reference to an internal notes file left the comments.
SUPERSEDED_CHECKSUMS: dict[int, tuple[str, ...]] = {
    40: ("9800b6754cc9503fbbd1532951f795731a84d6d6de1f8652233b0602720f3cb2",),
    41: ("32c4de8ec86b1ef1c1d3f4d3bb46cbd0dc7c12a18c2822f776008838667a0181",),
}


def sql_statements_text(sql: str) -> str:
    """The SQL without its comments, whitespace runs outside quotes collapsed to one space.

    What a migration's checksum covers: editing a comment or re-indenting does not change what it
    does; any change to a statement, a string or a quoted name does.
    """
    parts: list[str] = []
    i, n, plain = 0, len(sql), []
    while i < n:
        c = sql[i]
        if c in "'\"":
            j = i + 1
            while j < n and not (sql[j] == c and not sql.startswith(c * 2, j)):
                j += 2 if sql.startswith(c * 2, j) else 1
            parts.append(re.sub(r"\s+", " ", "".join(plain)))
            parts.append(sql[i : j + 1])
            plain, i = [], j + 1
        elif sql.startswith("--", i):
            j = sql.find("\n", i)
            plain.append(" ")
            i = n if j < 0 else j
        elif sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            plain.append(" ")
            i = n if j < 0 else j + 2
        else:
            plain.append(c)
            i += 1
    parts.append(re.sub(r"\s+", " ", "".join(plain)))
    return "".join(parts).strip()


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """sha256 of the statements (comments and layout left out, `sql_statements_text`)."""
        return hashlib.sha256(sql_statements_text(self.sql).encode()).hexdigest()

    def matches(self, recorded: str) -> bool:
        """Whether a checksum recorded when this migration was applied still describes this file.

        Accepts this file's checksum, the whole-file checksum earlier versions recorded, and the
        checksums of comment-only edits (`SUPERSEDED_CHECKSUMS`).
        """
        return recorded in (self.checksum, hashlib.sha256(self.sql.encode()).hexdigest()) or recorded in (
            SUPERSEDED_CHECKSUMS.get(self.version, ())
        )


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
    """Owns every connection to one warehouse: a DuckLake, or a single DuckDB file.

    Args:
        path: a lake folder, a `postgresql://...?data_path=...` catalog, a `*.duckdb` file, or
            ":memory:" for tests; default `default_path()`.
        busy_timeout_s: single file: how long to retry when another process holds the write lock.
        read_only: open read-only (a process that only queries).
        snapshot: a lake read as of this snapshot id (read-only; see `potstill sql --at`).
        writer_timeout_s: lake: how long a writer waits for the writers before it (readers never wait).
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
        snapshot: int | None = None,
        writer_timeout_s: float = 600.0,
        config: dict | None = None,
    ) -> None:
        self.path = str(path) if path is not None else str(default_path())
        self.config = dict(config or {})
        self.busy_timeout_s = busy_timeout_s
        self.writer_timeout_s = writer_timeout_s
        self.migrations_dir = migrations_dir
        self.views_dir = views_dir
        self._memory_con: duckdb.DuckDBPyConnection | None = None
        self.lake: _lake.LakeLocation | None = None
        if _lake.is_lake(self.path):
            try:
                self.lake = _lake.LakeLocation.parse(self.path)
            except _lake.LakeError as exc:
                raise WarehouseError(str(exc)) from exc
        elif snapshot is not None:
            raise WarehouseError(f"{self.path}: reading as of a snapshot needs a lake, not a single DuckDB file")
        self.snapshot = snapshot
        self.read_only = read_only or snapshot is not None
        self.last_snapshot: int | None = None  # lake: the snapshot the last `transaction()` of this object committed
        if self.lake is not None:
            key = self.lake.catalog
        else:
            key = self.path if self.path == ":memory:" else os.path.realpath(self.path)
        self._key = key
        self._session_key = (key if self.path != ":memory:" else str(id(self)), self.read_only)
        with _registry_lock:
            self._lock = _process_locks.setdefault(key if self.path != ":memory:" else str(id(self)), threading.RLock())

    # -- connections ---------------------------------------------------------------------------
    @property
    def is_lake(self) -> bool:
        return self.lake is not None

    @property
    def home(self) -> Path:
        """The local folder that reports, exports and checkpoints go under: the folder holding the
        DuckDB file or the lake folder; for a PostgreSQL catalog the parent of a local data path."""
        if self.path == ":memory:":
            return Path(DEFAULT_PATH).parent
        if self.lake is None:
            return Path(self.path).expanduser().resolve().parent
        if self.lake.root is not None:
            return self.lake.root.parent
        if "://" not in self.lake.data_path:
            return Path(self.lake.data_path).parent
        return Path(DEFAULT_PATH).parent

    def attach_statements(self, *, read_only: bool = True, snapshot: int | None = None) -> list[str]:
        """The statements that open this lake in a plain DuckDB session (duckdb CLI, a notebook)."""
        if self.lake is None:
            return [f"ATTACH {_lit(os.path.realpath(self.path))} AS warehouse (READ_ONLY);", "USE warehouse;"]
        return self.lake.attach_statements(read_only=read_only, snapshot=snapshot)

    def exists(self) -> bool:
        """Whether the warehouse was created (`potstill init` or a first write): the DuckDB file, the
        lake's SQLite catalog, or DuckLake's tables in its PostgreSQL database."""
        if self.path == ":memory:":
            return True
        if self.lake is None:
            return Path(self.path).exists()
        try:
            return self.lake.exists()
        except _lake.LakeError as exc:
            raise WarehouseError(str(exc)) from exc

    def _lake_session(self, *, begin: bool = False) -> duckdb.DuckDBPyConnection:
        assert self.lake is not None
        key = (os.getpid(), self.lake.catalog, self.lake.data_path, self.read_only, self.snapshot,
               tuple(sorted((k, repr(v)) for k, v in self.config.items())))
        with _registry_lock:
            session = _instances.get(key)
            if session is None:
                if self.read_only and not self.exists():
                    raise WarehouseError(f"no warehouse at {self.path}; run `potstill init` or point --warehouse elsewhere")
                try:
                    session = _lake.open_instance(self.lake, read_only=self.read_only, snapshot=self.snapshot,
                                                  config=self.config)
                except _lake.LakeError as exc:
                    raise WarehouseError(str(exc)) from exc
                _instances[key] = session
        cursor = session.cursor()
        # `use` looks the catalog up, which DuckLake does in a transaction: on its own (autocommit)
        # that is a catalog read of its own (~2-3 ms); in the transaction of a write it is part of
        # the one catalog snapshot that transaction reads anyway, so `begin` comes first
        statements = [] if self.config.get("lock_configuration") else ["set enable_progress_bar = false"]
        statements += ["begin transaction"] if begin else []
        cursor.execute("; ".join([*statements, f"use {_lake.CATALOG_ALIAS}"]))
        return cursor

    def _connect_once(self) -> duckdb.DuckDBPyConnection:
        if self.lake is not None:
            return self._lake_session()
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
    def connect(self, *, begin: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A short-lived connection (migrated on first use in this process); closed on exit.

        Inside `session()` (same thread) it is a cursor on the session's open connection: its own
        transaction, no reopening of the file. With `begin` it comes inside a transaction begun.
        """
        self.ensure()
        with self._lock:
            held = self._held()
            if held is not None:
                con = held.cursor()
            elif begin and self.lake is not None:
                con = self._lake_session(begin=True)  # begun before its `use` (see `_lake_session`)
                begin = False
            else:
                con = self._connect()
            try:
                if begin:
                    con.execute("begin transaction")
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
        if self._held() is not None or self.path == ":memory:" or self.lake is not None:
            yield self  # a lake's connections are already cursors on one instance per process
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
    def _writer_turn(self) -> Iterator[None]:
        """Lake: hold the writers' lock for the outermost write of this process (re-entrant)."""
        if self.lake is None:
            yield
            return
        with self._lock:
            if _write_depth.get(self._key):
                _write_depth[self._key] += 1
                try:
                    yield
                finally:
                    _write_depth[self._key] -= 1
                return
            try:
                turn = _lake.write_lock(self.lake, self.writer_timeout_s)
                turn.__enter__()
            except TimeoutError as exc:
                raise WarehouseBusyError(f"warehouse {self.path}: {exc}; retry later") from exc
            except _lake.LakeError as exc:
                raise WarehouseError(str(exc)) from exc
            _write_depth[self._key] = 1
            try:
                yield
            finally:
                _write_depth[self._key] = 0
                turn.__exit__(None, None, None)

    def _current_snapshot(self, con: duckdb.DuckDBPyConnection) -> int | None:
        if self.lake is None:
            return None
        row = con.execute(f"select id from {_lake.CATALOG_ALIAS}.current_snapshot()").fetchone()
        return None if row is None else int(row[0])

    @contextmanager
    def transaction(self, *, record_snapshot: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
        """One write transaction: committed on success, rolled back on any error.

        On a lake, writers of the lake take turns for the transaction and, with `record_snapshot`,
        `last_snapshot` is the snapshot it committed (one catalog query after the commit; the
        writes of `write`, `load` and `execute` skip it).
        """
        if self.read_only:
            raise WarehouseError(f"warehouse {self.path} was opened read-only")
        with self._writer_turn(), self.connect(begin=True) as con:
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
            if self.lake is not None and record_snapshot:
                self.last_snapshot = self._current_snapshot(con)

    def write(self, fn, *, retry_s: float = _CONFLICT_RETRY_S):
        """`fn(con)` in one write transaction; on a lake, re-run with backoff when a concurrent
        writer's commit conflicts with it (DuckLake's optimistic concurrency, or a catalog busy
        with another commit). `fn` must be re-runnable. A single file keeps its bounded busy wait."""
        deadline = time.monotonic() + retry_s
        delay = 0.05
        while True:
            try:
                with self.transaction(record_snapshot=False) as con:
                    return fn(con)
            except (WarehouseError, duckdb.Error) as exc:
                cause = exc.__cause__ if isinstance(exc, WarehouseError) else exc
                if (self.lake is None or _write_depth.get(self._key) or not _lake.is_conflict(cause or exc)
                        or time.monotonic() >= deadline):
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

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
        ddl = _lake.lake_ddl if self.lake is not None else (lambda sql: sql)
        with self._writer_turn(), self._lock:
            con = self._connect()
            try:
                con.execute("create schema if not exists meta")
                con.execute(ddl(
                    "create table if not exists meta.schema_migrations ("
                    " version integer primary key, name varchar not null, checksum varchar not null,"
                    " applied_at timestamp not null default current_timestamp)"
                ))
                applied = {
                    row[0]: (row[1], row[2])
                    for row in con.execute("select version, name, checksum from meta.schema_migrations").fetchall()
                }
                pending: list[Migration] = []
                for migration in migrations:
                    if migration.version in applied:
                        _, checksum = applied[migration.version]
                        if not migration.matches(checksum):
                            raise MigrationError(
                                f"migration {migration.name} was edited after it was applied to {self.path} "
                                f"(checksum {checksum[:12]} != {migration.checksum[:12]}); migrations are "
                                "forward-only: restore the file and add a new migration instead"
                            )
                        continue
                    pending.append(migration)
                # a lake commits all pending migrations in one transaction (one snapshot; a commit
                # costs a catalog round trip), a single file one transaction per migration
                batches = [pending] if self.lake is not None else [[m] for m in pending]
                for batch in (b for b in batches if b):
                    con.execute("begin transaction")
                    current = batch[0]
                    try:
                        for current in batch:
                            con.execute(ddl(current.sql))
                            con.execute(
                                "insert into meta.schema_migrations (version, name, checksum) values (?, ?, ?)",
                                [current.version, current.name, current.checksum],
                            )
                        con.execute("commit")
                    except duckdb.Error as exc:
                        con.execute("rollback")
                        raise MigrationError(f"migration {current.name} failed: {exc}") from exc
                    applied_now.extend(m.name for m in batch)
                try:
                    if self.lake is None:
                        self._create_views(con)
                    elif not self._views_current(con):
                        con.execute("begin transaction")
                        self._create_views(con)
                        con.execute("commit")
                except duckdb.Error as exc:  # e.g. disk full: say so instead of a raw DuckDB error
                    raise _translate_write_error(exc, self.path, "views") from exc
                if self.lake is not None:
                    self._prime_table_stats(con)
            finally:
                con.close()
        return applied_now

    def _prime_table_stats(self, con: duckdb.DuckDBPyConnection) -> None:
        """Lake: statistics for tables that never held a row (see `lake.prime_table_stats`), in one
        transaction. Only planning speed depends on it: a failure (a concurrent writer primed the
        same table) is rolled back and left to the next process that migrates."""
        con.execute("begin transaction")
        try:
            _lake.prime_table_stats(con)
            con.execute("commit")
        except duckdb.Error:
            try:
                con.execute("rollback")
            except duckdb.Error:  # the failed commit already ended the transaction
                pass

    def _view_files(self) -> list[Path]:
        return [p for layer in VIEW_LAYERS for p in sorted((self.views_dir / layer).glob("*.sql"))]

    def _views_fingerprint(self) -> str:
        digest = hashlib.sha256()
        for path in self._view_files():
            digest.update(f"{path.relative_to(self.views_dir)}\n{path.read_text()}\n".encode())
        return digest.hexdigest()

    def _views_current(self, con: duckdb.DuckDBPyConnection) -> bool:
        """Lake: whether the newest view set recorded has the fingerprint of the view files."""
        try:
            row = con.execute("select fingerprint from meta.view_sets order by created_at desc limit 1").fetchone()
        except duckdb.CatalogException:
            return False
        return bool(row) and row[0] == self._views_fingerprint()

    def _create_views(self, con: duckdb.DuckDBPyConnection) -> None:
        """Re-create every view from its file; views that depend on later ones are retried.

        Files are ordered so a view comes after the views it names (a failed statement would end
        the lake's view transaction); the retry loop remains for single files.
        """
        pending = _dependency_order(self._view_files())
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
        if self.lake is not None and self.has_table_in(con, "meta.view_sets"):
            con.execute("insert into meta.view_sets values (?, now()::timestamp)", [self._views_fingerprint()])

    @staticmethod
    def has_table_in(con: duckdb.DuckDBPyConnection, name: str) -> bool:
        schema, table = name.split(".")
        row = con.execute("select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
                          [schema, table]).fetchone()
        return bool(row and row[0])

    def refresh_views(self) -> None:
        with self._writer_turn(), self.connect() as con:
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
        self.write(lambda con: con.execute(sql, params))

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
            return self.write(lambda own: self.load(table, arrow, key=key, mode=mode, con=own))
        view = f"_incoming_{threading.get_ident()}"
        keyed = bool(key) and mode != "append"
        cols = ", ".join(_q(c) for c in arrow.column_names)
        if keyed:
            arrow = _first_occurrences(table, arrow, key)
        try:
            if keyed and mode == "ignore":
                # one registration serves the key check (its key columns and row positions: DuckDB's
                # Arrow scan reads only the columns a query names) and, when no key is stored, the insert
                con.register(view, key_probe(arrow))
                stored = _stored_rows(con, table, view, arrow, key)
                if len(stored) == arrow.num_rows:
                    return 0  # a re-load: nothing to insert, no insert statement
                if len(stored):
                    keep = np.ones(arrow.num_rows, dtype=bool)
                    keep[stored] = False
                    con.register(view, arrow.filter(pa.array(keep)))
            else:
                con.register(view, arrow)
            if keyed and mode == "replace":
                con.execute(_delete_stored_sql(table, view, arrow, key))
            inserted = con.execute(f"insert into {table} by name select {cols} from {view}").fetchone()
            return int(inserted[0]) if inserted else 0
        except duckdb.Error as exc:
            raise _translate_write_error(exc, self.path, table) from exc
        finally:
            try:
                con.unregister(view)
            except duckdb.Error:  # the transaction already failed (or nothing was registered)
                pass


def _dependency_order(paths: list[Path]) -> list[Path]:
    """View files with each after the views (by `layer.name`) its text refers to."""
    by_name = {f"{p.parent.name}.{p.stem}": p for p in paths}
    refs = {p: {n for n in re.findall(r"\b([a-z_]+\.[a-z0-9_]+)\b", p.read_text()) if n in by_name and by_name[n] != p}
            for p in paths}
    ordered: list[Path] = []
    seen: set[Path] = set()

    def visit(path: Path, stack: tuple[Path, ...] = ()) -> None:
        if path in seen or path in stack:
            return
        for name in sorted(refs[path]):
            visit(by_name[name], (*stack, path))
        seen.add(path)
        ordered.append(path)

    for path in paths:
        visit(path)
    return ordered


def _first_occurrences(table: str, arrow: pa.Table, key: Sequence[str]) -> pa.Table:
    """`arrow` with only the first row of each key (all of it when no key repeats, the usual case).

    Raises WarehouseError naming the load's table when a key column is not in the data.
    """
    missing = [k for k in key if k not in arrow.column_names]
    if missing:
        raise WarehouseError(f"load into {table}: key column(s) {', '.join(missing)} not in the data "
                             f"(columns: {', '.join(arrow.column_names)})")
    if _keys_unique(arrow, key):
        return arrow
    keys = pl.from_arrow(arrow.select(list(key)))
    first = keys.with_row_index(_ROW).unique(subset=list(key), keep="first", maintain_order=True)  # NULL matches NULL
    return arrow.take(first.get_column(_ROW).to_arrow())


def _key_match(arrow: pa.Table, key: Sequence[str], stored: str = "t") -> str:
    """SQL condition: stored row `stored` (alias) has the key of incoming row `s`, NULL key parts
    matching NULL (`=` for the parts without a NULL in `arrow`)."""
    return " and ".join(f"{stored}.{_q(k)} {'=' if arrow.column(k).null_count == 0 else 'is not distinct from'} s.{_q(k)}"
                        for k in key)


def _has_null(arrow: pa.Table, key: Sequence[str]) -> bool:
    return any(arrow.column(k).null_count for k in key)


def key_probe(arrow: pa.Table) -> pa.Table:
    """`arrow` with each row's position appended (a zero-copy column): what the key check reads
    from (its key columns and the positions only; the wide columns stay out of its hash tables)."""
    return arrow.append_column(_ROW, pa.array(np.arange(arrow.num_rows, dtype=np.int64)))


def stored_keys_sql(table: str, view: str, arrow: pa.Table, key: Sequence[str]) -> str:
    """The query of the keys of `table` that are among the incoming rows' (`view`); key columns only.

    Keys without NULL: a semi join of `table` with the incoming keys, which DuckDB plans with the
    incoming rows as its build side and filters the scan of `table` by their range; DuckLake
    checks that range against each data file's min/max statistics, so files outside it are not
    read (keys that grow with time, or a batch of one dataset version, skip the older files). A
    key part with a NULL, which matches a stored NULL, is joined with `is not distinct from`.
    Usually none is stored (new data): the check is this one join, with nothing to map back.
    """
    stored = ", ".join(f"t.{_q(k)}" for k in key)
    return f"select {stored} from {table} t semi join {view} s on {_key_match(arrow, key)}"


def incoming_rows_sql(view: str, found_view: str, arrow: pa.Table, key: Sequence[str]) -> str:
    """The positions of the incoming rows (`view`, see `key_probe`) whose key is among `found_view`
    (the stored keys `stored_keys_sql` returned); the same comparison as the check's."""
    return f"select s.{_q(_ROW)} from {view} s semi join {found_view} f on {_key_match(arrow, key, 'f')}"


def _stored_rows(con: duckdb.DuckDBPyConnection, table: str, view: str, arrow: pa.Table,
                 key: Sequence[str]) -> np.ndarray:
    """Positions of the rows of `arrow` (registered with their positions as `view`; no key
    repeats in it) whose key is in `table`: the stored keys among the incoming ones
    (`stored_keys_sql`); none (new data): no positions; as many distinct ones as incoming rows
    (a re-load): every position; else the positions of the incoming rows that carry them
    (`incoming_rows_sql`)."""
    found = con.execute(stored_keys_sql(table, view, arrow, key)).to_arrow_table()
    if found.num_rows == 0:
        return np.empty(0, dtype=np.int64)
    if found.num_rows >= arrow.num_rows and found.group_by(found.column_names).aggregate([]).num_rows == arrow.num_rows:
        return np.arange(arrow.num_rows, dtype=np.int64)
    found_view = f"_stored_keys_{threading.get_ident()}"
    con.register(found_view, found)
    try:
        rows = con.execute(incoming_rows_sql(view, found_view, arrow, key)).fetchnumpy()[_ROW]
    finally:
        con.unregister(found_view)
    return np.asarray(rows, dtype=np.int64)


def _delete_stored_sql(table: str, view: str, arrow: pa.Table, key: Sequence[str]) -> str:
    """The statement that deletes the rows of `table` whose key is among the incoming ones (`view`):
    `(t.key) in (...)`, whose key range prunes files by their statistics (as in `stored_keys_sql`;
    a correlated `exists` read every file); `exists` where NULL matches NULL."""
    if _has_null(arrow, key):
        return f"delete from {table} t where exists (select 1 from {view} s where {_key_match(arrow, key)})"
    stored = ", ".join(f"t.{_q(k)}" for k in key)
    incoming = ", ".join(f"s.{_q(k)}" for k in key)
    return f"delete from {table} t where ({stored}) in (select {incoming} from {view} s)"


def _keys_unique(arrow: pa.Table, key: Sequence[str]) -> bool:
    """Whether no key repeats within `arrow` (then the load needs no first-occurrence pass)."""
    try:
        frame = pl.from_arrow(arrow.select(list(key)))
    except (KeyError, pa.ArrowInvalid):
        return False
    return frame.n_unique() == frame.height  # type: ignore[union-attr]


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


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
