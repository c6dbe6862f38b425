"""Producing an output record through a broker outage: only a refusal of the record itself is final.

**The producer's delivery timeout.** The worker's Faust producer hands aiokafka
`request_timeout_ms` = `PAIRSTREAM_PRODUCER_DELIVERY_TIMEOUT_S` x 1000 (Faust's
`producer_request_timeout`, default 1200 s = 20 minutes, which pairstream keeps; Faust's
own `PRODUCER_REQUEST_TIMEOUT` environment variable, if set, overrides it). aiokafka 0.14
uses that one value three ways:

- the TTL of a batch in its message accumulator (`MessageBatch.expired()`, counted from
  the batch's creation): until then the sender re-sends a batch that failed with a
  retriable error every `retry_backoff_ms` (100 ms), so a shorter outage never reaches
  pairstream; past it the batch fails with its last error (`NodeNotReadyError`,
  `KafkaConnectionError` or `RequestTimedOutError` when the broker is unreachable,
  `NotLeaderForPartitionError` / `LeaderNotAvailableError` when no leader is known);
- the timeout of each produce request (`RequestTimedOutError` when a cut network leaves it
  unanswered);
- how long `send()` waits for room in a full batch (`KafkaTimeoutError`) or for the topic's
  metadata (`UnknownTopicOrPartitionError`); Faust wraps errors raised by `send()` in
  `ProducerSendError`.

So an outage longer than the delivery timeout surfaces as one of those errors. All are
retriable: the record is not refused, the broker just did not take it in time. `send()`
below then waits (backoff, every waiting record woken as soon as one gets through) and
sends it again, for as long as the outage lasts; the anchor is not acked meanwhile, and the
LLM is not asked again. Only a refusal of the record itself (too large, invalid,
unauthorised: aiokafka errors whose `retriable` is False, or a non-Kafka error such as
serialisation) raises, and becomes a dead letter.
"""

import asyncio
import logging
import random
import time
from typing import Any

from aiokafka.errors import KafkaError, KafkaTimeoutError
from faust.exceptions import ProducerSendError

from streams.metrics import Metrics

log = logging.getLogger("pairstream.delivery")


def cause(exc: BaseException) -> BaseException:
    """The producer's own error: what Faust wrapped in ProducerSendError, else `exc`."""
    while isinstance(exc, ProducerSendError) and exc.__cause__ is not None:
        exc = exc.__cause__
    return exc


def is_retriable(exc: BaseException) -> bool:
    """True when the broker did not take the record in time (try again later); False when it refused it for good."""
    err = cause(exc)
    if isinstance(err, KafkaTimeoutError):
        return True  # aiokafka marks it not retriable, but it says "not delivered in time", not "refused"
    if isinstance(err, KafkaError):
        return bool(err.retriable)
    return isinstance(err, (ConnectionError, TimeoutError))


def describe(err: BaseException) -> str:
    """`Type: message` once (aiokafka's messages already start with their type's name)."""
    name, text = type(err).__name__, str(err)
    return text if text.startswith(name) else f"{name}: {text}" if text else name


class BrokerWait:
    """How the agent sends every output record: retriable failures wait and re-send, refusals raise.

    One instance is shared by all records, so an outage is logged once (a warning when the
    first record has to wait, an info line when the broker takes records again), and as soon
    as one waiting record gets through the others are sent again at once.
    """

    def __init__(self, metrics: Metrics, delivery_timeout_s: float, backoff_s: float = 0.5,
                 max_backoff_s: float = 10.0):
        self.metrics = metrics
        self.delivery_timeout_s = delivery_timeout_s
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._outage_since: float | None = None
        self._resends = 0
        self._back = asyncio.Event()

    async def send(self, producer: Any, topic: str, key: bytes | None, value: bytes) -> None:
        delay = self.backoff_s
        while True:
            try:
                await producer.send_and_wait(topic, key, value, None, None, None)
            except Exception as exc:
                if not is_retriable(exc):
                    raise
                self._failed(exc, topic)
                await self._wait(delay)
                delay = min(self.max_backoff_s, delay * 2)
                continue
            self._delivered()
            return

    def _failed(self, exc: BaseException, topic: str) -> None:
        err = cause(exc)
        self.metrics.produce_retries.labels(type(err).__name__).inc()
        self._resends += 1
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            log.warning("waiting for the broker: a record for %s was not delivered within the producer's delivery "
                        "timeout (%.0f s); it and every other record held are sent again until the broker takes them "
                        "(no dead letters, their anchors are not acked meanwhile). Last error: %s",
                        topic, self.delivery_timeout_s, describe(err))

    async def _wait(self, delay: float) -> None:
        try:
            await asyncio.wait_for(self._back.wait(), delay * random.uniform(0.5, 1.0))
        except TimeoutError:
            pass  # backoff over: try again (an earlier wake-up: another record got through)

    def _delivered(self) -> None:
        if self._outage_since is None:
            return
        log.info("the broker takes records again after %.0f s; %d re-sends during the outage",
                 time.monotonic() - self._outage_since, self._resends)
        self._outage_since = None
        self._resends = 0
        back, self._back = self._back, asyncio.Event()
        back.set()  # every record waiting is sent again now
