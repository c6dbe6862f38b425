"""The dataset directory that `pairstream consume` grows: complete shards, an id index, a manifest.

    DIR/triplets-000001.jsonl      complete shards (or .parquet): load them as they are with
    DIR/triplets-000002.jsonl        load_dataset("json", data_files="DIR/*.jsonl")
    DIR/pairs/pairs-000003.jsonl   pair records, when --columns asks for the sentence-transformers layout
    DIR/dead_letters/...           with --dead-letters (always JSONL)
    DIR/rejects/...                records the sink could not read (tombstones, not JSON, not a record), with
                                     their topic, partition, offset and the reason (always JSONL)
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

import base64
import os
import time
from pathlib import Path
from typing import Any

import orjson

from streams.dataset.index import IdIndex, utc_now
from streams.dataset.shard import Shard

TRIPLET_COLUMNS = ("anchor", "positive", "negative")
FORMATS = ("jsonl", "parquet")
FAMILIES = ("triplets", "pairs", "dead_letters", "rejects")
REJECT_MAX_BYTES = 65536  # of the unreadable value kept in a reject


class DatasetError(Exception):
    """DIR cannot be used as asked (for example: it holds shards of another format)."""


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
        self.written = dict.fromkeys(FAMILIES, 0)
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
        return self.fmt if family in ("triplets", "pairs") else "jsonl"

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
        for family in FAMILIES:
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
        if family not in ("triplets", "pairs") or not self.columns:
            return None
        return tuple(c for c in self.columns if not (family == "pairs" and c == "negative"))

    def row_of(self, record: dict[str, Any], family: str) -> dict[str, Any]:
        columns = self.columns_of(family)
        return record if columns is None else {c: record.get(c) for c in columns}

    def add(self, record: dict[str, Any], *, dead_letter: bool = False) -> bool:
        """Add one record; False (and counted) if its id is already in the dataset."""
        return self._add(record, self.family_of(record, dead_letter))

    def reject(self, topic: str, partition: int, offset: int, reason: str, value: bytes | None) -> bool:
        """Keep a record the sink could not read, with where it came from and why; False if already kept."""
        raw = value[:REJECT_MAX_BYTES] if value is not None else None
        try:
            text, encoding = (raw.decode("utf-8"), "utf-8") if raw is not None else (None, None)
        except UnicodeDecodeError:
            text, encoding = base64.b64encode(raw).decode(), "base64"
        record = {"id": f"reject:{topic}:{partition}:{offset}", "reason": reason,
                  "source": {"topic": topic, "partition": partition, "offset": offset},
                  "value": text, "value_encoding": encoding, "value_bytes": None if value is None else len(value),
                  "value_truncated": value is not None and len(value) > REJECT_MAX_BYTES, "rejected_at": utc_now()}
        return self._add(record, "rejects")

    def _add(self, record: dict[str, Any], family: str) -> bool:
        rid = record.get("id")
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
            "updated_at": utc_now(),
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
