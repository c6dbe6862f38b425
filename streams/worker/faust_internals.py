"""Every use of faust-streaming's and aiokafka's private internals, in one room.

pairstream needs four things their public APIs do not offer:

1. **Commits that never pass an unfinished anchor** (`GatedConsumer`). Faust commits
   "the highest contiguous acked offset" of each partition. Two things in
   faust-streaming 0.15 can make that offset pass a message still in flight, which
   loses it if the worker dies before it finishes:
   - the head-gap check in `Consumer._new_offset` is off by one and skipped when the
     committed offset is 0/None, so acks of k+1.. commit past an unacked k
     (faust-streaming#606);
   - during a rebalance Faust acks messages it *skips* (old generation, paused flow)
     without processing them; such an ack can land in the partition's ack list after
     the partition was reassigned and re-fetched, standing in for the real message.
   `GatedConsumer` accepts an ack for a gated topic only when pairstream released that
   exact message (`release()`, after the output is on the broker), and its head-gap
   check refuses to commit when the lowest ack is above the committed offset.
   `abandon()` lets a shutdown stop waiting for a message that will not be acked.
   On a revoke it waits for the agent's drain and commits the revoked partitions' acks
   before Faust forgets them (faust-streaming 0.15 drops them before its own commit).
2. **A bounded fetch wait** (`fetch_max_wait_ms`; Faust hard-codes 1500 ms).
3. **Read-only views** for metrics and readiness: the committed offset of a partition,
   and aiokafka's producer inside Faust's (to ask the broker for metadata).
4. **No terminal spinner** on the worker (it turns the root logger to DEBUG).

Everything here was verified on the versions pinned in pyproject.toml
(`VERIFIED_ON`). `verify()` runs when the app is built and fails loudly if a
class lost what we patch; instance attributes are checked when the objects are
created. Nothing else in pairstream touches a private name of either library.
"""

from typing import Any, Callable

import aiokafka
import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

VERIFIED_ON = {"faust-streaming": "0.15", "aiokafka": "0.14"}  # minor versions; pyproject pins the same


class InternalsChanged(RuntimeError):
    """faust-streaming or aiokafka no longer has an internal pairstream relies on: do not run."""


def _require(obj: Any, *names: str) -> None:
    missing = [n for n in names if not hasattr(obj, n)]
    if missing:
        what = obj.__name__ if isinstance(obj, type) else type(obj).__name__
        raise InternalsChanged(
            f"{what} has no {', '.join(missing)}: pairstream's patches were verified on faust-streaming "
            f"{VERIFIED_ON['faust-streaming']}.x and aiokafka {VERIFIED_ON['aiokafka']}.x "
            f"(installed: faust-streaming {faust.__version__}, aiokafka {aiokafka.__version__})")


def verify() -> None:
    """Check the classes pairstream patches still have what it patches (called when an app is built)."""
    _require(faust_aiokafka.Consumer, "_new_offset", "ack", "on_partitions_revoked", "_new_consumer_thread")
    _require(faust_aiokafka.AIOKafkaConsumerThread, "_create_worker_consumer")


# -- 1. the commit gate ---------------------------------------------------------------------------------

class GatedConsumerMixin:
    """Mixed in before the transport's consumer class by `install_consumer`."""

    _pairstream_gated: frozenset[str] = frozenset()
    _pairstream_on_revoke: Callable[[], None] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _require(self, "_unacked_messages", "_acked", "_committed_offset", "_gap")
        self._pairstream_released: set[tuple[TP, int]] = set()

    def release(self, message: Any) -> None:
        """pairstream finished this message: its ack may count toward a commit."""
        self._pairstream_released.add((message.tp, message.offset))

    def abandon(self, message: Any) -> None:
        """pairstream gave this message up (shutdown deadline): stop waiting for its ack; never commit it."""
        self._unacked_messages.discard(message)

    def ack(self, message: Any) -> bool:
        if message.topic in self._pairstream_gated:
            key = (message.tp, message.offset)
            if key not in self._pairstream_released:
                return False  # an ack pairstream did not give (a skipped message): never safe to commit
            self._pairstream_released.discard(key)
        return super().ack(message)

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        if revoked and self._pairstream_on_revoke is not None:  # (a first join revokes nothing)
            drained = self._pairstream_on_revoke()  # the agent's drain: in-flight anchors finish or are given up
            if drained is not None:
                await drained
        # Faust's own handler forgets the revoked partitions' acks (`_acked`, `_committed_offset`) before the
        # app's `wait_empty` commits, so every anchor acked since the last periodic commit was re-read by the
        # partition's next owner and generated again. Commit them while they are still known and assigned.
        # (Twice: while a periodic commit runs, `commit()` waits for it and returns without committing.)
        for _ in range(2):
            await self.commit(revoked)
        self._pairstream_released = {k for k in self._pairstream_released if k[0] not in revoked}
        await super().on_partitions_revoked(revoked)

    def _new_offset(self, tp: TP) -> int | None:
        acked = self._acked[tp]
        committed = self._committed_offset[tp]
        # The committed offset is the next offset to read: an ack list starting above it has a hole.
        if acked and committed is not None and not self._gap[tp] and min(acked) > committed:
            return None
        return super()._new_offset(tp)


