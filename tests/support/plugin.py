"""Shared fixtures: one embedded broker per test session, fake LLM servers, worker subprocesses. Each test gets
its own topic names and consumer group, so tests share the broker without seeing each other's records."""

import uuid

import pytest

from streams.bench.fake_llm import FakeLLM
from streams.local.broker import EmbeddedBroker
from support.processes import Worker, clean_env


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


@pytest.fixture
def names():
    """Unique topic names and consumer group for one test."""
    tag = uuid.uuid4().hex[:8]
    return {"anchors": f"anchors-{tag}", "triplets": f"triplets-{tag}", "dlq": f"dlq-{tag}", "app_id": f"ps-{tag}"}


@pytest.fixture
def pairstream_env(broker, names):
    """Environment for a pairstream subprocess bound to this test's topics on the session broker."""
    return clean_env(
        PAIRSTREAM_BROKER=broker.url,
        PAIRSTREAM_ANCHORS_TOPIC=names["anchors"],
        PAIRSTREAM_TRIPLETS_TOPIC=names["triplets"],
        PAIRSTREAM_DLQ_TOPIC=names["dlq"],
        PAIRSTREAM_APP_ID=names["app_id"],
        PAIRSTREAM_TOPIC_PARTITIONS=4,
        PAIRSTREAM_BROKER_SESSION_TIMEOUT_S=4,
        PAIRSTREAM_WEB_PORT=0,
        PAIRSTREAM_LLM_MAX_RETRIES=2,
        # The fake LLM's canned pairs are built for transport and Kafka tests, not to pass embedding checks;
        # the quality gate has its own tests (tests/quality/), which turn it on.
        PAIRSTREAM_QUALITY="off",
    )


@pytest.fixture
def start_worker(pairstream_env, tmp_path):
    workers = []

    def start(**env_overrides: object) -> Worker:
        env = {**pairstream_env, **{k: str(v) for k, v in env_overrides.items()}}
        w = Worker(env, tmp_path / f"worker-{len(workers)}.log").start()
        workers.append(w)
        return w

    yield start
    for w in workers:
        w.stop(9)
