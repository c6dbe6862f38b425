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


def wait_in_flight(llm: FakeLLM, n: int, timeout: float = 60) -> None:
    """Wait until the fake LLM is serving `n` requests at once."""
    deadline = time.monotonic() + timeout
    while llm.in_flight < n:
        assert time.monotonic() < deadline, f"only {llm.in_flight} requests in flight"
        time.sleep(0.05)


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
