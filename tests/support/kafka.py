"""Kafka from a test's side: write values to a topic, read a topic from the beginning, and account for every
anchor (which offsets ended as a triplet or a dead letter, which are missing or duplicated)."""

import asyncio
import time

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streams.local.broker import EmbeddedBroker


def produce(broker: EmbeddedBroker, topic: str, values: list[bytes | None], keys: list[bytes | None] | None = None,
            partition: int | None = None) -> None:
    async def run():
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", max_request_size=8 * 1024 * 1024)
        await producer.start()
        try:
            futs = [await producer.send(topic, value=v, key=(keys[i] if keys else None), partition=partition)
                    for i, v in enumerate(values)]
            for f in futs:
                await f
        finally:
            await producer.stop()

    asyncio.run(run())


def read_raw(broker: EmbeddedBroker, topic: str, expect: int, timeout: float = 60) -> list:
    """Read a topic from the beginning (no consumer group) until `expect` messages or the timeout."""

    async def run():
        consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False,
                                    auto_offset_reset="earliest", fetch_max_bytes=64 * 1024 * 1024,
                                    max_partition_fetch_bytes=16 * 1024 * 1024)
        await consumer.start()
        messages = []
        try:
            deadline = time.monotonic() + timeout
            parts = None
            while parts is None and time.monotonic() < deadline:
                parts = consumer.partitions_for_topic(topic)
                if not parts:
                    parts = None
                    await consumer._client.force_metadata_update()
                    await asyncio.sleep(0.2)
            if not parts:
                return messages
            consumer.assign([TopicPartition(topic, p) for p in parts])
            await consumer.seek_to_beginning()
            while len(messages) < expect and time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=500)
                for msgs in batch.values():
                    messages.extend(msgs)
        finally:
            await consumer.stop()
        return messages

    return asyncio.run(run())


def read_topic(broker: EmbeddedBroker, topic: str, expect: int, timeout: float = 60) -> list[dict]:
    """`read_raw`, each value parsed as JSON, with the message key added as `_key`."""
    return [{"_key": m.key, **orjson.loads(m.value)} for m in read_raw(broker, topic, expect, timeout)]


class Accounting:
    """Which anchor offsets ended as a triplet or a dead letter, and what is missing or duplicated."""

    def __init__(self, anchors: list, triplets: list[dict], dead_letters: list[dict]):
        self.anchors = {(m.partition, m.offset) for m in anchors}
        self.triplets = triplets
        self.dead_letters = dead_letters
        outputs = [(r["source"]["partition"], r["source"]["offset"]) for r in triplets + dead_letters]
        self.covered = set(outputs)
        self.lost = self.anchors - self.covered
        self.duplicates = len(outputs) - len(self.covered)
        ids = [r["id"] for r in triplets]
        self.duplicate_triplet_ids = len(ids) - len(set(ids))

    def by_stage(self) -> dict[str, int]:
        """Dead-lettered anchors (distinct source offsets) per stage."""
        sources = {(d["source"]["partition"], d["source"]["offset"]): d["stage"] for d in self.dead_letters}
        stages: dict[str, int] = {}
        for stage in sources.values():
            stages[stage] = stages.get(stage, 0) + 1
        return dict(sorted(stages.items()))

    def summary(self) -> str:
        return (f"anchors in {len(self.anchors)}, triplets {len({r['id'] for r in self.triplets})} unique "
                f"({len(self.triplets)} records), dead letters {sum(self.by_stage().values())} {self.by_stage()} "
                f"({len(self.dead_letters)} records), lost {len(self.lost)}, duplicates {self.duplicates}")


def account(broker: EmbeddedBroker, names: dict, n_anchors: int, timeout: float = 90) -> Accounting:
    """Wait until every anchor has an output (or the timeout), then account for all of them."""
    anchors = read_raw(broker, names["anchors"], n_anchors, timeout=10)
    deadline = time.monotonic() + timeout
    while True:
        left = max(1.0, deadline - time.monotonic())
        # read with a short timeout each round: the outputs are split over two topics
        triplets = read_topic(broker, names["triplets"], 10**9, timeout=min(3.0, left))
        letters = read_topic(broker, names["dlq"], 10**9, timeout=min(2.0, left))
        acc = Accounting(anchors, triplets, letters)
        if not acc.lost or time.monotonic() >= deadline:
            return acc


def committed(broker: EmbeddedBroker, group: str, topic: str) -> dict[int, int]:
    """The offsets `group` has committed on each partition of `topic` (partitions never committed left out)."""

    async def run():
        consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=group, enable_auto_commit=False)
        await consumer.start()
        try:
            parts = consumer.partitions_for_topic(topic) or set()
            if not parts:
                await consumer._client.force_metadata_update()
                parts = consumer.partitions_for_topic(topic) or set()
            out = {}
            for p in parts:
                offset = await consumer.committed(TopicPartition(topic, p))
                if offset is not None:
                    out[p] = offset
            return out
        finally:
            await consumer.stop()

    return asyncio.run(run())
