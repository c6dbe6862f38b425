"""The dataset's SQLite index: the id of every record in a complete shard, the shard list, the layout settings.

A shard and all its ids are added in one transaction, so after a crash the index
never names a shard that is not complete, nor an id whose shard is unknown. Before a
checkpoint renames its shards into place it records their names as `pending`: the only
files recovery ever deletes are pending ones the crash kept from being indexed.

Triplet ids and dead-letter ids are kept apart: a triplet supersedes a dead letter of the
same id (an anchor dead-lettered during an outage, then redelivered and generated), while a
dead letter after a triplet, or twice, is a duplicate.
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
        had_dead_ids = self._has_table("dead_ids")
        self.db.executescript("""
            CREATE TABLE IF NOT EXISTS ids (id TEXT PRIMARY KEY) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS dead_ids (id TEXT PRIMARY KEY, reason TEXT) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS shards (seq INTEGER PRIMARY KEY, name TEXT UNIQUE, family TEXT, rows INTEGER,
                                               created TEXT);
            CREATE TABLE IF NOT EXISTS pending (path TEXT PRIMARY KEY) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
        """)
        # an index from before dead_ids kept dead-letter ids among the triplets' (see `move_to_dead`)
        self.needs_dead_ids = not had_dead_ids and bool(self.shards())

    def _has_table(self, name: str) -> bool:
        return self.db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)).fetchone() \
            is not None

    def contains(self, record_id: str) -> bool:
        """A triplet (or reject) of this id is in a complete shard."""
        return self.db.execute("SELECT 1 FROM ids WHERE id = ?", (record_id,)).fetchone() is not None

    def dead_letter_reason(self, record_id: str) -> str | None:
        """The reason ("stage: error type") of an indexed dead letter of this id, or None."""
        row = self.db.execute("SELECT reason FROM dead_ids WHERE id = ?", (record_id,)).fetchone()
        return row[0] if row else None

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def next_seq(self) -> int:
        return (self.db.execute("SELECT MAX(seq) FROM shards").fetchone()[0] or 0) + 1

    def mark_pending(self, paths: Iterable[str]) -> None:
        """Shards about to be renamed into place (paths relative to DIR): a crash before `add_shards` leaves
        them for recovery to delete."""
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany("INSERT OR IGNORE INTO pending VALUES (?)", ((p,) for p in paths))

    def pending(self) -> list[str]:
        return [row[0] for row in self.db.execute("SELECT path FROM pending")]

    def clear_pending(self) -> None:
        self.db.execute("DELETE FROM pending")

    def add_shards(self, shards: Iterable[tuple[int, str, str, int]], ids: Iterable[str],
                   meta: dict[str, str], dead_ids: Iterable[tuple[str, str]] = ()) -> None:
        """One transaction: every shard of a checkpoint (seq, name, family, rows), the ids of their records
        (triplets and rejects in `ids`, dead letters with their reason in `dead_ids`) and `meta` become known
        together, or none of them does; the pending names are cleared with them."""
        created = utc_now()
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany("INSERT OR IGNORE INTO ids VALUES (?)", ((i,) for i in ids if i))
            self.db.executemany("INSERT OR IGNORE INTO dead_ids VALUES (?, ?)", ((i, r) for i, r in dead_ids if i))
            self.db.executemany("INSERT INTO shards VALUES (?, ?, ?, ?, ?)",
                                ((seq, name, family, rows, created) for seq, name, family, rows in shards))
            self.db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", meta.items())
            self.db.execute("DELETE FROM pending")

    def move_to_dead(self, dead_ids: Iterable[tuple[str, str]]) -> None:
        """Once, for an index from before `dead_ids`: its dead letters' ids leave the triplets' id space."""
        with self.db:
            self.db.execute("BEGIN")
            for rid, reason in dead_ids:
                self.db.execute("DELETE FROM ids WHERE id = ?", (rid,))
                self.db.execute("INSERT OR IGNORE INTO dead_ids VALUES (?, ?)", (rid, reason))

    def shards(self) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT name, family, rows, created FROM shards ORDER BY seq").fetchall()
        return [{"name": n, "family": f, "rows": r, "created": c} for n, f, r, c in rows]

    def close(self) -> None:
        self.db.close()
