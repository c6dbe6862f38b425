"""`TopicFollower` on a real broker: the recent past of every partition is read before `ready` returns (per
partition, or shared among them), new records follow, a record its handler refuses is skipped and the rest still
come, and `ready` never blocks a worker whose broker does not answer."""

import asyncio
import time
import uuid

import pytest
from aiokafka import AIOKafkaProducer

from streams.kafka import ensure_topics
from streams.settings import Settings
from streams.worker.follower import TopicFollower
from streams.local.processes import free_port

pytestmark = pytest.mark.integration


async def produce_one_by_one(broker, records: list[tuple[str, int, bytes]]) -> None:
    """Each record its own batch: Tansu 0.6 states a partition's end offset as one past its last batch's first
    offset, which is only the true end when every batch holds one record (`TopicFollower._mark_caught_up`)."""
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    await producer.start()
    try:
        for topic, partition, value in records:
            await (await producer.send(topic, value=value, partition=partition))
    finally:
        await producer.stop()


def test_the_recent_past_of_every_partition_is_read_first_then_new_records_follow(broker):
    ids, shared = f"ids-{uuid.uuid4().hex[:8]}", f"shared-{uuid.uuid4().hex[:8]}"
    settings = Settings(broker=broker.url, topic_partitions=4)
    asyncio.run(ensure_topics(settings, [ids, shared]))
    asyncio.run(produce_one_by_one(broker, [(t, p, f"{p}-{i}".encode()) for t in (ids, shared) for p in range(4)
                                            for i in range(10)] + [(ids, 0, b"refuse me")]))

    async def run():
        seen = {ids: [], shared: []}

        def handler(topic):
            def handle(record):
                if record.value == b"refuse me":
                    raise ValueError("not ours")
                seen[topic].append(record.value.decode())
            return handle

        follower = TopicFollower(settings)
        follower.follow(ids, 5, handler(ids))
        follower.follow(shared, 8, handler(shared), per_partition=False)
        try:
            await follower.ready(30)
            at_start = {t: sorted(v) for t, v in seen.items()}
            refused = follower.refused
            await produce_one_by_one(broker, [(ids, 2, b"new")])
            deadline = time.monotonic() + 20
            while "new" not in seen[ids] and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            return at_start, refused, seen
        finally:
            await follower.stop()

    at_start, refused, seen = asyncio.run(run())
    # ids: the last 5 of each partition (partition 0's last is the refused record); shared: 8 / 4 = 2 each
    assert at_start[ids] == sorted([f"{p}-{i}" for p in (1, 2, 3) for i in range(5, 10)]
                                   + [f"0-{i}" for i in range(6, 10)])
    assert at_start[shared] == sorted(f"{p}-{i}" for p in range(4) for i in (8, 9))
    assert refused == 1
    assert "new" in seen[ids]


def test_ready_gives_up_on_a_broker_that_does_not_answer():
    follower = TopicFollower(Settings(broker=f"kafka://127.0.0.1:{free_port()}"))
    follower.follow("anything", 10, lambda record: None)

    async def run():
        started = time.monotonic()
        await follower.ready(2)
        waited = time.monotonic() - started
        await follower.stop()
        return waited

    assert asyncio.run(run()) < 10
