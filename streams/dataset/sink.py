"""`pairstream consume`: the triplets topic, as a consumer-group member, into a growing dataset directory.

Kafka offsets are committed only after every record consumed before them is in a
complete, fsynced, indexed shard (`streams.dataset.store`), so a crash can redeliver but
never lose (and a full or read-only disk stops the sink with `StorageError`, committing
nothing it could not write); redelivered records are recognised by their id and dropped, across
restarts. Shards close when they reach `shard_rows` or `shard_seconds` (also while
the stream is quiet), and on a clean stop. A record the sink cannot read (a tombstone,
not JSON, not a record, or one of a newer `schema_version`: `streams.dataset.wire`) is kept in DIR/rejects/
with its offset and the reason, and committed past: one bad record never stops the dataset from growing.
"""

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from pydantic import BaseModel, Field, field_validator

from streams.dataset.layouts import VIEWS, check_columns
from streams.dataset.disk import StorageError
from streams.dataset.store import Dataset
from streams.dataset.wire import NEWER, read_record
from streams.kafka import aiokafka_kwargs
from streams.settings import Settings

log = logging.getLogger("pairstream.sink")


@dataclass
class ConsumeStats:
    triplets: int = 0  # rows written from the triplets topic (pairs included)
    dead_letters: int = 0
    duplicates: int = 0
    rejects: int = 0  # records the sink could not read (kept in DIR/rejects/, committed past)
    superseded: int = 0  # dead letters superseded by a triplet of the same id in this run
    shards: int = 0
    started: float = field(default_factory=time.monotonic)
    models: Counter = field(default_factory=Counter)  # triplets written per `model_name`

    @property
    def seen(self) -> int:
        """Records consumed, duplicates and rejects included."""
        return self.triplets + self.dead_letters + self.duplicates + self.rejects

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def rate(self) -> float:
        return (self.triplets + self.dead_letters) / max(self.elapsed, 1e-9)

    def summary(self, out_dir: Path) -> str:
        superseded = f" ({self.superseded} superseding dead letters of their anchors)" if self.superseded else ""
        return (f"wrote {self.triplets} triplets{superseded}, {self.dead_letters} dead letters, dropped "
                f"{self.duplicates} duplicates, rejected {self.rejects} unreadable records, in {self.shards} shards, "
                f"into {out_dir}")


class SinkOptions(BaseModel):
    """How the sink writes and when it stops. `pairstream consume`'s options are derived from these fields."""

    format: Literal["jsonl", "parquet"] = Field("jsonl", description="Shard format.")
    columns: tuple[str, ...] | None = Field(
        None, description="Write only these columns at the top of DIR: anchor,positive,negative (triplets; rows "
        "without a negative go to DIR/pairs/) or anchor,positive,negative_1,...,negative_K (n-tuples of mined "
        "negatives; shorter rows go to DIR/negatives-M/). Default: the full record, with the views beside it.")
    views: tuple[str, ...] | None = Field(
        None, description="Training views written beside the full records, input columns only: triplet, "
        "mined-negatives, or none [default: both; none with --columns].")
    negatives: int | None = Field(
        None, ge=1, le=32, description="Mined negatives per row of the mined-negatives view [default: "
        "PAIRSTREAM_MINED_NEGATIVES, what the workers mine].")
    shard_rows: int = Field(10_000, ge=1, description="Close a shard after this many rows.")
    shard_seconds: float = Field(
        300.0, ge=0.1, description="Close a shard after this many seconds (also while the stream is quiet).")
    follow: bool = Field(
        True, description="Keep consuming as the stream grows; --no-follow stops once the stream is quiet for 5 s.")
    until_idle: float | None = Field(None, gt=0, description="Stop after this many seconds without records.")
    group: str | None = Field(None, description="Consumer group (default: <app id>-sink).")
    limit: int | None = Field(None, ge=1, description="Stop after this many records (duplicates included).")
    dead_letters: bool = Field(False, description="Also write dead letters to DIR/dead_letters/.")

    @field_validator("columns", mode="before")
    @classmethod
    def _columns(cls, value):
        if isinstance(value, str):
            value = tuple(c.strip() for c in value.split(",") if c.strip())
        if value is not None:
            check_columns(tuple(value))
        return value

    @field_validator("views", mode="before")
    @classmethod
    def _views(cls, value):
        if isinstance(value, str):
            value = () if value.strip() == "none" else tuple(v.strip() for v in value.split(",") if v.strip())
        if value is not None and any(v not in VIEWS for v in value):
            raise ValueError(f"choose from {', '.join(VIEWS)}, or none")
        return value

    @property
    def idle_stop_s(self) -> float | None:
        """Seconds without records after which the sink stops (None: never)."""
        if self.until_idle is None and not self.follow:
            return 5.0
        return self.until_idle

    def group_for(self, settings: Settings) -> str:
        return self.group or f"{settings.app_id}-sink"


