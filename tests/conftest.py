"""Shared fixtures: one embedded broker per test session, fake LLM servers, worker subprocesses,
and helpers to write to and read from topics. Each test gets its own topic names and
consumer group, so tests share the broker without seeing each other's records."""

import asyncio
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streams.broker import EmbeddedBroker
from streams.testing import FakeLLM

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data" / "stsb_test_sentences.txt"


def stsb_sentences(n: int) -> list[str]:
    """The first n real sentences of the STS benchmark test split (from ../shared)."""
    lines = [line.strip() for line in SHARED_DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
    return lines[:n]


@pytest.fixture(scope="session")
def broker(tmp_path_factory):
    log = tmp_path_factory.mktemp("broker") / "tansu.log"
    with EmbeddedBroker(log_file=log) as b:
        yield b


@pytest.fixture
def fake_llm():
    servers = []

    def make(**kwargs) -> FakeLLM:
        server = FakeLLM(**kwargs).start()
        servers.append(server)
        return server

    yield make
    for s in servers:
        s.stop()


class Worker:
    """`pairstream worker` as a subprocess, with its stderr captured to a file."""

    def __init__(self, env: dict[str, str], log_path: Path):
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Worker":
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "streams.cli", "worker"], env=self.env,
                                     stdout=self._log, stderr=subprocess.STDOUT, cwd=ROOT)
        return self

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_assigned(self, timeout: float = 60) -> None:
        """Wait until the consumer group gave this worker its partitions (no fixed sleeps)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "partitions assigned:" in self.log:
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.log[-3000:]}")
            time.sleep(0.1)
        raise AssertionError(f"worker not assigned within {timeout}s:\n{self.log[-3000:]}")

    def stop(self, sig: int = 15, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


@pytest.fixture
def names():
    """Unique topic names and consumer group for one test."""
    tag = uuid.uuid4().hex[:8]
    return {"anchors": f"anchors-{tag}", "triplets": f"triplets-{tag}", "dlq": f"dlq-{tag}", "app_id": f"ps-{tag}"}


@pytest.fixture
def pairstream_env(broker, names):
    """Environment for a pairstream subprocess bound to this test's topics on the session broker."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAIRSTREAM_")}
    env.update({
        "PAIRSTREAM_BROKER": broker.url,
        "PAIRSTREAM_ANCHORS_TOPIC": names["anchors"],
        "PAIRSTREAM_TRIPLETS_TOPIC": names["triplets"],
        "PAIRSTREAM_DLQ_TOPIC": names["dlq"],
        "PAIRSTREAM_APP_ID": names["app_id"],
        "PAIRSTREAM_TOPIC_PARTITIONS": "4",
        "PAIRSTREAM_BROKER_SESSION_TIMEOUT_S": "4",
        "PAIRSTREAM_WEB_PORT": "0",
        "PAIRSTREAM_LLM_MAX_RETRIES": "2",
        "PYTHONUNBUFFERED": "1",
    })
    return env


@pytest.fixture
def start_worker(pairstream_env, tmp_path):
    workers = []

    def start(**env_overrides: str) -> Worker:
        env = {**pairstream_env, **{k: str(v) for k, v in env_overrides.items()}}
        w = Worker(env, tmp_path / f"worker-{len(workers)}.log").start()
        workers.append(w)
        return w

    yield start
    for w in workers:
        w.stop(9)


def produce(broker: EmbeddedBroker, topic: str, values: list[bytes | None], keys: list[bytes | None] | None = None,
            partition: int | None = None) -> None:
    async def run():
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
        await producer.start()
        try:
            futs = [await producer.send(topic, value=v, key=(keys[i] if keys else None), partition=partition)
                    for i, v in enumerate(values)]
            for f in futs:
                await f
        finally:
            await producer.stop()

    asyncio.run(run())


def read_topic(broker: EmbeddedBroker, topic: str, expect: int, timeout: float = 60) -> list[dict]:
    """Read a topic from the beginning (no consumer group) until `expect` records or the timeout."""

    async def run():
        consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False,
                                    auto_offset_reset="earliest")
        await consumer.start()
        records = []
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
                return records
            consumer.assign([TopicPartition(topic, p) for p in parts])
            await consumer.seek_to_beginning()
            while len(records) < expect and time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=500)
                for msgs in batch.values():
                    records.extend({"_key": m.key, **orjson.loads(m.value)} for m in msgs)
        finally:
            await consumer.stop()
        return records

    return asyncio.run(run())
