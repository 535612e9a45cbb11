"""Where a DuckLake warehouse lives and how to open it.

A lake is a catalog (a SQLite file, or a PostgreSQL database) plus a folder of Parquet data files:

- a folder `DIR` (the default ~/.local/share/potstill/lake): catalog `DIR/catalog.sqlite`, data
  `DIR/data/`; nothing to start, many processes on one machine.
- `postgresql://user@host/db?data_path=/shared/lake` (or a `postgres:` libpq string and
  `$POTSTILL_LAKE_DATA`): a PostgreSQL catalog for several machines; the data path is shared
  storage or `s3://...`.

DuckLake's extensions come from the `duckdb-extension-*` packages (no extension repository is
reachable offline). DuckDB derives an extension's entry point from its file name, so they are
linked into a cache folder under the names DuckDB expects (`sqlite_scanner`, `postgres_scanner`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.resources
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import duckdb

CATALOG_ALIAS = "lake"
SINGLE_FILE_SUFFIXES = (".duckdb", ".db")
_EXTENSIONS = {  # DuckDB's name for the file -> (package, file name in the package)
    "ducklake": ("duckdb_extension_ducklake", "ducklake"),
    "sqlite_scanner": ("duckdb_extension_sqlite", "sqlite"),
    "postgres_scanner": ("duckdb_extension_postgres", "postgres"),
}
_CONSTRAINT_LINE = re.compile(r"^\s*(primary key|unique|check)\s*\(.*$", re.IGNORECASE)
_DANGLING_COMMA = re.compile(r",([ \t]*(?:--[^\n]*)?)\n(\s*\))")
_PRIMARY_KEY_INLINE = re.compile(r"\s+primary key\b", re.IGNORECASE)


class LakeError(RuntimeError):
    """The lake location or its extensions are unusable; the message says what to do."""


def is_dsn(location: str) -> bool:
    """Whether `location` names a PostgreSQL catalog rather than a path."""
    return location.startswith(("postgresql://", "postgres://", "postgres:"))


def is_lake(location: str) -> bool:
    """A lake unless ":memory:" or a single DuckDB file (`*.duckdb`, `*.db`)."""
    return location != ":memory:" and not location.endswith(SINGLE_FILE_SUFFIXES)


@dataclass(frozen=True)
class LakeLocation:
    """A parsed lake location: the catalog to attach and the folder of its data files."""

    location: str
    catalog: str  # what follows "ducklake:" in ATTACH
    data_path: str
    lock_path: Path | None  # SQLite catalogs: the writers' lock file (PostgreSQL catalogs use an advisory lock)
    kind: str  # sqlite | postgres

    @classmethod
    def parse(cls, location: str) -> LakeLocation:
        if is_dsn(location):
            dsn, data_path = _split_data_path(location)
            data_path = data_path or os.environ.get("POTSTILL_LAKE_DATA", "")
            if not data_path:
                raise LakeError(
                    f"{_redact(location)}: a PostgreSQL catalog needs a data path: add ?data_path=/shared/lake "
                    "(or s3://bucket/lake) or set $POTSTILL_LAKE_DATA"
                )
            if "://" not in data_path:
                data_path = str(Path(data_path).expanduser().resolve())
            return cls(location, f"postgres:{dsn}", data_path.rstrip("/") + "/", None, "postgres")
        root = Path(location).expanduser().resolve()
        if root.exists() and not root.is_dir():
            raise LakeError(f"{root}: a lake is a folder (a single DuckDB file ends in .duckdb)")
        return cls(location, f"sqlite:{root / 'catalog.sqlite'}", str(root / "data") + "/",
                   root / ".potstill-write.lock", "sqlite")

    @property
    def root(self) -> Path | None:
        """The lake folder (SQLite catalogs) or None."""
        return Path(self.catalog.removeprefix("sqlite:")).parent if self.kind == "sqlite" else None

    def exists(self) -> bool:
        """Whether the lake was created: the SQLite catalog file, or DuckLake's tables in the
        PostgreSQL database (asked on a short connection of its own; LakeError when unreachable)."""
        if self.kind == "sqlite":
            return Path(self.catalog.removeprefix("sqlite:")).exists()
        con = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False,
                                                   "autoload_known_extensions": False})
        try:
            con.execute(f"LOAD {_lit(str(extension_paths()['postgres_scanner']))}")
            con.execute(f"ATTACH {_lit(self.catalog.removeprefix('postgres:'))} AS catalog_probe (TYPE postgres, READ_ONLY)")
            row = con.execute("select * from postgres_query('catalog_probe', "
                              "'select to_regclass(''ducklake_snapshot'') is not null')").fetchone()
            return bool(row and row[0])
        except duckdb.Error as exc:
            raise LakeError(f"cannot reach the catalog of {_redact(self.location)}: {str(exc).splitlines()[0]}") from exc
        finally:
            con.close()

    def prepare(self) -> None:
        """Create the local folders a writer needs. A new SQLite catalog is created in WAL mode
        (persistent in the file), so readers holding it open never make a writer's commit busy.

        Only a catalog that does not exist yet is touched here: Python's sqlite3 is another copy of
        SQLite than DuckDB's, and two copies in one process must not open the same file (closing
        one's descriptor drops the other's POSIX locks).
        """
        if self.root is not None:
            self.root.mkdir(parents=True, exist_ok=True)
            catalog = self.root / "catalog.sqlite"
            if not catalog.exists():
                fresh = self.root / f".catalog.{os.getpid()}.{threading.get_ident()}.tmp"
                with contextlib.closing(sqlite3.connect(fresh)) as con:
                    con.execute("pragma journal_mode=wal")
                try:
                    os.link(fresh, catalog)  # atomic: exactly one creator wins, nobody sees a half-made file
                except FileExistsError:
                    pass
                finally:
                    fresh.unlink(missing_ok=True)
        if "://" not in self.data_path:
            Path(self.data_path).mkdir(parents=True, exist_ok=True)

    def attach_statements(self, *, read_only: bool = False, snapshot: int | None = None,
                          extension_dir: Path | None = None) -> list[str]:
        """The SQL that opens this lake in a fresh DuckDB session (also what `potstill sql --attach-sql` prints)."""
        paths = extension_paths(extension_dir)
        needed = ["ducklake", "sqlite_scanner" if self.kind == "sqlite" else "postgres_scanner"]
        options = [f"DATA_PATH {_lit(self.data_path)}"]
        if self.kind == "sqlite":
            # the folder's own data folder: the catalog keeps the absolute data path the lake was
            # created with, and DuckLake refuses another unless told to override it; file paths in
            # the catalog are relative to it, so a lake folder moved or copied elsewhere opens whole
            options.append("OVERRIDE_DATA_PATH true")
        if read_only:
            options.append("READ_ONLY")
        if snapshot is not None:
            options.append(f"SNAPSHOT_VERSION {int(snapshot)}")
        return [*(f"LOAD {_lit(str(paths[name]))};" for name in needed),
                f"ATTACH {_lit('ducklake:' + self.catalog)} AS {CATALOG_ALIAS} ({', '.join(options)});",
                f"USE {CATALOG_ALIAS};"]


def _split_data_path(dsn: str) -> tuple[str, str]:
    """`postgresql://...?data_path=X&...` -> (the DSN without data_path, X)."""
    if "://" not in dsn:
        return dsn.removeprefix("postgres:"), ""
    parts = urlsplit(dsn)
    query = parse_qsl(parts.query, keep_blank_values=True)
    data = next((v for k, v in query if k == "data_path"), "")
    rest = urlencode([(k, v) for k, v in query if k != "data_path"])
    return urlunsplit(parts._replace(query=rest)), data


def _redact(location: str) -> str:
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", location)


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_ext_lock = threading.Lock()
_ext_paths: dict[str, dict[str, Path]] = {}


def extension_paths(cache_dir: Path | None = None) -> dict[str, Path]:
    """The DuckLake, SQLite and PostgreSQL extension binaries, linked under the names DuckDB loads them by."""
    version = duckdb.__version__
    cache = cache_dir or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "potstill" / "duckdb-extensions" / f"v{version}"
    key = str(cache)
    with _ext_lock:
        if key in _ext_paths:
            return _ext_paths[key]
        cache.mkdir(parents=True, exist_ok=True)
        found: dict[str, Path] = {}
        for name, (package, stem) in _EXTENSIONS.items():
            try:
                source = importlib.resources.files(package) / "extensions" / f"v{version}" / f"{stem}.duckdb_extension"
            except ModuleNotFoundError as exc:
                raise LakeError(f"package {package.replace('_', '-')}=={version} is not installed; "
                                "pip install the duckdb extension packages pinned in pyproject.toml") from exc
            if not Path(str(source)).is_file():
                raise LakeError(f"{source}: missing; install {package.replace('_', '-')}=={version} (matching duckdb)")
            target = cache / f"{name}.duckdb_extension"
            if not (target.is_symlink() and os.readlink(target) == str(source)):
                tmp = cache / f".{name}.{os.getpid()}.tmp"
                tmp.unlink(missing_ok=True)
                tmp.symlink_to(str(source))
                tmp.replace(target)
            found[name] = target
        _ext_paths[key] = found
        return found


# settings applied after the lake is attached (attaching loads the extensions from their files)
_LATE_SETTINGS = ("enable_external_access", "lock_configuration")


def open_instance(where: LakeLocation, *, read_only: bool = False, snapshot: int | None = None,
                  config: dict | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB session (in memory) with the lake attached as `lake` and in use.

    `config` holds DuckDB settings; `enable_external_access=False` is applied once the lake is
    attached, with the lake's own data folder left readable (`allowed_directories`) so its Parquet
    files still load, and `lock_configuration` last, so a query cannot undo either.
    """
    if not read_only:
        where.prepare()
    config = dict(config or {})
    late = {k: config.pop(k) for k in _LATE_SETTINGS if k in config}
    con = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False,
                                               "autoload_known_extensions": False, **config})
    try:
        con.execute("set enable_progress_bar = false")
        for statement in where.attach_statements(read_only=read_only, snapshot=snapshot):
            con.execute(statement)
        if late.get("enable_external_access") is False:
            allowed = [] if "://" in where.data_path else [os.path.realpath(where.data_path).rstrip("/") + "/"]
            con.execute("set allowed_directories = $dirs", {"dirs": allowed})
            con.execute("set enable_external_access = false")
        if late.get("lock_configuration"):
            con.execute("set lock_configuration = true")
    except duckdb.Error as exc:
        con.close()
        raise LakeError(f"cannot open lake {_redact(where.location)}: {str(exc).splitlines()[0]}") from exc
    return con


