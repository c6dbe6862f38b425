"""The dataset directory that `pairstream consume` grows: complete shards, an id index, a manifest.

    DIR/triplets-000001.jsonl      complete shards (or .parquet): load them as they are with
    DIR/triplets-000002.jsonl        load_dataset("json", data_files="DIR/*.jsonl")
    DIR/pairs/pairs-000003.jsonl   pair records, when --columns asks for the sentence-transformers layout
    DIR/dead_letters/...           with --dead-letters (always JSONL)
    DIR/manifest.json              shards, rows, format, columns (rewritten atomically)
    DIR/.pairstream/index.sqlite   every record id in a complete shard, and the shard list
    DIR/.pairstream/*.tmp          shards being written; no glob for *.jsonl or *.parquet matches them

A shard is written under a temporary name and renamed into place only when it is
complete and fsynced; then its ids and its name are committed to the index in one
SQLite transaction; only then are Kafka offsets committed (by the caller). A crash at
any point leaves either an unfinished temp file (deleted on start; its records are
redelivered) or a renamed shard missing from the index (deleted on start, likewise),
never a half-written shard or a record in two shards.
"""

import os
import sqlite3
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import orjson

TRIPLET_COLUMNS = ("anchor", "positive", "negative")
FORMATS = ("jsonl", "parquet")


class DatasetError(Exception):
    """DIR cannot be used as asked (for example: it holds shards of another format)."""


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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

    def add_shard(self, seq: int, name: str, family: str, ids: Iterable[str], rows: int) -> None:
        """One transaction: the shard and all its ids become known together, or neither does."""
        created = _utc_now()
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany("INSERT OR IGNORE INTO ids VALUES (?)", ((i,) for i in ids))
            self.db.execute("INSERT INTO shards VALUES (?, ?, ?, ?, ?)", (seq, name, family, rows, created))

    def shards(self) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT name, family, rows, created FROM shards ORDER BY seq").fetchall()
        return [{"name": n, "family": f, "rows": r, "created": c} for n, f, r, c in rows]

    def close(self) -> None:
        self.db.close()


def parquet_schema(columns: tuple[str, ...] | None):
    """A fixed Arrow schema, so every shard has the same types.

    `metadata` (a free-form object) is stored as a JSON string, `generated_at` as a UTC timestamp.
    """
    import pyarrow as pa

    full = {
        "id": pa.string(), "anchor": pa.string(), "positive": pa.string(), "negative": pa.string(),
        "model_name": pa.string(), "action": pa.string(), "triplet": pa.bool_(), "hard_negative": pa.bool_(),
        "context": pa.string(), "metadata": pa.string(),
        "usage": pa.struct([("prompt_tokens", pa.int64()), ("completion_tokens", pa.int64())]),
        "attempts": pa.int64(), "latency_ms": pa.float64(), "generated_at": pa.timestamp("us", tz="UTC"),
        "source": pa.struct([("topic", pa.string()), ("partition", pa.int64()), ("offset", pa.int64())]),
        "schema_version": pa.int64(),
    }
    names = columns or tuple(full)
    return pa.schema([(n, full[n]) for n in names])


class Shard:
    """One shard being written to a temp file; `finish()` makes it complete and visible."""

    def __init__(self, seq: int, tmp_dir: Path, final: Path, fmt: str, columns: tuple[str, ...] | None):
        self.seq = seq
        self.final = final
        self.tmp = tmp_dir / f"{final.name}.tmp"
        self.columns = columns
        self.ids: list[str] = []
        self.opened = time.monotonic()
        self._rows: list[dict[str, Any]] = []  # parquet: written at finish (bounded by --shard-rows)
        self._file = open(self.tmp, "wb") if fmt == "jsonl" else None

    def add(self, record_id: str, row: dict[str, Any]) -> None:
        self.ids.append(record_id)
        if self._file is not None:
            self._file.write(orjson.dumps(row) + b"\n")
        else:
            row = dict(row)
            if row.get("metadata") is not None:
                row["metadata"] = orjson.dumps(row["metadata"]).decode()
            if isinstance(row.get("generated_at"), str):
                row["generated_at"] = datetime.fromisoformat(row["generated_at"].replace("Z", "+00:00"))
            self._rows.append(row)

    @property
    def rows(self) -> int:
        return len(self.ids)

    def finish(self) -> None:
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pylist(self._rows, schema=parquet_schema(self.columns))
            pq.write_table(table, self.tmp)
            with open(self.tmp, "rb") as f:
                os.fsync(f.fileno())
        self.final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.tmp, self.final)
        _fsync_dir(self.final.parent)

    def discard(self) -> None:
        if self._file is not None:
            self._file.close()
        self.tmp.unlink(missing_ok=True)


