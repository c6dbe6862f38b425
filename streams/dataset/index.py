"""The dataset's SQLite index: the id of every record in a complete shard, the shard list, the layout settings.

A shard and all its ids are added in one transaction, so after a crash the index
never names a shard that is not complete, nor an id whose shard is unknown.
"""

import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


class IdIndex:
    """SQLite: ids of every record in a complete shard, the shard list, and the directory's settings."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript("""
            CREATE TABLE IF NOT EXISTS ids (id TEXT PRIMARY KEY) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS shards (seq INTEGER PRIMARY KEY, name TEXT UNIQUE, family TEXT, rows INTEGER,
                                               created TEXT);
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
        """)

    def contains(self, record_id: str) -> bool:
        return self.db.execute("SELECT 1 FROM ids WHERE id = ?", (record_id,)).fetchone() is not None

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def next_seq(self) -> int:
        return (self.db.execute("SELECT MAX(seq) FROM shards").fetchone()[0] or 0) + 1

    def add_shards(self, shards: Iterable[tuple[int, str, str, Iterable[str], int]], ids: Iterable[str],
                   meta: dict[str, str]) -> None:
        """One transaction: every shard of a checkpoint (seq, name, family, _, rows), the ids of their records
        and `meta` become known together, or none of them does."""
        created = utc_now()
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany("INSERT OR IGNORE INTO ids VALUES (?)", ((i,) for i in ids if i))
            self.db.executemany("INSERT INTO shards VALUES (?, ?, ?, ?, ?)",
                                ((seq, name, family, rows, created) for seq, name, family, _, rows in shards))
            self.db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", meta.items())

    def shards(self) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT name, family, rows, created FROM shards ORDER BY seq").fetchall()
        return [{"name": n, "family": f, "rows": r, "created": c} for n, f, r, c in rows]

    def close(self) -> None:
        self.db.close()
