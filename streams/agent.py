"""The Faust agent: anchors in, up to `concurrency` LLM calls in flight, one output record each.

Delivery is at-least-once and nothing is skipped:
- the stream runs with manual acks (`noack()`); an anchor is acked only after its
  triplet or dead letter is confirmed by the broker;
- acks reach Faust in offset order per partition (`InOrderAcker`), so Faust's
  committed offset can never pass an anchor that is still in flight, whatever
  order the LLM answers in (Faust's own gap logic has committed past in-flight
  messages on out-of-order acks: faust-streaming#606);
- there is no batch barrier: each anchor is its own task, bounded by a semaphore,
  and a full semaphore stops the agent pulling, so Faust's buffers fill and the
  consumer pauses fetching (backpressure instead of unbounded memory).
"""

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field

from faust.types import TP, EventT, StreamT

from schemas import Source
from streams.processor import AnchorProcessor, Outcome

log = logging.getLogger("pairstream.agent")


@dataclass(eq=False)
class Ticket:
    event: EventT
    done: bool = False


@dataclass
class InOrderAcker:
    """Acks events to the stream per partition strictly in the order they were received."""

    stream: StreamT
    pending: dict[TP, deque[Ticket]] = field(default_factory=dict)

    def track(self, event: EventT) -> Ticket:
        ticket = Ticket(event)
        self.pending.setdefault(event.message.tp, deque()).append(ticket)
        return ticket

    async def done(self, ticket: Ticket) -> None:
        ticket.done = True
        queue = self.pending[ticket.event.message.tp]
        while queue and queue[0].done:
            await self.stream.ack(queue.popleft().event)

    @property
    def in_flight(self) -> int:
        return sum(len(q) for q in self.pending.values())


class FatalProduceError(RuntimeError):
    """Neither the record nor its dead letter could be produced: stop without acking."""


@dataclass
class Counters:
    consumed: int = 0
    triplets: int = 0
    dead_letters: int = 0


class AnchorAgent:
    """The body of the Faust agent; `run(stream)` is what `@app.agent` calls."""

    def __init__(self, app, processor: AnchorProcessor, concurrency: int):
        self.app = app
        self.processor = processor
        self.concurrency = concurrency
        self.counters = Counters()
        self._tasks: set[asyncio.Task] = set()

    async def run(self, stream: StreamT) -> None:
        stream = stream.noack()
        acker = InOrderAcker(stream)
        slots = asyncio.Semaphore(self.concurrency)
        try:
            async for event in stream.events():
                await slots.acquire()
                self.counters.consumed += 1
                ticket = acker.track(event)
                task = asyncio.create_task(self._handle(event, ticket, acker, slots))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        finally:
            for task in list(self._tasks):
                task.cancel()

    async def _handle(self, event: EventT, ticket: Ticket, acker: InOrderAcker, slots: asyncio.Semaphore) -> None:
        msg = event.message
        try:
            outcome = await self.processor.process(msg.topic, msg.partition, msg.offset, msg.value)
            await self._produce(outcome, msg)
            await acker.done(ticket)
        except asyncio.CancelledError:
            raise  # not acked: redelivered after restart or rebalance
        except Exception as exc:  # a bug or a broker failure: never ack, stop the worker
            log.exception("fatal error on %s[%s]@%s; stopping without acking it", msg.topic, msg.partition, msg.offset)
            await self.app.crash(exc)
        finally:
            slots.release()

    async def _produce(self, outcome: Outcome, msg) -> None:
        try:
            await self.app.producer.send_and_wait(outcome.topic, outcome.key, outcome.value, None, None, None)
        except Exception as exc:
            if outcome.kind != "triplet":
                raise FatalProduceError(f"dead letter could not be produced: {exc!r}") from exc
            source = Source(topic=msg.topic, partition=msg.partition, offset=msg.offset)
            outcome = self.processor.produce_failure(outcome, msg.value, source, exc)
            try:
                await self.app.producer.send_and_wait(outcome.topic, outcome.key, outcome.value, None, None, None)
            except Exception as exc2:
                raise FatalProduceError(f"neither triplet nor dead letter could be produced: {exc2!r}") from exc2
        if outcome.kind == "triplet":
            self.counters.triplets += 1
        else:
            self.counters.dead_letters += 1
            log.warning("dead letter id=%s stage=%s error=%s", outcome.key.decode() if outcome.key else None,
                        outcome.stage, outcome.error_kind)
