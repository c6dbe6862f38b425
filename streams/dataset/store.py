"""The dataset directory that `pairstream consume` grows: complete shards, an id index, a manifest.

    DIR/README.md                  the dataset card: Hugging Face front matter (one config per layout) and the
                                     quality figures (`streams.dataset.card`); load_dataset("DIR", "triplet")
    DIR/triplets-000001.jsonl      complete shards (or .parquet) of full records (config `records`), or of the
    DIR/triplets-000002.jsonl        --columns layout: load_dataset("json", data_files="DIR/*.jsonl")
    DIR/triplet/, DIR/mined-negatives/, DIR/pairs/, DIR/mined-negatives-2/ ...
                                   the training views, input columns only (`streams.dataset.layouts`)
    DIR/dead_letters/...           with --dead-letters (always JSONL)
    DIR/rejects/...                records the sink could not read (tombstones, not JSON, not a record), with
                                     their topic, partition, offset and the reason (always JSONL)
    DIR/manifest.json              shards, rows, format, columns (rewritten atomically)
    DIR/.pairstream/index.sqlite   every record id in a complete shard, and the shard list
    DIR/.pairstream/*.tmp          shards being written; no glob for *.jsonl or *.parquet matches them

A shard is written under a temporary name and renamed into place only when it is
complete and fsynced; its name is recorded in the index as pending before the rename, then
the names of every shard of the checkpoint, their ids and the running figures are committed to
the index in one SQLite transaction; only then are Kafka offsets committed (by the caller). A
crash at any point leaves either an unfinished temp file in DIR/.pairstream/ (deleted on start;
its records are redelivered) or a renamed shard the index lists as pending but not complete
(deleted on start, likewise), never a half-written shard or a record in two shards. Recovery
deletes nothing else: a file the index has not recorded as its own pending shard is never touched.

A directory holding shards but no index gets its index rebuilt, with the layout of its shards
(`streams.dataset.recovery`); a run asking for another layout is refused, as with an intact index.

One process at a time writes a directory: the first takes an exclusive lock on
DIR/.pairstream/lock, and a second gets `DirectoryBusy` naming the holder's pid.

When the disk fills up or turns read-only (or a file-size limit is hit) every public
method raises `StorageError`: nothing after the last checkpoint was committed, so the
caller stops without committing offsets, and the same command completes the dataset
once writing works again.
"""

import base64
import os
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from streams.dataset.card import render_card
from streams.dataset.disk import storage, writing
from streams.dataset.index import IdIndex, utc_now
from streams.dataset.layouts import MAIN, VIEWS, layout_mismatch, layouts_for, settings_of, settled
from streams.dataset.shard import Shard
from streams.dataset.recovery import RECORD_FAMILIES, DatasetError, folder, records_of, recover
from streams.dataset.tally import Tally, dead_letter_reason
from streams.dirlock import DirectoryBusy, DirectoryLock


FORMATS = ("jsonl", "parquet")
REJECT_MAX_BYTES = 65536  # of the unreadable value kept in a reject
__all__ = ["Dataset", "DatasetError", "DirectoryBusy", "records_of"]


