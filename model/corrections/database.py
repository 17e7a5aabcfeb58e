"""The two databases the store runs on: SQLite (one machine) and PostgreSQL (replicas).

Both are used through the same tiny interface: `with db.write() as tx:` runs one
transaction (committed on leaving the block, rolled back on an exception), `with
db.read() as tx:` reads; `tx.run / tx.one / tx.all` take SQL with `?` placeholders and
return rows as dicts. Only portable SQL is used (ON CONFLICT upserts work on both).
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

from .records import StoreUnavailableError

SCHEMA_VERSION = 1

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


#: Provenance columns added after the first schema: (name, SQL type). Stores created before them
#: get them on opening (ALTER TABLE ... ADD COLUMN); their old records read None.
PROVENANCE_COLUMNS = (("model_version", "TEXT"), ("click_count", "INTEGER"), ("lead_time_s", "REAL"))


def add_missing_columns(tx, existing: set[str]) -> None:
    for name, sql_type in PROVENANCE_COLUMNS:
        if name not in existing:
            tx.run(f"ALTER TABLE corrections ADD COLUMN {name} {sql_type}")


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
            for statement in _TABLES.format(serial="INTEGER PRIMARY KEY AUTOINCREMENT").split(";"):
                if statement.strip():
                    tx.run(statement)
            add_missing_columns(tx, {r["name"] for r in tx.all("PRAGMA table_info(corrections)")})
            tx.run("INSERT INTO store_meta (key, value) VALUES ('schema_version', ?) "
                   "ON CONFLICT (key) DO NOTHING", (str(SCHEMA_VERSION),))

    def describe(self) -> str:
        return str(self.path)

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
            for statement in _TABLES.format(serial="BIGSERIAL PRIMARY KEY").split(";"):
                if statement.strip():
                    tx.run(statement)
            add_missing_columns(tx, {r["column_name"] for r in tx.all(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'corrections' "
                "AND table_schema = current_schema()")})
            tx.run("INSERT INTO store_meta (key, value) VALUES ('schema_version', ?) "
                   "ON CONFLICT (key) DO NOTHING", (str(SCHEMA_VERSION),))

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
