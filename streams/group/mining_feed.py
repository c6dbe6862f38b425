"""The consumer group's sentences in every worker's mining index: each worker shares the anchor and positive of
every record it delivered, with their vectors, on the mining topic, and adds every record of that topic, its own
included, to its index.

Without it, each of N workers mines from 1/N of the stream's recent sentences, and a restarted worker starts with
an empty index. With it, every worker searches the whole group's recent records, and a (re)started worker fills its
index from the topic's recent past before its first anchor (`streams.group.follower`: every partition, no group).
Vectors travel int8-quantized (`schemas.mining`: about 1 KB a record) because embedding another worker's
sentences again would cost about as much CPU as judging one's own.

A record is shared only once its triplet is acknowledged by the broker (the agent calls `StreamMiner.delivered`),
so a `mined_negatives[].source_id` always names a record that exists. Records are taken only from the same
embedder with vectors of the window's width; anything else is skipped and counted (`refused`), never allowed to
size the window. Sharing is best effort: a sentence that fails to go out is only a candidate fewer (counted in
`pairstream_mining_feed_total{event="failed"}`); while the broker refuses, one producer is tried at a time, with
a growing pause between attempts, and every failed one is closed.
"""

import asyncio
import logging
import time

import numpy as np
from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from schemas import mining
from streams.group.follower import TopicFollower
from streams.kafka import aiokafka_kwargs
from streams.metrics import Metrics
from streams.quality.mining import SentenceWindow
from streams.settings import Settings

log = logging.getLogger("pairstream.mining_feed")


class MiningFeed:
    def __init__(self, settings: Settings, window: SentenceWindow, embedder: str, metrics: Metrics,
                 *, retry_s: tuple[float, float] = (1.0, 60.0), clock=time.monotonic):
        self.settings = settings
        self.topic = settings.mining_topic_name
        self.window = window
        self.embedder = embedder  # vectors of another model are not comparable: refused
        self.metrics = metrics
        self.retry_s = retry_s  # (first, most) pause after a producer failed to start, doubling
        self.clock = clock
        self._producer: AIOKafkaProducer | None = None
        self._starting = asyncio.Lock()
        self._retry_at = 0.0
        self._pause = retry_s[0]
        self._sending: set[asyncio.Task] = set()

    def follow(self, follower: TopicFollower) -> "MiningFeed":
        """Fill the index from the topic's last records (as many as it holds: two sentences a record), then follow."""
        follower.follow(self.topic, self.window.capacity // 2, self.receive, per_partition=False)
        return self

    def receive(self, record: ConsumerRecord) -> None:
        try:
            record_id, texts, vectors, embedder = mining.decode(record.value or b"")
        except ValueError:
            self.metrics.mining_feed.labels("refused").inc()
            raise
        age = max(0.0, time.time() - record.timestamp / 1000) if record.timestamp is not None else 0.0
        if embedder != self.embedder or not self.window.fits(vectors.shape[1]) or age > self.window.max_age_s:
            self.metrics.mining_feed.labels("refused").inc()
            return
        self.window.add(record_id, texts, vectors, age_s=age)
        self.metrics.mining_feed.labels("received").inc()

    def share(self, record_id: str, texts: list[str], vectors: np.ndarray) -> None:
        """Send in the background (the agent does not wait for it)."""
        task = asyncio.get_running_loop().create_task(self._send(record_id, mining.encode(record_id, texts, vectors,
                                                                                           self.embedder)))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, record_id: str, value: bytes) -> None:
        try:
            producer = await self._started()
            await (await producer.send(self.topic, key=record_id.encode(), value=value))
            self.metrics.mining_feed.labels("sent").inc()
        except Exception as exc:
            self.metrics.mining_feed.labels("failed").inc()
            log.debug("mining record %s not sent: %s", record_id, exc)

    async def _started(self) -> AIOKafkaProducer:
        async with self._starting:
            if self._producer is not None:
                return self._producer
            if self.clock() < self._retry_at:
                raise ConnectionError(f"the broker refused the last producer; next try in "
                                      f"{self._retry_at - self.clock():.0f}s")
            producer = AIOKafkaProducer(**aiokafka_kwargs(self.settings), acks=1, linger_ms=50)
            try:
                await producer.start()
            except BaseException:
                await producer.stop()  # its connections and background tasks, or every failure leaks them
                self._retry_at = self.clock() + self._pause
                self._pause = min(2 * self._pause, self.retry_s[1])
                raise
            self._producer, self._pause = producer, self.retry_s[0]
            return producer

    async def stop(self) -> None:
        if self._sending:
            await asyncio.wait(list(self._sending), timeout=5)
        if self._producer is not None:
            await self._producer.stop()