async def consume(settings: Settings, out_dir: Path, options: SinkOptions | None = None, *,
                  on_progress: Callable[[ConsumeStats], None] | None = None,
                  stop: asyncio.Event | None = None) -> ConsumeStats:
    """Consume until `options.limit` records (duplicates included), `options.idle_stop_s` seconds without
    records, or `stop`."""
    return await Sink(settings, out_dir, options or SinkOptions()).run(on_progress, stop)


class Sink(ConsumerRebalanceListener):
    """One `pairstream consume`: a consumer-group member writing into one dataset directory.

    Offsets are committed only for what is durable, and only for partitions this member owns: when a
    rebalance takes partitions away, everything added so far is made durable and committed first (the new
    owner starts after it, so nothing is written twice), then their positions are forgotten.
    """

    def __init__(self, settings: Settings, out_dir: Path, options: SinkOptions):
        self.settings = settings
        self.options = options
        self.dataset = Dataset(out_dir, fmt=options.format, columns=options.columns, views=options.views,
                               negatives=options.negatives or settings.mined_negatives or 3,
                               shard_rows=options.shard_rows,
                               shard_seconds=options.shard_seconds, dead_letters=options.dead_letters,
                               mining_ratio=settings.mining_negative_ratio)
        self.topics = [settings.triplets_topic] + ([settings.dlq_topic] if options.dead_letters else [])
        session_ms = int(settings.broker_session_timeout_s * 1000)
        self.consumer = AIOKafkaConsumer(
            **aiokafka_kwargs(settings), group_id=options.group_for(settings), enable_auto_commit=False,
            auto_offset_reset="earliest", session_timeout_ms=session_ms,
            heartbeat_interval_ms=min(3000, session_ms // 4),
        )
        self.stats = ConsumeStats()
        self.position: dict[TopicPartition, int] = {}  # next offset per owned partition, for records added so far
        self.owned: set[TopicPartition] = set()
        self.closed = False
        self.failure: StorageError | None = None  # from a checkpoint in a rebalance callback, raised by the loop
        self.warned: set[str] = set()

    # -- rebalances (ConsumerRebalanceListener) ------------------------------------------------------------
    async def on_partitions_revoked(self, revoked) -> None:
        if self.closed or not revoked or self.failure:
            return
        try:
            await self.checkpoint()  # everything added so far becomes durable, and committed while still owned
        except StorageError as exc:  # aiokafka would log and swallow it: the loop raises it instead
            self.failure = exc
            return
        self.owned -= set(revoked)
        for tp in revoked:
            self.position.pop(tp, None)

    async def on_partitions_assigned(self, assigned) -> None:
        self.owned = set(assigned)

    # -- the loop ------------------------------------------------------------------------------------------
    async def checkpoint(self) -> None:
        self.stats.shards += self.dataset.checkpoint()
        self.position = {tp: offset for tp, offset in self.position.items() if tp in self.owned}
        if self.position:
            try:
                await self.consumer.commit(dict(self.position))  # only now: everything added so far is durable
            except (CommitFailedError, IllegalStateError) as exc:  # a rebalance began meanwhile
                log.warning("commit refused (%s); the partitions still owned are committed at the next shard", exc)

    def add(self, tp: TopicPartition, msg) -> None:
        is_dlq = tp.topic == self.settings.dlq_topic
        ignored: set[str] = set()
        record = read_record(msg.value, is_dlq, ignored)
        for name in sorted(ignored):
            self.warn_once(f"{tp.topic} carries a field this sink does not know, left out of {self.dataset.dir}: "
                           f"{name} (a newer worker; upgrade pairstream consume to keep it)")
        if isinstance(record, str):
            added = self.dataset.reject(tp.topic, tp.partition, msg.offset, record, msg.value)
            self.stats.rejects += added
            if record.startswith(NEWER):
                self.warn_once(f"{tp.topic}: {record}; kept in {self.dataset.dir / 'rejects'}")
        else:
            added = self.dataset.add(record, dead_letter=is_dlq)
            if added and is_dlq:
                self.stats.dead_letters += 1
            elif added:
                self.stats.triplets += 1
                self.stats.models[str(record.get("model_name"))] += 1
        self.stats.duplicates += not added
        self.position[tp] = msg.offset + 1

    async def run(self, on_progress: Callable[[ConsumeStats], None] | None, stop: asyncio.Event | None) -> ConsumeStats:
        limit, until_idle = self.options.limit, self.options.idle_stop_s
        self.consumer.subscribe(self.topics, listener=self)
        await self.consumer.start()
        clean = False
        try:
            last_record = time.monotonic()
            while not (stop and stop.is_set()) and not self._reached(limit):
                batch = await self.consumer.getmany(timeout_ms=500, max_records=1000)
                if self.failure:
                    raise self.failure
                if batch:
                    last_record = time.monotonic()
                for tp, messages in batch.items():
                    for msg in messages:
                        if tp not in self.owned or self._reached(limit):
                            break  # revoked while this batch was being written (its new owner reads it), or done
                        self.add(tp, msg)
                        if self.dataset.due():  # a full shard closes at once, mid-batch
                            await self.checkpoint()
                if self.dataset.due():  # an old shard closes while the stream is quiet
                    await self.checkpoint()
                if on_progress:
                    on_progress(self.stats)
                if not batch and until_idle is not None and time.monotonic() - last_record >= until_idle:
                    break
            await self.checkpoint()
            clean = True
        finally:
            self.closed = True
            try:
                if clean:
                    self.dataset.close()
                else:
                    self.dataset.abort()  # not committed: the open shards' records are redelivered
            finally:  # a dataset that cannot close still leaves the group (its partitions go to others at once)
                await self.consumer.stop()
        self.stats.superseded = self.dataset.superseded
        return self.stats

    def warn_once(self, message: str) -> None:
        if message not in self.warned:
            self.warned.add(message)
            log.warning(message)

    def _reached(self, limit: int | None) -> bool:
        """`--limit` records seen: the sink stops at exactly that many (the rest of a fetch is not written, nor
        committed)."""
        return limit is not None and self.stats.seen >= limit


def run_sink(settings: Settings, out_dir: Path, options: SinkOptions,
             on_progress: Callable[[ConsumeStats], None] | None = None) -> ConsumeStats:
    """`consume` in the foreground: SIGINT and SIGTERM stop it cleanly (open shards are finished, then committed).
    Warnings and errors are logged as the worker logs them (format, secrets redacted, repeats collapsed)."""
    import signal

    from streams.logs import configure_logging

    configure_logging("warning" if settings.log_level in ("info", "warning") else settings.log_level,
                      settings.log_format)

    async def run() -> ConsumeStats:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        return await consume(settings, out_dir, options, on_progress=on_progress, stop=stop)

    return asyncio.run(run())