@contextmanager
def write_lock(where: LakeLocation, timeout_s: float) -> Iterator[None]:
    """Writers of one lake take turns; readers never wait.

    A SQLite catalog: an flock on a file next to the catalog (one machine). A PostgreSQL catalog:
    a PostgreSQL advisory lock in the catalog's database, so writers on every machine that reaches
    the catalog take turns, whatever storage the data path is on (see `advisory_lock`).
    """
    if where.kind == "postgres":
        with advisory_lock(where, timeout_s):
            yield
        return
    assert where.lock_path is not None
    where.prepare()
    fd = os.open(where.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout_s
        delay = 0.01
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"another writer held {where.lock_path} for over {timeout_s:.0f} s") from None
                time.sleep(delay)
                delay = min(delay * 2, 0.25)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


# the writers' advisory lock: one key per catalog database (advisory locks are per database)
ADVISORY_LOCK_KEY = int.from_bytes(hashlib.sha256(b"potstill lake writers").digest()[:8], "big", signed=True)
_LOCK_ALIAS = "potstill_writer_lock"
_lockers: dict[tuple[int, str], duckdb.DuckDBPyConnection] = {}
_lockers_guard = threading.Lock()


def _locker(where: LakeLocation) -> duckdb.DuckDBPyConnection:
    """This process's connection to the catalog's database that takes the writers' advisory lock."""
    key = (os.getpid(), where.catalog)
    with _lockers_guard:
        con = _lockers.get(key)
        if con is None:
            con = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False,
                                                       "autoload_known_extensions": False})
            try:
                con.execute("set enable_progress_bar = false")
                con.execute(f"LOAD {_lit(str(extension_paths()['postgres_scanner']))}")
                con.execute(f"ATTACH {_lit(where.catalog.removeprefix('postgres:'))} AS {_LOCK_ALIAS} (TYPE postgres)")
            except duckdb.Error as exc:
                con.close()
                raise LakeError(f"cannot reach the catalog of {_redact(where.location)} for the writers' lock: "
                                f"{str(exc).splitlines()[0]}") from exc
            _lockers[key] = con
        return con


