"""The worker's operational endpoints on its web port: `/health`, `/ready` and `/metrics`.

- `/health`: the process and its event loop are alive (a liveness probe: restart when it fails).
- `/ready`: the worker can do its job now. Three checks, each with a detail:
  the broker answers a metadata request, the consumer group has given this worker
  its assignment (not rebalancing, not stopping), and the LLM server answers
  (`GET /models`, API key accepted, no outage in progress). 503 when any fails.
- `/metrics`: Prometheus exposition of `streams.metrics`.

Checks are active and short (a few seconds at most), so a dead broker or LLM
shows up on the next probe even when no anchors are flowing.
"""

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from streams.generate.llm import LLMClient
from streams.generate.outage import OutageGate
from streams.metrics import CONTENT_TYPE, Metrics
from streams.worker.agent import AnchorAgent
from streams.worker.faust_internals import kafka_producer

CHECK_TIMEOUT_S = 3.0


@dataclass
class Check:
    ok: bool
    detail: str


class Readiness:
    """Runs the readiness checks against a running worker: its app, agent, LLM client and outage gate."""

    def __init__(self, app: Any, anchors_topic: str, *, agent: AnchorAgent, llm: LLMClient, gate: OutageGate):
        self.app = app
        self.anchors_topic = anchors_topic
        self.agent, self.llm_client, self.gate = agent, llm, gate
        self.assigned: int | None = None  # anchors partitions of the last assignment; None before the first

    def on_assigned(self, partitions: int) -> None:
        self.assigned = partitions

    async def checks(self) -> dict[str, Check]:
        broker, llm = await asyncio.gather(self.broker(), self.llm())
        return {"broker": broker, "partitions": self.partitions(), "llm": llm}

    async def broker(self) -> Check:
        producer = kafka_producer(self.app)
        if producer is None:
            return Check(False, "producer not started")
        started = time.perf_counter()
        try:
            metadata = await asyncio.wait_for(producer.client.fetch_all_metadata(), CHECK_TIMEOUT_S)
        except Exception as exc:  # a timeout or any Kafka error: not reachable
            return Check(False, f"no metadata: {type(exc).__name__}")
        return Check(True, f"{len(metadata.brokers())} broker(s), {1000 * (time.perf_counter() - started):.0f} ms")

    def partitions(self) -> Check:
        if self.agent.stopping:
            return Check(False, "stopping")
        if self.app.rebalancing or self.assigned is None:
            return Check(False, "waiting for the consumer group's assignment")
        return Check(True, f"{self.assigned} partition(s) of {self.anchors_topic}")

    async def llm(self) -> Check:
        if self.gate.is_open:
            return Check(False, "outage: requests are held while the backend is probed")
        problem = await self.llm_client.probe(CHECK_TIMEOUT_S)
        return Check(problem is None, problem or "answering")


def install(app: Any, metrics: Metrics, readiness: Readiness) -> None:
    """Add the three views to the Faust web server of `app`."""

    @app.page("/health")
    async def health(view, request):
        return view.json({"status": "ok"})

    @app.page("/ready")
    async def ready(view, request):
        checks = await readiness.checks()
        ok = all(c.ok for c in checks.values())
        body = {"ready": ok, "checks": {name: {"ok": c.ok, "detail": c.detail} for name, c in checks.items()}}
        return view.json(body, status=200 if ok else 503)

    @app.page("/metrics")
    async def prometheus(view, request):
        return view.bytes(metrics.exposition(), content_type=CONTENT_TYPE)
