"""The Faust application: configuration, topics and the anchor agent, built from `Settings`.

`create_app()` is a factory (no module-level app) so tests, `demo` and `bench`
can run workers with different settings in one process tree. Collaborators (the
agent, the LLM client, the outage gate, metrics, readiness) are built here and
handed to whoever needs them; none is hung on the app as an attribute.
"""

import logging
import tempfile
from pathlib import Path
from typing import Awaitable, Callable

import faust

from streams.generate.generator import Generator
from streams.generate.limits import limit_for
from streams.generate.llm import LLMClient
from streams.group.follower import TopicFollower
from streams.group.mining_feed import MiningFeed
from streams.group.produced import ProducedIds
from streams.kafka import faust_credentials
from streams.metrics import Metrics, StateReader
from streams.quality.judge import build_judge, build_miner
from streams.settings import Settings
from streams.worker import faust_internals, web
from streams.worker.agent import AnchorAgent
from streams.worker.processor import AnchorProcessor

log = logging.getLogger("pairstream.app")


class PairstreamApp(faust.App):
    """A Faust app with two lifecycle hooks: as soon as it begins to stop, and after it has shut down."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._stopping_hooks: list[Callable[[], None]] = []
        self._shutdown_hooks: list[Callable[[], Awaitable[None]]] = []

    def when_stopping(self, hook: Callable[[], None]) -> None:
        """`hook()` runs before Faust waits for in-flight messages (the agent starts its drain deadline)."""
        self._stopping_hooks.append(hook)

    def when_shut_down(self, hook: Callable[[], Awaitable[None]]) -> None:
        """`await hook()` runs after the agent and the consumer stopped (close connections)."""
        self._shutdown_hooks.append(hook)

    async def on_stop(self) -> None:
        for hook in self._stopping_hooks:
            hook()
        await super().on_stop()

    async def on_shutdown(self) -> None:
        await super().on_shutdown()
        for hook in self._shutdown_hooks:
            await hook()


def faust_options(settings: Settings) -> dict:
    """Faust's configuration for a stateless pairstream worker."""
    session = settings.broker_session_timeout_s
    return dict(
        broker=settings.broker,
        broker_credentials=faust_credentials(settings),
        broker_session_timeout=session,
        broker_heartbeat_interval=min(3.0, session / 4),
        broker_request_timeout=max(90.0, session * 2),
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replicas,
        # No tables, so no changelogs or local state: a worker is stateless and can be scaled freely.
        store="memory://",
        web_enabled=settings.web_port != 0,
        web_port=settings.web_port or 6066,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        # Batch triplets for a few ms: far fewer produce requests per record (broker and worker CPU).
        producer_linger=settings.producer_linger_ms / 1000,
        # aiokafka's request_timeout_ms: each produce request's timeout and a batch's expiry (retried inside aiokafka
        # until then); past it the agent waits and re-sends (streams.worker.delivery). Faust's PRODUCER_REQUEST_TIMEOUT
        # environment variable, if set, wins over this.
        producer_request_timeout=settings.producer_delivery_timeout_s,
        broker_commit_interval=settings.commit_interval_s,
        # At most this many records per poll. Unbounded (Faust's default), one poll turns a whole fetch,
        # 1 MB per partition, into Python objects at once: about 300 MB for 8 partitions of short anchors.
        broker_max_poll_records=1000,
        # A stream that waits on its in-flight LLM calls before a rebalance completes.
        stream_wait_empty=True,
        datadir=str(Path(tempfile.gettempdir()) / f"pairstream-{settings.app_id}"),
    )


def create_app(settings: Settings) -> PairstreamApp:
    app = PairstreamApp(settings.app_id, **faust_options(settings))
    anchors = app.topic(settings.anchors_topic, key_serializer="raw", value_serializer="raw")

    limit = limit_for(settings.concurrency, settings.concurrency_max)
    metrics = Metrics()
    llm = LLMClient(settings.llm_base_url, api_key=settings.llm_api_key, timeout_s=settings.llm_timeout_s,
                    max_connections=limit.ceiling)
    judge = build_judge(settings, metrics)  # None with PAIRSTREAM_QUALITY=off
    miner = build_miner(settings, judge) if judge is not None else None  # one index shared by all anchors in flight
    generator = Generator(llm, settings, limit=limit, metrics=metrics, judge=judge, miner=miner)
    follower = TopicFollower(settings)  # what every worker of the group wrote, read by this one
    produced = ProducedIds(settings.produced_ids_kept).follow(
        follower, settings.triplets_topic, settings.produced_lookback) if settings.skip_produced else None
    if miner is not None and settings.mines_from_group:
        feed = MiningFeed(settings, miner.window, judge.embedder.name, metrics).follow(follower)
        miner.share = feed.share
        app.when_shut_down(feed.stop)
    agent = AnchorAgent(app, AnchorProcessor(settings, generator, produced), limit, settings.drain_timeout_s, metrics,
                        produced, follower if follower.following else None, miner=miner)
    app.agent(anchors, name="pairstream.generate")(agent.run)
    app.when_stopping(agent.begin_shutdown)
    app.when_shut_down(llm.aclose)
    app.when_shut_down(follower.stop)
    if judge is not None:
        app.when_shut_down(judge.aclose)
    faust_internals.install_consumer(app, {settings.anchors_topic}, fetch_max_wait_ms=settings.consumer_fetch_max_wait_ms,
                                     on_revoke=lambda: agent.begin_drain("rebalance"))

    readiness = web.Readiness(app, settings.anchors_topic, agent=agent, llm=llm, gate=generator.gate)
    metrics.state = StateReader(
        anchors_in_flight=lambda: agent.in_flight,
        llm_in_flight=lambda: limit.in_use,
        concurrency_limit=lambda: limit.limit,
        llm_outage=lambda: generator.gate.is_open,
        embeddings_outage=lambda: judge is not None and judge.gate is not None and judge.gate.is_open,
        partitions_assigned=lambda: readiness.assigned or 0,  # the same count /ready reports
        lag=lambda: consumer_lag(app, settings.anchors_topic),
        mining_window=lambda: len(miner.window) if miner is not None else 0,
    )
    if settings.web_port:
        web.install(app, metrics, readiness)

    @app.on_partitions_assigned.connect
    async def _on_assignment(sender, assigned, **kwargs) -> None:
        mine = sum(1 for tp in assigned if tp.topic == settings.anchors_topic)
        readiness.on_assigned(mine)
        log.info("partitions assigned: %d of %s", mine, settings.anchors_topic)

    return app


def consumer_lag(app: faust.App, topic: str) -> list[tuple[str, int, int]]:
    """(topic, partition, lag) for each assigned partition of `topic`: high watermark minus committed offset.

    The high watermark is the one seen by the last fetch; a partition not fetched yet is left out.
    Before this consumer group ever committed on a partition, its lag counts from offset 0.
    """
    try:
        consumer = app.consumer
        assignment = consumer.assignment()
        rows = []
        for tp in sorted(assignment):
            if tp.topic != topic:
                continue
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            committed = faust_internals.committed_offset(consumer, tp) or 0
            rows.append((tp.topic, tp.partition, max(0, highwater - committed)))
        return rows
    except Exception:  # not started, already stopped, or mid-rebalance: no lag to report on this scrape
        return []