class Dataset:
    """A dataset directory: `add()` records, `checkpoint()` to make everything added durable and indexed."""

    def __init__(self, out_dir: Path, *, fmt: str = "jsonl", columns: tuple[str, ...] | None = None,
                 shard_rows: int = 10_000, shard_seconds: float = 300.0):
        if fmt not in FORMATS:
            raise DatasetError(f"format must be one of {FORMATS}")
        self.dir = Path(out_dir)
        self.fmt = fmt
        self.columns = columns
        self.shard_rows = shard_rows
        self.shard_seconds = shard_seconds
        self.state_dir = self.dir / ".pairstream"
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.index = IdIndex(self.state_dir / "index.sqlite")
        self._check_layout()
        self._recover()
        self.open: dict[str, Shard] = {}
        self.pending_ids: set[str] = set()  # ids in open shards
        self.written = {"triplets": 0, "pairs": 0, "dead_letters": 0}
        self.duplicates = 0
        self.shards_written = 0

    def _check_layout(self) -> None:
        layout = {"format": self.fmt, "columns": ",".join(self.columns) if self.columns else "all"}
        for key, value in layout.items():
            have = self.index.meta(key)
            if have is None:
                self.index.set_meta(key, value)
            elif have != value:
                raise DatasetError(f"{self.dir} holds a dataset with {key} {have!r}; asked for {value!r}")

    def _format_of(self, family: str) -> str:
        return "jsonl" if family == "dead_letters" else self.fmt

    @staticmethod
    def _folder(family: str) -> str:
        """Where a family's shards live, relative to DIR: triplets at the top, the others in a folder of their own."""
        return "" if family == "triplets" else family

    def _path(self, family: str, seq: int) -> Path:
        return self.dir / self._folder(family) / f"{family}-{seq:06d}.{self._format_of(family)}"

    def _recover(self) -> None:
        """Delete what a crash left: temp files, and renamed shards the index never recorded."""
        for tmp in self.state_dir.glob("*.tmp"):
            tmp.unlink()
        known = {s["name"] for s in self.index.shards()}
        for family in ("triplets", "pairs", "dead_letters"):
            for f in (self.dir / self._folder(family)).glob("*-[0-9][0-9][0-9][0-9][0-9][0-9].*"):
                if f.suffix in (".jsonl", ".parquet") and f.name not in known:
                    f.unlink()
        self._write_manifest()

    def family_of(self, record: dict[str, Any], dead_letter: bool) -> str:
        if dead_letter:
            return "dead_letters"
        if self.columns and "negative" in self.columns and record.get("negative") is None:
            return "pairs"
        return "triplets"

    def columns_of(self, family: str) -> tuple[str, ...] | None:
        if family == "dead_letters" or not self.columns:
            return None
        return tuple(c for c in self.columns if not (family == "pairs" and c == "negative"))

    def row_of(self, record: dict[str, Any], family: str) -> dict[str, Any]:
        columns = self.columns_of(family)
        return record if columns is None else {c: record.get(c) for c in columns}

    def add(self, record: dict[str, Any], *, dead_letter: bool = False) -> bool:
        """Add one record; False (and counted) if its id is already in the dataset."""
        rid = record.get("id")
        family = self.family_of(record, dead_letter)
        if rid and (rid in self.pending_ids or self.index.contains(rid)):
            self.duplicates += 1
            return False
        if rid:
            self.pending_ids.add(rid)
        shard = self.open.get(family)
        if shard is None:
            seq = self.index.next_seq() + len(self.open)
            shard = self.open[family] = Shard(seq, self.state_dir, self._path(family, seq), self._format_of(family),
                                              self.columns_of(family))
        shard.add(rid or "", self.row_of(record, family))
        self.written[family] += 1
        return True

    def due(self) -> bool:
        """A shard is full or old enough: time to `checkpoint()`."""
        now = time.monotonic()
        return any(s.rows >= self.shard_rows or now - s.opened >= self.shard_seconds for s in self.open.values())

    def checkpoint(self) -> int:
        """Finish every open shard and index it; after this, everything added is durable. Returns shards closed."""
        closed = 0
        for family, shard in sorted(self.open.items(), key=lambda kv: kv[1].seq):
            shard.finish()
            self.index.add_shard(shard.seq, shard.final.name, family, (i for i in shard.ids if i), shard.rows)
            closed += 1
        self.open.clear()
        self.pending_ids.clear()
        self.shards_written += closed
        if closed:
            self._write_manifest()
        return closed

    def _write_manifest(self) -> None:
        shards = self.index.shards()
        rows: dict[str, int] = {}
        for s in shards:
            rows[s["family"]] = rows.get(s["family"], 0) + s["rows"]
        manifest = {
            "format": self.fmt,
            "columns": list(self.columns) if self.columns else "all",
            "rows": rows,
            "shards": [{**s, "path": str(Path(self._folder(s["family"])) / s["name"])} for s in shards],
            "load": f'datasets.load_dataset("{"json" if self.fmt == "jsonl" else "parquet"}", '
                    f'data_files="{self.dir}/*.{self.fmt}", split="train")',
            "updated_at": _utc_now(),
        }
        tmp = self.state_dir / "manifest.json.tmp"
        tmp.write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
        os.replace(tmp, self.dir / "manifest.json")

    def close(self) -> None:
        """Checkpoint what is open (a clean stop) and close the index."""
        self.checkpoint()
        self.index.close()

    def abort(self) -> None:
        """Drop open shards without making them visible (their records were not committed)."""
        for shard in self.open.values():
            shard.discard()
        self.open.clear()
        self.pending_ids.clear()
        self.index.close()
