"""`pairstream consume`: the triplets topic, as a consumer-group member, into a growing dataset directory.

Kafka offsets are committed only after every record consumed before them is in a
complete, fsynced, indexed shard (`streams.dataset`), so a crash can redeliver but
never lose; redelivered records are recognised by their id and dropped, across
restarts. Shards close when they reach `shard_rows` or `shard_seconds` (also while
the stream is quiet), and on a clean stop.
"""

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import orjson
from aiokafka import AIOKafkaConsumer

from streams.dataset import Dataset
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


@dataclass
class SinkOptions:
    fmt: str = "jsonl"
    columns: tuple[str, ...] | None = None
    shard_rows: int = 10_000
    shard_seconds: float = 300.0
    dead_letters: bool = False


async def consume(settings: Settings, out_dir: Path, *, group: str, until_idle: float | None = None,
                  limit: int | None = None, options: SinkOptions | None = None,
                  on_progress: Callable[[ConsumeStats], None] | None = None,
                  stop: asyncio.Event | None = None) -> ConsumeStats:
    """Consume until `limit` records (duplicates included), `until_idle` seconds without records, or `stop`."""
    options = options or SinkOptions()
    dataset = Dataset(out_dir, fmt=options.fmt, columns=options.columns, shard_rows=options.shard_rows,
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
