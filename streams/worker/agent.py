"""The Faust agent: anchors in, up to `concurrency` LLM calls in flight, one output record each.

Delivery is at-least-once and nothing is skipped:
- the stream runs with manual acks (`noack()`); an anchor is acked only after its
  triplet or dead letter is confirmed by the broker;
- acks reach Faust in offset order per partition (`InOrderAcker`), so Faust's
  committed offset can never pass an anchor that is still in flight, whatever
  order the LLM answers in (Faust's own gap logic has committed past in-flight
  messages on out-of-order acks: faust-streaming#606); `streams.worker.faust_internals` makes
  the consumer refuse every other ack;
- on shutdown and when partitions are revoked, in-flight anchors get
  `drain_timeout_s` to finish; the rest are cancelled and abandoned (never acked),
  so they are redelivered; an anchor from an earlier consumer-group generation is
  never acked (its partition was re-read from the committed offset); on a revoke
  no new anchor is started, and what finished is committed before the partitions
  change hands, so a graceful rebalance generates nothing twice;
- there is no batch barrier: each anchor is its own task. The concurrency limit
  (`streams.generate.limits`) bounds LLM requests; the agent holds at most twice that many
  anchors, so one is always ready when a request finishes, and a produce that
  waits for its batch does not hold an LLM slot. Holding the limit stops the
  agent pulling, so Faust's buffers fill and the consumer pauses fetching
  (backpressure instead of unbounded memory);
- a broker outage longer than the producer's delivery timeout (default 1200 s) does not
  turn triplets into dead letters: the record waits and is sent again when the broker is
  back (`streams.worker.delivery`), its anchor unacked and not generated again; only a
  record the broker refuses for good becomes a dead letter;
- a redelivered anchor whose triplet the group already delivered (its id seen on the triplets
  topic, `streams.group.produced`) is acked without an LLM call; a dead-lettered one is generated again;
- a record's sentences become mining candidates (here and in the group) only once its triplet is
  acknowledged by the broker (`StreamMiner.delivered`).
"""

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from faust.types import TP, EventT, StreamT

from schemas import Source
from streams.generate.limits import ConcurrencyLimit
from streams.group.follower import TopicFollower
from streams.group.produced import ProducedIds
from streams.metrics import Metrics
from streams.quality.mining import StreamMiner
from streams.worker.delivery import BrokerWait, cause
from streams.worker.faust_internals import gated
from streams.worker.processor import AnchorProcessor, Outcome

log = logging.getLogger("pairstream.agent")


@dataclass(eq=False)
class Ticket:
    event: EventT
    done: bool = False


@dataclass
class InOrderAcker:
    """Acks events to the stream per partition strictly in the order they were received."""

    stream: StreamT
    release: Callable[[Any], None] | None = None  # the gated consumer's `release` (faust_internals)
    generation: Callable[[], int] | None = None  # the consumer group's current generation
    pending: dict[TP, deque[Ticket]] = field(default_factory=dict)

    def track(self, event: EventT) -> Ticket:
        ticket = Ticket(event)
        self.pending.setdefault(event.message.tp, deque()).append(ticket)
        return ticket

    async def done(self, ticket: Ticket) -> None:
        ticket.done = True
        queue = self.pending.get(ticket.event.message.tp)
        while queue and queue[0].done:
            event = queue.popleft().event
            if self.is_stale(event):
                continue  # from before a rebalance: the partition was re-read, this offset is redelivered
            if self.release is not None:
                self.release(event.message)
            await self.stream.ack(event)

    def is_stale(self, event: EventT) -> bool:
        return self.generation is not None and event.message.generation_id != self.generation()

    def forget_all(self) -> None:
        """After abandoning in-flight anchors in a rebalance: nothing before it may be acked any more."""
        self.pending.clear()

    @property
    def in_flight(self) -> int:
        return sum(len(q) for q in self.pending.values())


class FatalProduceError(RuntimeError):
    """The producer refused the dead letter for good (not an outage, which waits): stop without acking."""


