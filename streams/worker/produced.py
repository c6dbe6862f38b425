"""Record ids the consumer group has already produced, read from the output topics, so that a redelivered anchor
whose record is already out costs no LLM call.

Why: at-least-once redelivers anchors after a crash, a rebalance, or a consumer group rewound by hand; the sink
drops the duplicate records by id, but every one was an LLM call paid again (about 30 per SIGKILL here). The
output topics already say which ids are done, for every worker of the group: their key is the record id. So each
worker follows them with a plain aiokafka consumer that joins no group (neither the workers' nor the sink's),
is assigned every partition and reads keys only. Before the agent takes its first anchor it reads the last
`lookback` records of each partition, so a restarted worker knows what its predecessor produced; after that it
follows new records as they come. The ids kept are bounded (`capacity`, oldest forgotten first).

A skip is safe because an id is deterministic: the record the LLM would make again has the same id, and the sink
would keep only the first. An anchor is only skipped once its record is on the broker (ids are learnt from the
topics, or from this worker's own confirmed produce).
"""

import asyncio
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.kafka import aiokafka_kwargs
from streams.settings import Settings

log = logging.getLogger("pairstream.produced")


class ProducedIds:
    def __init__(self, settings: Settings, topics: list[str], capacity: int, lookback: int):
        self.settings = settings
        self.topics = topics
        self.capacity = capacity
        self.lookback = lookback
        self._ids: dict[str, None] = {}  # insertion-ordered: the oldest id is the first key
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task | None = None
        self._behind: dict[TopicPartition, int] = {}  # partition -> end offset still to be read at start-up
        self.caught_up = asyncio.Event()

    def __contains__(self, record_id: str) -> bool:
        return record_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, record_id: str) -> None:
        self._ids[record_id] = None
        if len(self._ids) > self.capacity:
            del self._ids[next(iter(self._ids))]

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(**aiokafka_kwargs(self.settings), group_id=None, enable_auto_commit=False)
        await consumer.start()
        self._consumer = consumer
        await consumer.topics()  # metadata of every topic, so their partitions are known
        tps = [TopicPartition(t, p) for t in self.topics for p in sorted(consumer.partitions_for_topic(t) or ())]
        consumer.assign(tps)
        begins, ends = await consumer.beginning_offsets(tps), await consumer.end_offsets(tps)
        for tp in tps:
            consumer.seek(tp, max(begins[tp], ends[tp] - self.lookback))
        self._behind = dict(ends)
        await self._mark_caught_up()
        self._task = asyncio.create_task(self._follow())

    async def _mark_caught_up(self) -> None:
        """Partitions whose read position reached their end offset at start-up are caught up (positions, not the
        last record's offset: a lookback of 0, or offsets without a record, would never be reached)."""
        assert self._consumer is not None
        for tp, end in list(self._behind.items()):
            if await self._consumer.position(tp) >= end:
                del self._behind[tp]
        if not self._behind and not self.caught_up.is_set():
            log.info("produced ids: %d known from %s", len(self._ids), ", ".join(self.topics))
            self.caught_up.set()

    async def _follow(self) -> None:
        assert self._consumer is not None
        while True:
            batches = await self._consumer.getmany(timeout_ms=500, max_records=5000)
            for records in batches.values():
                for record in records:
                    if record.key:
                        self.add(record.key.decode(errors="replace"))
            if self._behind:
                await self._mark_caught_up()

    async def ready(self, timeout_s: float) -> None:
        """Start and read the recent past; past `timeout_s`, or if the broker refuses, go on without (a warning)."""
        try:
            await asyncio.wait_for(self._start_and_catch_up(), timeout_s)
        except Exception as exc:  # never block the worker: without the ids, a redelivery just costs its LLM call
            log.warning("produced ids not read within %.0fs (%s): redelivered anchors may be generated again",
                        timeout_s, type(exc).__name__)

    async def _start_and_catch_up(self) -> None:
        if self._consumer is None:
            await self.start()
        await self.caught_up.wait()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._consumer is not None:
            await self._consumer.stop()
