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
from streams.group.follower import TopicFollower
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


def test_ready_gives_up_on_a_broker_that_does_not_answer_and_the_follower_keeps_trying():
    follower = TopicFollower(Settings(broker=f"kafka://127.0.0.1:{free_port()}"), retry_s=(0.1, 0.2))
    follower.follow("anything", 10, lambda record: None)

    async def run():
        await follower.ready(2)  # returns at its deadline (the test's own timeout would catch a hang)
        failures = follower.start_failures
        await asyncio.sleep(1)
        later = follower.start_failures
        await follower.stop()
        return failures, later, follower.caught_up.is_set()

    failures, later, caught_up = asyncio.run(run())
    assert failures >= 1 and later > failures and not caught_up


def test_a_busy_topic_is_caught_up_with_without_waiting_for_a_quiet_fetch(broker):
    """Review: caught up needed a fetch that brought nothing; with records arriving on every partition all the
    time there is none, and every worker start waited the whole deadline."""
    topic = f"busy-{uuid.uuid4().hex[:8]}"
    settings = Settings(broker=broker.url, topic_partitions=4)
    asyncio.run(ensure_topics(settings, [topic]))
    asyncio.run(produce_one_by_one(broker, [(topic, p, f"old-{p}-{i}".encode()) for p in range(4) for i in range(5)]))

    async def run():
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks=1)
        await producer.start()

        async def busy():  # 8 records a second on each partition, until stopped
            i = 0
            while True:
                await asyncio.gather(*[(await producer.send(topic, value=f"new-{i}".encode(), partition=p))
                                       for p in range(4)])
                i += 1
                await asyncio.sleep(0.125)

        feeding = asyncio.create_task(busy())
        await asyncio.sleep(1.5)
        seen = []
        follower = TopicFollower(settings)
        follower.follow(topic, 5, lambda record: seen.append(record.value.decode()))
        try:
            await follower.ready(30)
            return follower.caught_up.is_set(), seen
        finally:
            feeding.cancel()
            await asyncio.gather(feeding, return_exceptions=True)
            await follower.stop()
            await producer.stop()

    caught_up, seen = asyncio.run(run())
    assert caught_up, "ready() gave up waiting for a quiet fetch"
    assert len(seen) >= 4 * 5  # the lookback of each partition, at least


def test_a_follower_whose_first_start_fails_keeps_trying_and_catches_up(broker):
    """Review: one failure while starting left the follower dead for the worker's life (no ids, no mining feed)
    after a warning that implied it carried on. Nothing listens on its port at first; then a relay to the
    broker opens there (the broker's metadata then names the broker itself)."""
    topic = f"late-{uuid.uuid4().hex[:8]}"
    port = free_port()
    asyncio.run(ensure_topics(Settings(broker=broker.url, topic_partitions=2), [topic]))
    asyncio.run(produce_one_by_one(broker, [(topic, p, f"{p}".encode()) for p in range(2)]))
    upstream = int(broker.bootstrap.rsplit(":", 1)[1])

    async def relay(reader, writer):
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream)

        async def pipe(src, dst):
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer), return_exceptions=True)

    async def run():
        seen = []
        follower = TopicFollower(Settings(broker=f"kafka://127.0.0.1:{port}"), retry_s=(0.2, 0.5))
        follower.follow(topic, 10, lambda record: seen.append(record.value))
        server = None
        try:
            await follower.ready(1)
            failed_first = follower.start_failures >= 1 and not follower.caught_up.is_set()
            server = await asyncio.start_server(relay, "127.0.0.1", port)
            await asyncio.wait_for(follower.caught_up.wait(), 30)
            return failed_first, sorted(seen)
        finally:
            await follower.stop()
            if server is not None:
                server.close()

    failed_first, seen = asyncio.run(run())
    assert failed_first
    assert seen == [b"0", b"1"]