class Dataset:
    """A dataset directory: `add()` records, `checkpoint()` to make everything added durable and indexed."""

    def __init__(self, out_dir: Path, *, fmt: str = "jsonl", columns: tuple[str, ...] | None = None,
                 views: tuple[str, ...] | None = None, negatives: int = 3, shard_rows: int = 10_000,
                 shard_seconds: float = 300.0, dead_letters: bool = False, mining_ratio: float = 0.95):
        if fmt not in FORMATS:
            raise DatasetError(f"format must be one of {FORMATS}")
        if views is None:  # the training views come beside full records; a --columns layout stands alone
            views = VIEWS if columns is None else ()
        if views and columns is not None:
            raise DatasetError("views come beside full records only: drop --columns or --views")
        self.dir = Path(out_dir)
        self.fmt = fmt
        self.columns = columns
        self.views = tuple(views)
        self.layouts = layouts_for(columns, self.views, negatives)
        self.negatives = negatives
        self.shard_rows = shard_rows
        self.shard_seconds = shard_seconds
        self.mining_ratio = mining_ratio  # the positive-aware rule the workers mine with, for the figures
        self.state_dir = self.dir / ".pairstream"
        self.pending = Tally()  # of the open shards
        self.open: dict[str, Shard] = {}
        self.pending_ids: set[str] = set()  # triplet (and reject) ids in open shards
        self.pending_dead: dict[str, str] = {}  # dead-letter ids in open shards, with their reason
        self.written: Counter = Counter()  # rows added per family
        self.duplicates = 0
        self.superseded = 0  # dead letters superseded by a triplet of the same id, in this run
        self.shards_written = 0
        self.first_free_seq = 1  # above every shard-named file on disk, indexed or not
        with storage(self.dir, "opening it"):
            self.state_dir.mkdir(parents=True, exist_ok=True)
            probe = self.state_dir / "write-probe.tmp"  # a read-only disk says so here, not as an SQLite riddle
            probe.write_bytes(b"")
            probe.unlink()
            self.lock = DirectoryLock(self.state_dir / "lock", f"the dataset in {self.dir}").acquire()
            try:
                self.index = IdIndex(self.state_dir / "index.sqlite")
                self.dataset_id = self.index.meta("dataset_id") or uuid.uuid4().hex  # names it on its card
                self.index.set_meta("dataset_id", self.dataset_id)
                self._recover()  # first: a rebuilt index records the layout of the shards, which is checked next
                self._check_layout()
                stored = self.index.meta("tally")
                self.tally = Tally.from_json(orjson.loads(stored)) if stored else self._count_shards()
                self.tally.dead_letters_kept = self.tally.dead_letters_kept or dead_letters
                self._write_manifest()
            except BaseException:
                self.lock.release()
                raise

    def _check_layout(self) -> None:
        """The layout asked is the one the directory holds (its index's, or the one rebuilt from its shards); a new
        directory (or a setting it has not recorded) takes the one asked."""
        asked = settings_of(self.fmt, self.columns, self.views, self.negatives)
        held = {key: self.index.meta(key) for key in asked}
        if problem := layout_mismatch(held, asked):
            raise DatasetError(f"{self.dir} holds a dataset with {problem}")
        for key, value in asked.items():
            if not settled(held[key]):
                self.index.set_meta(key, value)

    def _count_shards(self) -> Tally:
        """The figures of a directory written before the card existed (or whose index was rebuilt), read once
        from its shards; a dead letter superseded by a triplet counts once, as the triplet."""
        tally = Tally()
        records = ("dead_letters",) + ((MAIN,) if self.columns is None else ())  # shards holding whole records
        paths = [(s["family"], self.dir / self._folder(s["family"]) / s["name"]) for s in self.index.shards()
                 if s["family"] in records]
        for family, row in records_of(paths):
            tally.add(row, dead_letter=family == "dead_letters")
        # records_of leaves out exactly the superseded dead letters; the index knows every shard's rows
        tally.superseded = sum(s["rows"] for s in self.index.shards() if s["family"] == "dead_letters") \
            - tally.dead_letters
        return tally

    def _format_of(self, family: str) -> str:
        return "jsonl" if family in RECORD_FAMILIES else self.fmt

    _folder = staticmethod(folder)

    def _path(self, family: str, seq: int) -> Path:
        return self.dir / self._folder(family) / f"{family}-{seq:06d}.{self._format_of(family)}"

    def _recover(self) -> None:
        """What a crash left is deleted, and nothing else; a missing index is rebuilt (`streams.dataset.recovery`)."""
        self.first_free_seq = recover(self)

    @writing("adding a record")
    def add(self, record: dict[str, Any], *, dead_letter: bool = False) -> bool:
        """Add one record (a row in each layout); False (and counted) if its id is already in the dataset.
        A triplet whose id the dataset holds only as a dead letter is added: it supersedes the dead letter."""
        if not self._claim(record.get("id"), dead_letter_reason(record) if dead_letter else None):
            return False
        if dead_letter:
            self._row("dead_letters", record)
        else:
            # a dict: two views may put the record in the same family (`pairs`); it is written there once
            placed = dict(layout.place(record) for layout in self.layouts)
            for family, row in sorted(placed.items(), key=lambda kv: kv[0] != MAIN):
                self._row(family, row)
        self.pending.add(record, dead_letter=dead_letter)
        return True

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
        with storage(self.dir, "keeping a reject"):
            if not self._claim(record["id"]):
                return False
            self._row("rejects", record)
        return True

    def _claim(self, rid: str | None, dead_letter_reason: str | None = None) -> bool:
        """Note `rid` as added (a dead letter when its reason is given); False if the dataset already holds it:
        a triplet of that id, or for a dead letter a dead letter too (in a complete or an open shard)."""
        if not rid:
            return True
        if rid in self.pending_ids or self.index.contains(rid) or (dead_letter_reason is not None and (
                rid in self.pending_dead or self.index.dead_letter_reason(rid) is not None)):
            self.duplicates += 1
            return False
        if dead_letter_reason is not None:
            self.pending_dead[rid] = dead_letter_reason
            return True
        earlier = self.pending_dead.get(rid) or self.index.dead_letter_reason(rid)
        if earlier is not None:  # the anchor was dead-lettered, then redelivered and generated: count it once
            self.pending.supersede(earlier)
            self.superseded += 1
        self.pending_ids.add(rid)
        return True

    def _row(self, family: str, row: dict[str, Any]) -> None:
        shard = self.open.get(family)
        if shard is None:
            seq = max(self.index.next_seq(), self.first_free_seq) + len(self.open)
            columns = None if family in RECORD_FAMILIES or (family == MAIN and self.columns is None) else tuple(row)
            shard = self.open[family] = Shard(seq, self.state_dir, self._path(family, seq), self._format_of(family),
                                              columns)
        shard.add(str(row.get("id") or ""), row)
        self.written[family] += 1

    def due(self) -> bool:
        """A shard is full or old enough: time to `checkpoint()`."""
        now = time.monotonic()
        return any(s.rows >= self.shard_rows or now - s.opened >= self.shard_seconds for s in self.open.values())

    @writing("closing shards")
    def checkpoint(self) -> int:
        """Finish every open shard and index them, with their ids and figures, in one transaction; after this,
        everything added is durable. Returns shards closed."""
        shards = sorted(self.open.items(), key=lambda kv: kv[1].seq)
        finished: list[Shard] = []
        if shards:  # before any rename: a crash from here on leaves only files recovery knows to be its own
            self.index.mark_pending(str(shard.final.relative_to(self.dir)) for _, shard in shards)
        try:
            for _, shard in shards:
                shard.finish()
                finished.append(shard)
            if shards:
                self.tally.merge(self.pending)  # a failure below stops the sink: this tally is not used again
                self.index.add_shards([(shard.seq, shard.final.name, family, shard.rows)
                                       for family, shard in shards], self.pending_ids,
                                      {"tally": orjson.dumps(self.tally.to_json()).decode()},
                                      self.pending_dead.items())
        except BaseException:
            for shard in finished:  # complete but not indexed: not part of the dataset, so not left visible
                try:
                    shard.final.unlink(missing_ok=True)
                except OSError:  # read-only: deleted by the next start's recovery
                    pass
            raise
        self.open.clear()
        self.pending_ids.clear()
        self.pending_dead.clear()
        self.pending = Tally()
        self.shards_written += len(shards)
        if shards:  # may fail too: the shards are indexed, and the next start rewrites the manifest and card
            self._write_manifest()
        return len(shards)

    def _write_manifest(self) -> None:
        shards = self.index.shards()
        rows: Counter = Counter()
        for s in shards:
            rows[s["family"]] += s["rows"]
        manifest = {
            "format": self.fmt,
            "columns": list(self.columns) if self.columns else "all",
            "views": list(self.views),
            "rows": dict(rows),
            "dead_letters_kept": self.tally.dead_letters_kept,
            "superseded_dead_letters": self.tally.superseded,
            "mining_negative_ratio": self.mining_ratio,
            "shards": [{**s, "path": str(Path(self._folder(s["family"])) / s["name"])} for s in shards],
            "load": f'datasets.load_dataset("{"json" if self.fmt == "jsonl" else "parquet"}", '
                    f'data_files="{self.dir}/*.{self.fmt}", split="train")',
            "updated_at": utc_now(),
        }
        self._replace("manifest.json", orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
        files: dict[str, list[str]] = {}
        for shard in manifest["shards"]:
            files.setdefault(shard["family"], []).append(shard["path"])
        families = {family: (files[family], count) for family, count in rows.items() if family != "rejects"}
        self._replace("README.md", render_card(self.tally, families, full_records=self.columns is None,
                                               columns=self.columns, dataset_id=self.dataset_id,
                                               mining_ratio=self.mining_ratio).encode())

    def _replace(self, name: str, content: bytes) -> None:
        tmp = self.state_dir / f"{name}.tmp"
        tmp.write_bytes(content)
        os.replace(tmp, self.dir / name)

    def close(self) -> None:
        """Checkpoint what is open (a clean stop), close the index and let go of the directory."""
        try:
            self.checkpoint()
        finally:
            self.index.close()
            self.lock.release()

    def abort(self) -> None:
        """Drop open shards without making them visible (their records were not committed)."""
        for shard in self.open.values():
            shard.discard()
        self.open.clear()
        self.pending_ids.clear()
        self.pending_dead.clear()
        self.pending = Tally()
        self.index.close()
        self.lock.release()