class AnchorAgent:
    """The body of the Faust agent; `run(stream)` is what `@app.agent` calls."""

    def __init__(self, app, processor: AnchorProcessor, limit: ConcurrencyLimit, drain_timeout_s: float = 30.0,
                 metrics: Metrics | None = None, produced: ProducedIds | None = None,
                 follower: TopicFollower | None = None, follower_timeout_s: float = 60.0,
                 miner: StreamMiner | None = None):
        self.app = app
        self.processor = processor
        self.produced = produced
        self.miner = miner  # told which records were delivered, so only those are mined from
        self.follower = follower  # what the group wrote (ids, mining sentences), read before the first anchor
        self.follower_timeout_s = follower_timeout_s
        self.limit = limit
        self.drain_timeout_s = drain_timeout_s
        self.metrics = metrics or Metrics()
        # How every output record is sent: through broker outages longer than the producer's delivery timeout.
        self.delivery = BrokerWait(self.metrics, processor.settings.producer_delivery_timeout_s)
        self._room = asyncio.Event()
        self._tasks: dict[asyncio.Task, EventT] = {}
        self._acker: InOrderAcker | None = None
        self._stopping = False
        self._abandoning = False  # shutting down: abandon everything
        self._abandoned_generation = -1  # a rebalance drain expired: abandon events of this generation or older
        self._drain: asyncio.Task | None = None

    async def run(self, stream: StreamT) -> None:
        stream = stream.noack()
        acker = self._acker = InOrderAcker(stream, gated(self.app.consumer).release,
                                           lambda: self.app.consumer_generation_id)
        if self.follower is not None:  # know what the group produced before the first anchor is taken
            await self.follower.ready(self.follower_timeout_s)
        try:
            async for event in stream.events():
                await self._wait_for_room()
                if (self._abandoning or acker.is_stale(event)
                        or event.message.generation_id <= self._abandoned_generation):
                    self._abandon(event)
                    continue
                self.metrics.anchors_consumed.inc()
                ticket = acker.track(event)
                task = asyncio.create_task(self._handle(event, ticket, acker))
                self._tasks[task] = event
                task.add_done_callback(self._forget)
        finally:
            self._cancel_in_flight()

    @property
    def max_anchors(self) -> int:
        """Anchors held at once: twice the LLM limit (one waiting for each slot)."""
        return 2 * self.limit.limit

    async def _wait_for_room(self) -> None:
        while len(self._tasks) >= self.max_anchors:
            self._room.clear()
            await self._room.wait()

    def _forget(self, task: asyncio.Task) -> None:
        self._tasks.pop(task, None)
        self._room.set()

    def _cancel_in_flight(self) -> int:
        tasks = list(self._tasks.items())
        for task, event in tasks:
            task.cancel()
            self._abandon(event)
        return len(tasks)

    def _abandon(self, event: EventT) -> None:
        """Give up an anchor without acking it, so Faust's shutdown stops waiting for it; it is redelivered."""
        gated(self.app.consumer).abandon(event.message)

    def begin_shutdown(self) -> None:
        """Called when the worker starts stopping, before Faust waits for in-flight anchors."""
        self._stopping = True
        self.begin_drain("shutdown")

    def begin_drain(self, reason: str) -> asyncio.Future:
        """Give in-flight anchors `drain_timeout_s` to finish, then abandon the rest; returns the drain.

        Called on shutdown and when partitions are revoked (the consumer awaits the drain, then commits the
        revoked partitions): without a deadline a stalled LLM would hold a rebalance, and with it the whole
        consumer group, for as long as it stalls.
        """
        if not self._stopping:
            # Start nothing more of this generation: an anchor started now would run outside the drain's deadline
            # and be generated again by the partition's next owner, which re-reads it from the offset committed at
            # the revoke. Given up unstarted, it costs no LLM call.
            self._abandoned_generation = self.app.consumer_generation_id
        if self._drain is None or self._drain.done():
            self._drain = asyncio.ensure_future(self._drain_within_deadline(reason))
        return self._drain

    async def _drain_within_deadline(self, reason: str) -> None:
        started = time.monotonic()
        in_flight = len(self._tasks)
        if in_flight:
            log.info("%s: waiting up to %.0fs for %d anchors in flight", reason, self.drain_timeout_s, in_flight)
        deadline = started + self.drain_timeout_s
        while self._tasks and time.monotonic() < deadline:
            await asyncio.wait(list(self._tasks), timeout=deadline - time.monotonic())
        if self._stopping:
            self._abandoning = True
        if self._tasks:
            n = self._cancel_in_flight()
            if not self._stopping and self._acker is not None:
                self._acker.forget_all()
            log.warning("%s: %d anchors still in flight after %.0fs; not committed, they will be redelivered",
                        reason, n, self.drain_timeout_s)
        elif in_flight:
            log.info("%s: in-flight anchors finished in %.1fs", reason, time.monotonic() - started)

    async def _handle(self, event: EventT, ticket: Ticket, acker: InOrderAcker) -> None:
        msg = event.message
        try:
            outcome = await self.processor.process(msg.topic, msg.partition, msg.offset, msg.value)
            if outcome.kind == "skipped":
                self.metrics.redeliveries_skipped.inc()
            else:
                self._settled(await self._produce(outcome, msg))
            await acker.done(ticket)
        except asyncio.CancelledError:
            raise  # not acked: redelivered after restart or rebalance
        except Exception as exc:  # a bug or a broker failure: never ack, stop the worker
            log.exception("fatal error on %s[%s]@%s; stopping without acking it", msg.topic, msg.partition, msg.offset)
            await self.app.crash(exc)

    def _settled(self, outcome: Outcome) -> None:
        """What the broker now holds for this anchor: a triplet is done (a redelivery skips it) and its sentences
        can be mined; a dead letter is neither."""
        if not outcome.key:
            return
        record_id = outcome.key.decode()
        if outcome.kind == "triplet":
            if self.produced is not None:
                self.produced.add(record_id)
            if self.miner is not None:
                self.miner.delivered(record_id)
        elif self.miner is not None:
            self.miner.forget(record_id)

    async def _produce(self, outcome: Outcome, msg) -> Outcome:
        """Send the outcome and return what was sent; a retriable failure waits and re-sends
        (`streams.worker.delivery`), it never ends here.

        A triplet the broker refuses for good (too large, invalid, unauthorised) becomes a dead letter; a dead
        letter refused for good stops the worker without acking the anchor.
        """
        try:
            await self.delivery.send(self.app.producer, outcome.topic, outcome.key, outcome.value)
        except Exception as exc:
            if outcome.kind != "triplet":
                raise FatalProduceError(f"dead letter refused by the producer: {cause(exc)!r}") from exc
            source = Source(topic=msg.topic, partition=msg.partition, offset=msg.offset)
            outcome = self.processor.produce_failure(outcome, msg.value, source, cause(exc))
            try:
                await self.delivery.send(self.app.producer, outcome.topic, outcome.key, outcome.value)
            except Exception as exc2:
                raise FatalProduceError(f"neither triplet nor dead letter accepted: {cause(exc2)!r}") from exc2
        if outcome.kind == "triplet":
            self.metrics.triplets_produced.inc()
        else:
            self.metrics.dead_letters.labels(outcome.stage, outcome.error_kind).inc()
            record_id = outcome.key.decode() if outcome.key else None
            fields = {"record_id": record_id, "stage": outcome.stage, "error": outcome.error_kind,
                      "reason": outcome.reason, "source": f"{msg.topic}[{msg.partition}]@{msg.offset}"}
            log.warning("dead letter id=%s stage=%s error=%s source=%s: %s", record_id, outcome.stage,
                        outcome.error_kind, fields["source"], outcome.reason, extra={"pairstream": fields})
        return outcome

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    @property
    def stopping(self) -> bool:
        return self._stopping