def gated_consumer_class(base: type, gated_topics: set[str], on_revoke: Callable[[], None] | None = None) -> type:
    """A subclass of the transport's consumer class with the ack gate and the head-gap fix."""
    return type("GatedConsumer", (GatedConsumerMixin, base),
                {"_pairstream_gated": frozenset(gated_topics), "_pairstream_on_revoke": staticmethod(on_revoke)
                 if on_revoke else None})


def gated(consumer: Any) -> GatedConsumerMixin:
    """The app's consumer as a `GatedConsumer`; raises if `install_consumer` was not called (never a silent no-op)."""
    if not isinstance(consumer, GatedConsumerMixin):
        raise InternalsChanged(f"the app's consumer is a {type(consumer).__name__}, not a GatedConsumer: "
                               "install_consumer() must run before the app starts")
    return consumer


# -- 2. the fetch wait ----------------------------------------------------------------------------------

def fetch_tuned_consumer_class(base: type, fetch_max_wait_ms: int) -> type:
    """A subclass whose aiokafka consumer long-polls for at most `fetch_max_wait_ms`.

    Apache Kafka answers a fetch as soon as data arrives, so this only bounds idle
    polls there. Some Kafka-compatible brokers (the embedded Tansu among them) hold
    a fetch over several partitions for the whole wait even when data is waiting,
    which adds up to that much latency to every anchor.
    """

    class FetchTunedConsumer(base):  # type: ignore[misc, valid-type]
        def _new_consumer_thread(self) -> Any:
            thread = super()._new_consumer_thread()
            create = thread._create_worker_consumer

            def create_tuned(transport: Any) -> Any:
                consumer = create(transport)
                _require(consumer, "_fetch_max_wait_ms")
                consumer._fetch_max_wait_ms = fetch_max_wait_ms  # read by AIOKafkaConsumer.start()
                return consumer

            thread._create_worker_consumer = create_tuned
            return thread

    return FetchTunedConsumer


def install_consumer(app: faust.App, gated_topics: set[str], *, fetch_max_wait_ms: int,
                     on_revoke: Callable[[], None] | None = None) -> None:
    """Make `app` create a consumer with the commit gate and the fetch wait (call before the app starts).

    `on_revoke` is called when a rebalance takes partitions away, before Faust waits
    for the messages in flight (the agent starts its drain deadline there).
    """
    verify()
    transport = app.transport
    base = gated_consumer_class(type(transport).Consumer, gated_topics, on_revoke)
    transport.Consumer = fetch_tuned_consumer_class(base, fetch_max_wait_ms)


# -- 3. read-only views ---------------------------------------------------------------------------------

def committed_offset(consumer: Any, tp: TP) -> int | None:
    """The offset this consumer last committed on `tp` (the next one to read), or None."""
    return consumer._committed_offset.get(tp)


def kafka_producer(app: faust.App) -> aiokafka.AIOKafkaProducer | None:
    """aiokafka's producer inside Faust's, or None before it started."""
    return getattr(app.producer, "_producer", None)


# -- 4. the worker's terminal --------------------------------------------------------------------------

def without_spinner(worker: faust.Worker) -> faust.Worker:
    """Faust's terminal spinner sets the root logger to DEBUG at levels >= warning, so that every debug
    call of every library (httpcore: several per request) builds a log record. A worker has no terminal."""
    _require(worker, "spinner")
    worker.spinner = None
    return worker
