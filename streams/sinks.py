"""Consume the triplets topic into a dataset directory (JSONL), durable and deduplicated by record id.

Offsets are committed only after the lines they cover are flushed and fsynced,
so a crash can redeliver but never lose; redelivered records are recognised by
their id and dropped. (The dataset-sink issue grows this into rotating JSONL /
Parquet shards with an on-disk id index.)
"""

import asyncio
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import orjson
from aiokafka import AIOKafkaConsumer

from streams.kafka import aiokafka_kwargs
from streams.settings import Settings


class JsonlSink:
    """Appends records to `DIR/<name>.jsonl`, skipping ids already in it."""

    def __init__(self, out_dir: Path, name: str):
        self.path = Path(out_dir) / f"{name}.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.seen: set[str] = set()
        if self.path.exists():
            with open(self.path, "rb") as f:
                for line in f:
                    try:
                        rid = orjson.loads(line).get("id")
                    except orjson.JSONDecodeError:
                        continue  # a torn last line from a crash: its record will be redelivered
                    if rid:
                        self.seen.add(rid)
        self._file = open(self.path, "ab")
        self.written = 0
        self.duplicates = 0

    def write(self, value: bytes) -> bool:
        """Append one record; False if its id was already written."""
        record = orjson.loads(value)
        rid = record.get("id")
        if rid and rid in self.seen:
            self.duplicates += 1
            return False
        if rid:
            self.seen.add(rid)
        self._file.write(orjson.dumps(record) + b"\n")
        self.written += 1
        return True

    def sync(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self.sync()
        self._file.close()


@dataclass
class ConsumeStats:
    triplets: int = 0
    dead_letters: int = 0
    duplicates: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def seen(self) -> int:
        """Records consumed, duplicates included."""
        return self.triplets + self.dead_letters + self.duplicates

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


async def consume(settings: Settings, out_dir: Path, *, group: str, until_idle: float | None = None,
                  limit: int | None = None, dead_letters: bool = False,
                  on_progress: Callable[[ConsumeStats], None] | None = None,
                  stop: asyncio.Event | None = None) -> ConsumeStats:
    """Consume until `limit` records (duplicates included), `until_idle` seconds without records, or `stop` is set."""
    topics = [settings.triplets_topic] + ([settings.dlq_topic] if dead_letters else [])
    sinks = {settings.triplets_topic: JsonlSink(out_dir, "triplets")}
    if dead_letters:
        sinks[settings.dlq_topic] = JsonlSink(out_dir, "dead_letters")
    session_ms = int(settings.broker_session_timeout_s * 1000)
    consumer = AIOKafkaConsumer(
        *topics, **aiokafka_kwargs(settings), group_id=group, enable_auto_commit=False,
        auto_offset_reset="earliest", session_timeout_ms=session_ms,
        heartbeat_interval_ms=min(3000, session_ms // 4),
    )
    stats = ConsumeStats()
    await consumer.start()
    last_record = time.monotonic()
    try:
        while not (stop and stop.is_set()):
            batch = await consumer.getmany(timeout_ms=500, max_records=1000)
            if not batch:
                if until_idle is not None and time.monotonic() - last_record >= until_idle:
                    break
                continue
            last_record = time.monotonic()
            for tp, messages in batch.items():
                sink = sinks[tp.topic]
                for msg in messages:
                    if sink.write(msg.value):
                        if tp.topic == settings.triplets_topic:
                            stats.triplets += 1
                        else:
                            stats.dead_letters += 1
                    else:
                        stats.duplicates += 1
            for sink in sinks.values():
                sink.sync()
            await consumer.commit()  # only after the records are on disk
            if on_progress:
                on_progress(stats)
            if limit is not None and stats.seen >= limit:
                break
    finally:
        for sink in sinks.values():
            sink.close()
        await consumer.stop()
    return stats
