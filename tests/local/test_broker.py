"""`pairstream broker` runs a real Kafka-compatible broker, prints its address and stops on SIGTERM."""

import signal

import pytest

from support.kafka import produce, read_topic
from support.processes import spawn_cli
from streams.local.broker import EmbeddedBroker
from streams.local.processes import free_port

pytestmark = pytest.mark.integration


def test_broker_command_serves_kafka_and_stops_cleanly():
    port = free_port()
    proc = spawn_cli("broker", "--port", str(port), text=True)
    try:
        line = proc.stdout.readline()
        assert line.strip() == f"broker listening: PAIRSTREAM_BROKER=kafka://127.0.0.1:{port}"
        handle = EmbeddedBroker(port=port)  # only used for its addresses
        produce(handle, "smoke", [b"{\"hello\": 1}"])
        assert read_topic(handle, "smoke", 1) == [{"_key": None, "hello": 1}]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0


def test_broker_with_data_keeps_topics_records_and_offsets_across_a_restart(tmp_path):
    """`pairstream broker --data DIR`: records produced and an offset committed before a SIGTERM are there
    after a restart on the same DIR; the S3 credentials it generated are not world-readable."""
    from support.kafka import committed, read_raw

    data = tmp_path / "broker-data"
    port = free_port()

    def start():
        proc = spawn_cli("broker", "--port", str(port), "--data", str(data), text=True)
        line = proc.stdout.readline()
        assert line.strip() == f"broker listening: PAIRSTREAM_BROKER=kafka://127.0.0.1:{port} (data in {data})"
        return proc

    handle = EmbeddedBroker(port=port)
    proc = start()
    try:
        produce(handle, "durable", [f'{{"n": {i}}}'.encode() for i in range(50)], partition=0)
        commit(handle, "durable-group", "durable", 20)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    assert (data / "object-store.json").stat().st_mode & 0o077 == 0
    proc = start()
    try:
        assert [m.value for m in read_raw(handle, "durable", 50)] == [f'{{"n": {i}}}'.encode() for i in range(50)]
        assert committed(handle, "durable-group", "durable") == {0: 20}
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0


def commit(broker, group: str, topic: str, offset: int) -> None:
    import asyncio

    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def run():
        consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=group, enable_auto_commit=False)
        await consumer.start()
        try:
            consumer.assign([TopicPartition(topic, 0)])
            await consumer.commit({TopicPartition(topic, 0): offset})
        finally:
            await consumer.stop()

    asyncio.run(run())


def test_demo_with_broker_data_grows_one_dataset_across_runs(tmp_path, fake_llm):
    """Two demo runs on one --broker-data and one --out, each with its own anchors (a fake LLM, no quality
    gate): the second run's dataset holds both runs' records, each once."""
    from support.processes import clean_env, run_cli

    llm = fake_llm()
    env = clean_env(PAIRSTREAM_LLM_BASE_URL=llm.base_url, PAIRSTREAM_QUALITY="off")
    out, data = tmp_path / "ds", tmp_path / "broker-data"
    for run in (1, 2):
        anchors = tmp_path / f"anchors-{run}.txt"
        anchors.write_text("".join(f"Run {run} has anchor number {i}.\n" for i in range(15)))
        done = run_cli("demo", "--anchors", str(anchors), "--out", str(out), "--broker-data", str(data), env=env,
                       timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
    import orjson

    anchors = [orjson.loads(line)["anchor"] for shard in sorted(out.glob("triplets-*.jsonl"))
               for line in shard.read_bytes().splitlines()]
    assert sorted(anchors) == sorted(f"Run {r} has anchor number {i}." for r in (1, 2) for i in range(15))
