"""`pairstream consume`: the triplets topic, as a consumer-group member, into a growing dataset directory.

Kafka offsets are committed only after every record consumed before them is in a
complete, fsynced, indexed shard (`streams.dataset.store`), so a crash can redeliver but
never lose; redelivered records are recognised by their id and dropped, across
restarts. Shards close when they reach `shard_rows` or `shard_seconds` (also while
the stream is quiet), and on a clean stop.
"""

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

import orjson
from aiokafka import AIOKafkaConsumer
from pydantic import BaseModel, Field, field_validator

from streams.dataset.store import TRIPLET_COLUMNS, Dataset
from streams.kafka import aiokafka_kwargs
from streams.settings import Settings


@dataclass
class ConsumeStats:
    triplets: int = 0  # rows written from the triplets topic (pairs included)
    dead_letters: int = 0
    duplicates: int = 0
    shards: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def seen(self) -> int:
        """Records consumed, duplicates included."""
        return self.triplets + self.dead_letters + self.duplicates

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def rate(self) -> float:
        return (self.triplets + self.dead_letters) / max(self.elapsed, 1e-9)

    def summary(self, out_dir: Path) -> str:
        return (f"wrote {self.triplets} triplets, {self.dead_letters} dead letters, dropped {self.duplicates} "
                f"duplicates, in {self.shards} shards, into {out_dir}")


class SinkOptions(BaseModel):
    """How the sink writes and when it stops. `pairstream consume`'s options are derived from these fields."""

    format: Literal["jsonl", "parquet"] = Field("jsonl", description="Shard format.")
    columns: tuple[str, ...] | None = Field(
        None, description="Write only these columns, e.g. anchor,positive,negative (the sentence-transformers "
        "layout; pair records then go to DIR/pairs/). Default: the full record.")
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
        allowed = TRIPLET_COLUMNS + ("id",)
        if value is not None and (not value or any(c not in allowed for c in value)):
            raise ValueError(f"choose from {', '.join(allowed)}")
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
    options = options or SinkOptions()
    limit, until_idle, group = options.limit, options.idle_stop_s, options.group_for(settings)
    dataset = Dataset(out_dir, fmt=options.format, columns=options.columns, shard_rows=options.shard_rows,
                      shard_seconds=options.shard_seconds)
    topics = [settings.triplets_topic] + ([settings.dlq_topic] if options.dead_letters else [])
    session_ms = int(settings.broker_session_timeout_s * 1000)
    consumer = AIOKafkaConsumer(
        *topics, **aiokafka_kwargs(settings), group_id=group, enable_auto_commit=False,
        auto_offset_reset="earliest", session_timeout_ms=session_ms,
        heartbeat_interval_ms=min(3000, session_ms // 4),
    )
    stats = ConsumeStats()
    position: dict = {}  # partition -> next offset, for the records added so far

    async def checkpoint() -> None:
        stats.shards += dataset.checkpoint()
        if position:
            await consumer.commit(dict(position))  # only now: everything added so far is durable

    await consumer.start()
    clean = False
    try:
        last_record = time.monotonic()
        while not (stop and stop.is_set()):
            batch = await consumer.getmany(timeout_ms=500, max_records=1000)
            if batch:
                last_record = time.monotonic()
            for tp, messages in batch.items():
                is_dlq = tp.topic == settings.dlq_topic
                for msg in messages:
                    if not dataset.add(orjson.loads(msg.value), dead_letter=is_dlq):
                        stats.duplicates += 1
                    elif is_dlq:
                        stats.dead_letters += 1
                    else:
                        stats.triplets += 1
                    position[tp] = msg.offset + 1
                    if dataset.due():  # a full shard closes at once, mid-batch
                        await checkpoint()
            if dataset.due():  # an old shard closes while the stream is quiet
                await checkpoint()
            if on_progress:
                on_progress(stats)
            if limit is not None and stats.seen >= limit:
                break
            if not batch and until_idle is not None and time.monotonic() - last_record >= until_idle:
                break
        await checkpoint()
        clean = True
    finally:
        if clean:
            dataset.close()
        else:
            dataset.abort()  # not committed: the open shards' records are redelivered
        await consumer.stop()
    return stats


def run_sink(settings: Settings, out_dir: Path, options: SinkOptions,
             on_progress: Callable[[ConsumeStats], None] | None = None) -> ConsumeStats:
    """`consume` in the foreground: SIGINT and SIGTERM stop it cleanly (open shards are finished, then committed)."""
    import signal

    async def run() -> ConsumeStats:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        return await consume(settings, out_dir, options, on_progress=on_progress, stop=stop)

    return asyncio.run(run())
