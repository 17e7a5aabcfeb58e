"""The two databases the store runs on: SQLite (one machine) and PostgreSQL (replicas).

Both are used through the same tiny interface: `with db.write() as tx:` runs one
transaction (committed on leaving the block, rolled back on an exception), `with
db.read() as tx:` reads; `tx.run / tx.one / tx.all` take SQL with `?` placeholders and
return rows as dicts. Only portable SQL is used (ON CONFLICT upserts work on both).

File locks: `db.lock_files(tx, paths)` makes the transaction the only one that may create,
reference or delete those (content-addressed) files until it ends. On SQLite the write
transaction already holds the database's one write lock, which is exactly that; on
PostgreSQL it takes one transaction-level advisory lock per path, in sorted order (so two
writers never wait on each other in a cycle), released at commit or rollback.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from .records import StoreUnavailableError

SCHEMA_VERSION = 3

#: Columns added after version 1: (name, SQL type). Added in place when an older store opens.
_ADDED_COLUMNS = (
    ("region_id", "TEXT"),       # the front end's id of the object (Label Studio's brush region id)
    ("dropped_clicks", "TEXT"),  # JSON list of {"reason": ..., ...}: submitted clicks not stored
    # Provenance (version 3): the model that drew the mask, the labeler's clicks, seconds spent.
    ("model_version", "TEXT"),
    ("click_count", "INTEGER"),
    ("lead_time_s", "REAL"),
)

_TABLES = """
CREATE TABLE IF NOT EXISTS corrections (
    id TEXT PRIMARY KEY,
    dedup_key TEXT,
    object_index INTEGER NOT NULL DEFAULT 0,
    source TEXT NOT NULL,
    project TEXT,
    task_id TEXT,
    annotation_id TEXT,
    image_sha256 TEXT,
    image_path TEXT,
    image_ref TEXT,
    clicks TEXT NOT NULL,
    mask_path TEXT NOT NULL,
    height INTEGER NOT NULL,
    width INTEGER NOT NULL,
    labels TEXT NOT NULL,
    author TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS corrections_dedup ON corrections (dedup_key, object_index);
CREATE INDEX IF NOT EXISTS corrections_source_project ON corrections (source, project);
CREATE TABLE IF NOT EXISTS models (
    version TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    metrics TEXT NOT NULL,
    registered_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS promotions (
    seq {serial},
    version TEXT NOT NULL REFERENCES models (version),
    promoted_at TEXT NOT NULL,
    rolled_back_at TEXT
);
CREATE TABLE IF NOT EXISTS training_requests (
    id TEXT PRIMARY KEY,
    project TEXT,
    payload TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS store_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


class Transaction:
    """Runs statements on one open connection; `?` placeholders, rows as dicts."""

    def __init__(self, cursor: Any, placeholder: str):
        self._cursor = cursor
        self._placeholder = placeholder

    def _sql(self, sql: str) -> str:
        return sql if self._placeholder == "?" else sql.replace("?", self._placeholder)

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        self._cursor.execute(self._sql(sql), tuple(params))
        return self._cursor.rowcount

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        self._cursor.execute(self._sql(sql), tuple(params))
        rows = self._cursor.fetchall()
        return [dict(r) for r in rows]

    def one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        rows = self.all(sql, params)
        return rows[0] if rows else None

    def columns(self, table: str) -> set[str]:
        self._cursor.execute(f"SELECT * FROM {table} WHERE 1 = 0")
        return {d[0] for d in self._cursor.description}


def _create_schema(tx: Transaction, serial: str) -> None:
    for statement in _TABLES.format(serial=serial).split(";"):
        if statement.strip():
            tx.run(statement)
    present = tx.columns("corrections")
    for name, sql_type in _ADDED_COLUMNS:
        if name not in present:
            tx.run(f"ALTER TABLE corrections ADD COLUMN {name} {sql_type}")
    tx.run("INSERT INTO store_meta (key, value) VALUES ('schema_version', ?) "
           "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (str(SCHEMA_VERSION),))


def file_lock_key(path: str) -> int:
    """A signed 64-bit advisory-lock key for a file path (collisions only serialise more)."""
    return int.from_bytes(hashlib.sha256(path.encode("utf-8")).digest()[:8], "big", signed=True)


class SqliteDatabase:
    """One SQLite file in WAL mode, shared safely by threads and processes on one machine.

    A connection per transaction keeps threads independent; `BEGIN IMMEDIATE` takes the
    write lock up front so two writers queue (busy timeout) instead of failing midway, and
    synchronous=FULL makes a committed transaction survive a power loss.
    """

    kind = "sqlite"

    def __init__(self, path: str | Path, timeout: float = 30.0):
        self.path = Path(path)
        self.timeout = timeout
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
        with self.write() as tx:
            _create_schema(tx, "INTEGER PRIMARY KEY AUTOINCREMENT")

    def describe(self) -> str:
        return str(self.path)

    def lock_files(self, tx: Transaction, paths: Iterable[str]) -> None:
        """Nothing to do: `write()` began with BEGIN IMMEDIATE, the database's one write lock."""

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"cannot open the SQLite store at {self.path}: {exc}") from exc
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    @contextmanager
    def write(self) -> Iterator[Transaction]:
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield Transaction(conn.cursor(), "?")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            raise StoreUnavailableError(f"the SQLite store at {self.path} failed: {exc}") from exc
        finally:
            conn.close()

    @contextmanager
    def read(self) -> Iterator[Transaction]:
        conn = self._connect()
        try:
            yield Transaction(conn.cursor(), "?")
        except sqlite3.OperationalError as exc:
            raise StoreUnavailableError(f"the SQLite store at {self.path} failed: {exc}") from exc
        finally:
            conn.close()


class PostgresDatabase:
    """PostgreSQL through psycopg 3, with a few pooled connections.

    Schema creation takes a transaction-level advisory lock, because concurrent `CREATE
    TABLE IF NOT EXISTS` from replicas starting together can otherwise collide.
    """

    kind = "postgresql"
    _SCHEMA_LOCK = 7_201_904_117  # arbitrary constant, the same in every replica
    _POOL_SIZE = 4

    def __init__(self, url: str, connect_timeout: float = 10.0):
        import psycopg  # noqa: F401 - fail here, with a clear message, if it is missing

        self.url = url
        self.connect_timeout = connect_timeout
        self._idle: list[Any] = []
        self._lock = threading.Lock()
        with self.write() as tx:
            tx.run(f"SELECT pg_advisory_xact_lock({self._SCHEMA_LOCK})")
            _create_schema(tx, "BIGSERIAL PRIMARY KEY")

    def lock_files(self, tx: Transaction, paths: Iterable[str]) -> None:
        """Hold one advisory lock per path until tx ends (sorted: no lock-order cycles)."""
        for key in sorted({file_lock_key(p) for p in paths}):
            tx.run("SELECT pg_advisory_xact_lock(?)", (key,))

    def describe(self) -> str:
        from urllib.parse import urlsplit

        parts = urlsplit(self.url)
        host = parts.hostname or "localhost"
        return f"postgresql://{host}{':' + str(parts.port) if parts.port else ''}{parts.path}"

    def _acquire(self):
        import psycopg
        from psycopg.rows import dict_row

        with self._lock:
            while self._idle:
                conn = self._idle.pop()
                if not conn.closed and not conn.broken:
                    return conn
        try:
            return psycopg.connect(self.url, row_factory=dict_row, autocommit=True,
                                   connect_timeout=int(self.connect_timeout))
        except psycopg.Error as exc:
            raise StoreUnavailableError(f"cannot connect to the PostgreSQL store {self.describe()}: {exc}") from exc

    def _release(self, conn) -> None:
        with self._lock:
            if len(self._idle) < self._POOL_SIZE and not conn.closed and not conn.broken:
                self._idle.append(conn)
                return
        conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[Transaction]:
        import psycopg

        conn = self._acquire()
        try:
            with conn.transaction():
                with conn.cursor() as cur:
                    yield Transaction(cur, "%s")
        except psycopg.OperationalError as exc:
            conn.close()
            raise StoreUnavailableError(f"the PostgreSQL store {self.describe()} failed: {exc}") from exc
        finally:
            self._release(conn)

    def write(self):
        return self._transaction()

    def read(self):
        return self._transaction()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