@contextmanager
def advisory_lock(where: LakeLocation, timeout_s: float) -> Iterator[None]:
    """Hold the lake's writers' lock: `pg_try_advisory_xact_lock` in a PostgreSQL transaction of its
    own connection, polled with backoff until `timeout_s`, released by ending that transaction.

    PostgreSQL releases it when the holder's connection ends (a crashed or killed writer, another
    machine going away), so a lock is never left behind. Raises TimeoutError after `timeout_s`.
    """
    con = _locker(where)
    query = (f"select * from postgres_query('{_LOCK_ALIAS}', "
             f"'select pg_try_advisory_xact_lock({ADVISORY_LOCK_KEY}) as held')")
    try:
        con.execute("begin transaction")
        deadline = time.monotonic() + timeout_s
        delay = 0.01
        while not con.execute(query).fetchone()[0]:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"another writer held the PostgreSQL advisory lock {ADVISORY_LOCK_KEY} of "
                                   f"{_redact(where.location)} for over {timeout_s:.0f} s")
            time.sleep(delay)
            delay = min(delay * 2, 0.25)
    except BaseException as exc:
        _drop_locker(where, con)
        if isinstance(exc, duckdb.Error):
            raise LakeError(f"the writers' lock of {_redact(where.location)} failed: {str(exc).splitlines()[0]}") from exc
        raise
    try:
        yield
    finally:
        try:
            con.execute("rollback")  # ends the PostgreSQL transaction: the lock is released
        except duckdb.Error:  # the connection broke: PostgreSQL released the lock with it
            _drop_locker(where, con)


