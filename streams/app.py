"""The Faust application: configuration, topics and the anchor agent, built from `Settings`.

`create_app()` is a factory (no module-level app) so tests, `demo` and `bench`
can run workers with different settings in one process tree.
"""

import logging
import tempfile
from pathlib import Path

import faust

from streams import commits, web
from streams.agent import AnchorAgent
from streams.generator import Generator
from streams.kafka import faust_credentials, install_fetch_max_wait
from streams.limits import limit_for
from streams.llm import LLMClient
from streams.metrics import Metrics, StateReader
from streams.outage import OutageGate
from streams.processor import AnchorProcessor
from streams.settings import Settings

log = logging.getLogger("pairstream.app")


class PairstreamApp(faust.App):
    """A Faust app that starts the in-flight drain deadline as soon as it begins to stop."""

    pairstream_runner: AnchorAgent | None = None
    pairstream_llm: LLMClient | None = None
    pairstream_gate: OutageGate | None = None
    pairstream_metrics: Metrics | None = None

    async def on_stop(self) -> None:
        if self.pairstream_runner is not None:
            self.pairstream_runner.begin_shutdown()
        await super().on_stop()

    async def on_shutdown(self) -> None:
        """After the agent and the consumer stopped: close the LLM connections."""
        await super().on_shutdown()
        if self.pairstream_llm is not None:
            await self.pairstream_llm.aclose()


def create_app(settings: Settings) -> faust.App:
    session = settings.broker_session_timeout_s
    app = PairstreamApp(
        settings.app_id,
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
        broker_commit_interval=settings.commit_interval_s,
        # At most this many records per poll. Unbounded (Faust's default), one poll turns a whole fetch,
        # 1 MB per partition, into Python objects at once: about 300 MB for 8 partitions of short anchors.
        broker_max_poll_records=1000,
        # A stream that waits on its in-flight LLM calls before a rebalance completes.
        stream_wait_empty=True,
        datadir=str(Path(tempfile.gettempdir()) / f"pairstream-{settings.app_id}"),
    )
    anchors = app.topic(settings.anchors_topic, key_serializer="raw", value_serializer="raw")

    limit = limit_for(settings.concurrency, settings.concurrency_max)
    metrics = Metrics()
    llm = LLMClient(settings.llm_base_url, api_key=settings.llm_api_key, timeout_s=settings.llm_timeout_s,
                    max_connections=limit.ceiling)
    generator = Generator(llm, settings, limit=limit, metrics=metrics)
    runner = AnchorAgent(app, AnchorProcessor(settings, generator), limit, settings.drain_timeout_s, metrics)
    app.agent(anchors, name="pairstream.generate")(runner.run)
    app.pairstream_runner = runner  # for tests, shutdown and metrics
    app.pairstream_llm = llm
    app.pairstream_gate = generator.gate
    app.pairstream_metrics = metrics
    commits.install(app, {settings.anchors_topic}, on_revoke=lambda: runner.begin_drain("rebalance"))
    install_fetch_max_wait(app, settings.consumer_fetch_max_wait_ms)

    readiness = web.Readiness(app, settings.anchors_topic)
    metrics.state = StateReader(
        anchors_in_flight=lambda: runner.in_flight,
        llm_in_flight=lambda: limit.in_use,
        concurrency_limit=lambda: limit.limit,
        llm_outage=lambda: generator.gate.is_open,
        partitions_assigned=lambda: readiness.assigned or 0,  # the same count /ready reports
        lag=lambda: consumer_lag(app, settings.anchors_topic),
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
    except Exception:  # not started or already stopped: nothing assigned
        return []
    rows = []
    for tp in sorted(assignment):
        if tp.topic != topic:
            continue
        highwater = consumer.highwater(tp)
        if highwater is None:
            continue
        committed = consumer._committed_offset.get(tp) or 0
        rows.append((tp.topic, tp.partition, max(0, highwater - committed)))
    return rows
