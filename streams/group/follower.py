"""What the whole consumer group has written, read by each worker: every partition of a few topics, from their
recent past on.

Two things follow the group's output (`streams.group.produced`: the ids already delivered, so a redelivery costs
no LLM call; `streams.group.mining_feed`: the sentences every worker delivered, so each mines from all of them).
Both need every partition, not the share the worker is assigned, so this is a plain aiokafka consumer that joins
no group (neither the workers' nor the sink's) and commits nothing. Before the agent takes its first anchor it reads
the last `lookback` records of each partition, so a restarted worker starts knowing what its predecessors did; after
that it follows new records as they come. One consumer for all the topics: one connection and one fetch loop.

Why it runs in the background and retries for ever: a broker that refuses the first connection (it is starting,
a DNS name not resolvable yet) must not leave the worker without group state for its whole life. Only the wait
before the first anchor has a deadline (`ready`); reading goes on past it.
"""

import asyncio
import logging
import math
from collections import Counter
from typing import Callable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from streams.kafka import aiokafka_kwargs
from streams.settings import Settings

log = logging.getLogger("pairstream.follower")
Handler = Callable[[ConsumerRecord], None]


class TopicFollower:
    def __init__(self, settings: Settings, *, retry_s: tuple[float, float] = (1.0, 30.0)):
        self.settings = settings
        self.retry_s = retry_s  # (first, most): the wait between attempts to start, doubling
        self._topics: dict[str, tuple[int, bool, Handler]] = {}  # topic -> (lookback, per partition?, handler)
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task | None = None
        self._behind: dict[TopicPartition, int] = {}  # partition -> end offset still to be read at start-up
        self.caught_up = asyncio.Event()
        self.refused = 0  # records a handler raised on (skipped, logged)
        self.start_failures = 0  # attempts to start that failed (each retried)
        self.read: dict[str, int] = {}  # records read per topic, for the start-up log line

    @property
    def following(self) -> bool:
        return bool(self._topics)

    def follow(self, topic: str, lookback: int, handle: Handler, *, per_partition: bool = True) -> None:
        """Hand every record of `topic` to `handle`, starting `lookback` records back: in each partition, or
        (per_partition=False) in all of them together, shared evenly."""
        self._topics[topic] = (lookback, per_partition, handle)

    async def ready(self, timeout_s: float) -> None:
        """Start following (in the background) and wait up to `timeout_s` for the recent past to be read. Past
        the deadline the worker goes on without it; the follower keeps trying and reading."""
        if self._task is None:
            self._task = asyncio.create_task(self._run())
        try:
            await asyncio.wait_for(asyncio.shield(self.caught_up.wait()), timeout_s)
        except TimeoutError:
            log.warning("%s not read within %.0fs: going on without it (redelivered anchors may be generated again, "
                        "mining starts from fewer sentences); still trying in the background",
                        ", ".join(self._topics), timeout_s)

    async def _run(self) -> None:
        wait = self.retry_s[0]
        while self._consumer is None:
            try:
                await self._start()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # refused, unknown host, no metadata yet: try again, never give up
                self.start_failures += 1
                log.warning("cannot start following %s (%s: %s); retrying in %.0fs", ", ".join(self._topics),
                            type(exc).__name__, exc, wait)
                await asyncio.sleep(wait)
                wait = min(2 * wait, self.retry_s[1])
        await self._follow()

    async def _start(self) -> None:
        consumer = AIOKafkaConsumer(**aiokafka_kwargs(self.settings), group_id=None, enable_auto_commit=False)
        try:
            await consumer.start()
            await consumer.topics()  # metadata of every topic, so their partitions are known
            tps = [TopicPartition(t, p) for t in self._topics for p in sorted(consumer.partitions_for_topic(t) or ())]
            consumer.assign(tps)
            begins, ends = await consumer.beginning_offsets(tps), await consumer.end_offsets(tps)
        except BaseException:  # nothing left open by a failed attempt
            await consumer.stop()
            raise
        partitions = Counter(tp.topic for tp in tps)
        for tp in tps:
            lookback, per_partition, _ = self._topics[tp.topic]
            if not per_partition:
                lookback = math.ceil(lookback / partitions[tp.topic])
            consumer.seek(tp, max(begins[tp], ends[tp] - lookback))
        self._consumer = consumer
        self._behind = dict(ends)
        await self._mark_caught_up()

    async def _mark_caught_up(self) -> None:
        """A partition is caught up once its read position reached the end offset it had at start-up: what was
        there then has been read, however busy the partition is since (a position, not the last record's offset:
        a lookback of 0, or offsets without a record, would never be reached). Tansu 0.6 states a partition's end
        as one past its last *batch*'s first offset; a position past that has read the whole last batch."""
        assert self._consumer is not None
        for tp, end in list(self._behind.items()):
            if await self._consumer.position(tp) >= end:
                del self._behind[tp]
        if not self._behind and not self.caught_up.is_set():
            log.info("caught up with the group: %s", ", ".join(f"{self.read.get(t, 0)} records of {t}"
                                                              for t in self._topics))
            self.caught_up.set()

    async def _follow(self) -> None:
        assert self._consumer is not None
        while True:
            try:
                batches = await self._consumer.getmany(timeout_ms=500, max_records=5000)
                for tp, records in batches.items():
                    handle = self._topics[tp.topic][2]
                    self.read[tp.topic] = self.read.get(tp.topic, 0) + len(records)
                    for record in records:
                        self._hand(handle, record)
                if self._behind:
                    await self._mark_caught_up()
            except asyncio.CancelledError:
                raise
            except Exception:  # the broker away, say: aiokafka reconnects; keep following, never die silently
                log.warning("following %s failed; retrying in 1 s", ", ".join(self._topics), exc_info=True)
                await asyncio.sleep(1.0)

    def _hand(self, handle: Handler, record: ConsumerRecord) -> None:
        try:
            handle(record)
        except Exception as exc:  # one bad record is skipped, not the rest of the topic
            self.refused += 1
            log.debug("%s[%d]@%d skipped: %s", record.topic, record.partition, record.offset, exc)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._consumer is not None:
            await self._consumer.stop()