def _drop_locker(where: LakeLocation, con: duckdb.DuckDBPyConnection) -> None:
    with _lockers_guard:
        _lockers.pop((os.getpid(), where.catalog), None)
    with contextlib.suppress(duckdb.Error):
        con.close()


def lake_ddl(sql: str) -> str:
    """A migration's DDL in the form DuckLake accepts: no PRIMARY KEY / UNIQUE / CHECK constraints.

    DuckLake has no constraints other than NOT NULL (nor indexes or sequences); the keys they
    stated are kept by the keyed loads instead. The migration's checksum stays that of its file.
    """
    lines = [line for line in sql.splitlines() if not _CONSTRAINT_LINE.match(line)]
    text = "\n".join(lines)
    text = _PRIMARY_KEY_INLINE.sub("", text)
    return _DANGLING_COMMA.sub(r"\1\n\2", text)


_UNSTATED_TABLES = f"""
select s.schema_name, t.table_name
from __ducklake_metadata_{CATALOG_ALIAS}.ducklake_table t
join __ducklake_metadata_{CATALOG_ALIAS}.ducklake_schema s on s.schema_id = t.schema_id and s.end_snapshot is null
left join __ducklake_metadata_{CATALOG_ALIAS}.ducklake_table_stats st on st.table_id = t.table_id
where t.end_snapshot is null and st.table_id is null
order by 1, 2
"""
_ZERO_VALUES = (  # a non-null value per DuckDB type family, for the NOT NULL columns of a priming row
    (re.compile(r".*\]$"), "[]"),
    (re.compile(r"^(VARCHAR|JSON)$"), "''"),
    (re.compile(r"^BLOB$"), "''"),
    (re.compile(r"^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|U\w*INT|FLOAT|DOUBLE|DECIMAL.*)$"), "0"),
    (re.compile(r"^BOOLEAN$"), "false"),
    (re.compile(r"^(TIMESTAMP.*|DATE)$"), "'1970-01-01'"),
    (re.compile(r"^MAP\(.*$"), "map()"),
)


def prime_table_stats(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Give every lake table that never held a row its (empty) statistics; returns the tables primed.

    DuckLake 1.5 caches table statistics only for tables that have them: planning a query that
    reads a never-written table re-reads the catalog's statistics once per referenced column and
    join-order step (`cur_candidates` over a warehouse with empty signal tables: ~100 catalog
    round trips, 5x the single-file time; duckdb/ducklake#1313 fixes this upstream, after 1.5.5).
    A row inserted and deleted in one transaction leaves the table empty and its statistics
    (record_count 0) in the catalog. Runs in the caller's open transaction; tables with a NOT NULL
    column of a type without a known zero value are left as they are (only slower to plan).
    """
    primed: list[str] = []
    for schema, table in con.execute(_UNSTATED_TABLES).fetchall():
        columns = con.execute(
            "select column_name, data_type, is_nullable from information_schema.columns"
            " where table_catalog = ? and table_schema = ? and table_name = ? order by ordinal_position",
            [CATALOG_ALIAS, schema, table]).fetchall()
        values = []
        for name, data_type, nullable in columns:
            zero = "null" if nullable == "YES" else next(
                (v for pattern, v in _ZERO_VALUES if pattern.match(data_type)), None)
            if zero is None:
                break
            values.append(f"cast({zero} as {data_type}) as {_ident(name)}")
        else:
            target = f"{CATALOG_ALIAS}.{_ident(schema)}.{_ident(table)}"
            con.execute(f"insert into {target} by name select {', '.join(values)}")
            con.execute(f"delete from {target}")
            primed.append(f"{schema}.{table}")
    return primed


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def is_conflict(exc: BaseException) -> bool:
    """Whether `exc` is a DuckLake commit conflict with a concurrent writer (worth a retry)."""
    text = str(exc).lower()
    return isinstance(exc, duckdb.Error) and ("conflict" in text or "database is locked" in text
                                              or "could not serialize" in text)


__all__ = ["ADVISORY_LOCK_KEY", "CATALOG_ALIAS", "LakeError", "LakeLocation", "advisory_lock", "extension_paths", "is_conflict", "is_dsn", "is_lake",
           "lake_ddl", "open_instance", "prime_table_stats", "write_lock"]
