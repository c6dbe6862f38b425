"""The load side of `pairstream bench`: anchors in, deliveries timed out.

`Load` publishes anchors (all at once, or paced at a steady rate) and reads the
triplets and dead-letter topics without a consumer group, recording when each
record id arrives. It talks to the broker only, like any user of pairstream.
"""

import asyncio
import itertools
import time
from pathlib import Path
from typing import Callable

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streams.kafka import aiokafka_kwargs
from streams.local.demo import SAMPLE
from streams.settings import Settings

SHARED_SENTENCES = Path("../shared/data/stsb_test_sentences.txt")

Batch = list[tuple[str, bytes]]  # (record id, anchor value)


def load_sentences(path: Path | None) -> list[str]:
    """The STS sentences when available (real lengths), else the shipped sample anchors."""
    for candidate in ([path] if path else [SHARED_SENTENCES]):
        if candidate and candidate.exists():
            lines = [ln.strip() for ln in candidate.read_text(encoding="utf-8").splitlines() if ln.strip()]
            if lines:
                return lines
    return [orjson.loads(ln)["anchor"] for ln in SAMPLE.read_text(encoding="utf-8").splitlines() if ln.strip()]


class AnchorSource:
    """Anchors with ids unique across phases (`bench-<phase>-<n>`), cycling through the sentences.

    With `unique`, every lap after the first marks its sentences (`... (2)`), so the texts stay distinct
    and a mining window can fill with more sentences than the file has.
    """

    def __init__(self, sentences: list[str], unique: bool = False):
        self.sentences = sentences
        self.unique = unique
        self._seq = itertools.count()

    def take(self, phase: str, n: int) -> Batch:
        out = []
        for _ in range(n):
            i = next(self._seq)
            rid = f"bench-{phase}-{i}"
            text = self.sentences[i % len(self.sentences)]
            lap = i // len(self.sentences)
            if self.unique and lap:
                text = f"{text} ({lap + 1})"
            out.append((rid, orjson.dumps({"id": rid, "anchor": text})))
        return out


class Deliveries:
    """Arrival time of each record id on the triplets and dead-letter topics."""

    def __init__(self):
        self.at: dict[str, float] = {}
        self.worker_ms: dict[str, float] = {}  # the triplet's own latency_ms: inside the worker, LLM included
        self.mined: dict[str, list[float]] = {}  # each triplet's mined negatives, as their cosines with the anchor
        self.anchors: dict[str, str] = {}  # each triplet's anchor text
        self.dead_letters = 0
        self.duplicates = 0
        self.changed = asyncio.Event()

    def add(self, key: bytes | None, value: bytes, is_dead_letter: bool, now: float) -> None:
        rid = key.decode() if key else f"dlq-{now}"
        if rid in self.at:
            self.duplicates += 1
            return
        self.at[rid] = now
        if not is_dead_letter:
            record = orjson.loads(value)
            self.worker_ms[rid] = record["latency_ms"]
            self.mined[rid] = [m["score"] for m in record.get("mined_negatives") or ()]
            self.anchors[rid] = record.get("anchor", "")
        self.dead_letters += is_dead_letter
        self.changed.set()

    async def wait_for(self, ids: list[str], timeout: float, tick: Callable[[], None] | None = None) -> None:
        deadline = time.monotonic() + timeout
        pending = set(ids)
        while True:
            pending = {i for i in pending if i not in self.at}
            if not pending:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(pending)} of {len(ids)} anchors not delivered within {timeout:.0f}s")
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), 0.2)
            except asyncio.TimeoutError:
                pass
            if tick:
                tick()


class Load:
    """A producer for anchors and a group-less reader of both output topics. Use as `async with`."""

    def __init__(self, settings: Settings, partitions: int):
        self.settings = settings
        self.partitions = partitions
        self.deliveries = Deliveries()
        self.producer = AIOKafkaProducer(**aiokafka_kwargs(settings), acks="all", linger_ms=5)
        self.consumer = AIOKafkaConsumer(**aiokafka_kwargs(settings), group_id=None, auto_offset_reset="earliest",
                                         fetch_max_wait_ms=50)
        self._is_dlq = {settings.triplets_topic: False, settings.dlq_topic: True}
        self._collector: asyncio.Task | None = None

    async def __aenter__(self) -> "Load":
        await self.producer.start()
        await self.consumer.start()
        tps = [TopicPartition(t, p) for t in self._is_dlq for p in range(self.partitions)]
        self.consumer.assign(tps)
        await self.consumer.seek_to_beginning(*tps)
        self._collector = asyncio.create_task(self._collect())
        return self

    async def __aexit__(self, *exc) -> None:
        if self._collector is not None:
            self._collector.cancel()
            await asyncio.gather(self._collector, return_exceptions=True)
        await self.consumer.stop()
        await self.producer.stop()

    async def _collect(self) -> None:
        while True:
            batches = await self.consumer.getmany(timeout_ms=200)
            now = time.monotonic()
            for tp, msgs in batches.items():
                for m in msgs:
                    self.deliveries.add(m.key, m.value, self._is_dlq[tp.topic], now)

    async def publish(self, batch: Batch) -> None:
        """All at once: a backlog."""
        topic = self.settings.anchors_topic
        futures = [await self.producer.send(topic, value=v, key=rid.encode()) for rid, v in batch]
        await asyncio.gather(*futures)

    async def publish_paced(self, batch: Batch, rate: float) -> dict[str, float]:
        """At a steady `rate` per second; returns the send time of each id."""
        topic = self.settings.anchors_topic
        sent_at: dict[str, float] = {}
        futures = []
        t0 = time.monotonic()
        for i, (rid, value) in enumerate(batch):
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            sent_at[rid] = time.monotonic()
            futures.append(await self.producer.send(topic, value=value, key=rid.encode()))
        await asyncio.gather(*futures)
        return sent_at
