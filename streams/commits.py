"""Offset commits that never pass an anchor pairstream has not finished.

Faust commits "the highest contiguous acked offset" of each partition. Two things
in faust-streaming 0.15 can make that offset pass a message that is still in
flight, which loses it if the worker dies before it finishes:

- the head-gap check in `Consumer._new_offset` is off by one and skipped when the
  committed offset is 0/None, so acks of k+1.. commit past an unacked k
  (faust-streaming#606);
- during a rebalance Faust acks messages it *skips* (old generation, paused flow)
  without processing them; such an ack can land in the partition's ack list after
  the partition was reassigned and re-fetched, standing in for the real message.

`GatedConsumer` fixes both where they happen: it accepts an ack for a gated topic
only when pairstream released that exact message (`release()` from
`streams.agent.InOrderAcker`, after the output is on the broker), and its head-gap
check refuses to commit when the lowest ack is above the committed offset.
`abandon()` lets a shutdown stop waiting for a message that will not be acked.
"""

from typing import Any, Callable

from faust.types import TP


def gated_consumer_class(base: type, gated_topics: set[str], on_revoke: Callable[[], None] | None = None) -> type:
    """A subclass of the transport's consumer class with the ack gate and the head-gap fix."""

    class GatedConsumer(base):  # type: ignore[misc, valid-type]
        _pairstream_gated = frozenset(gated_topics)

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
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
            if on_revoke is not None:
                on_revoke()  # before Faust waits for in-flight messages
            self._pairstream_released = {k for k in self._pairstream_released if k[0] not in revoked}
            await super().on_partitions_revoked(revoked)

        def _new_offset(self, tp: TP) -> int | None:
            acked = self._acked[tp]
            committed = self._committed_offset[tp]
            # The committed offset is the next offset to read: an ack list starting above it has a hole.
            if acked and committed is not None and not self._gap[tp] and min(acked) > committed:
                return None
            return super()._new_offset(tp)

    return GatedConsumer


def install(app: Any, gated_topics: set[str], on_revoke: Callable[[], None] | None = None) -> None:
    """Make `app` create a `GatedConsumer` (call before the app starts).

    `on_revoke` is called when a rebalance takes partitions away, before Faust waits
    for the messages in flight (the agent starts its drain deadline there).
    """
    transport = app.transport
    transport.Consumer = gated_consumer_class(type(transport).Consumer, gated_topics, on_revoke)
