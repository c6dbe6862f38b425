"""The gated consumer (real faust-streaming consumer class, not started): only acks pairstream released count,
and a hole at the head of a partition's acks is never committed past (faust-streaming#606). What the patches
rely on is checked when the app is built: a vanished internal stops the worker instead of silently doing nothing."""

import faust.transport.consumer
import pytest
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from faust.types.tuples import ConsumerMessage

from streams.settings import Settings
from streams.worker import faust_internals
from streams.worker.app import create_app
from streams.worker.faust_internals import InternalsChanged, gated

TOPIC = "anchors-unit"
TP0 = TP(TOPIC, 0)


def message(offset: int, topic: str = TOPIC) -> ConsumerMessage:
    return ConsumerMessage(topic, 0, offset, 0.0, 0, [], None, b"x", 0, 1, 1, TP(topic, 0))


@pytest.fixture
def consumer():
    app = create_app(Settings(anchors_topic=TOPIC, web_port=0))
    consumer = app.consumer
    app.topics._acking_topics.update({TOPIC, "other"})  # what the conductor does when the agent starts
    return consumer


def test_ack_that_pairstream_did_not_release_is_refused(consumer):
    skipped = message(0)  # Faust acks messages it skips in a rebalance, unprocessed
    assert skipped.ack(consumer) is False
    assert consumer._acked[TP0] == [] and consumer._new_offset(TP0) is None


def test_released_acks_commit_up_to_the_highest_contiguous_offset(consumer):
    for m in map(message, range(3)):
        consumer.release(m)
        assert m.ack(consumer) is True
    assert consumer._new_offset(TP0) == 3


def test_hole_at_the_head_is_not_committed_past(consumer):
    consumer._committed_offset[TP0] = 5  # next offset to read is 5; offset 5 is still in flight
    for m in (message(6), message(7)):
        consumer.release(m)
        m.ack(consumer)
    assert consumer._new_offset(TP0) is None
    five = message(5)
    consumer.release(five)
    five.ack(consumer)
    assert consumer._new_offset(TP0) == 8


def test_other_topics_are_not_gated(consumer):
    m = message(0, topic="other")
    assert m.ack(consumer) is True


def test_abandoned_message_is_no_longer_waited_for_and_never_acked(consumer):
    m = message(0)
    consumer.track_message(m)
    assert m in consumer.unacked
    consumer.abandon(m)
    assert m not in consumer.unacked and consumer._acked[TP0] == []


@pytest.mark.parametrize("owners, name", [
    ([faust.transport.consumer.Consumer], "_new_offset"),
    ([faust_aiokafka.Consumer, faust.transport.consumer.ThreadDelegateConsumer], "_new_consumer_thread"),
    ([faust_aiokafka.AIOKafkaConsumerThread], "_create_worker_consumer"),
])
def test_a_patched_method_that_vanished_stops_the_app_from_being_built(monkeypatch, owners, name):
    for owner in owners:  # every class of the MRO that defines it
        monkeypatch.delattr(owner, name)
    with pytest.raises(InternalsChanged, match=name):
        create_app(Settings(anchors_topic=TOPIC, web_port=0))


def test_an_internal_attribute_that_vanished_fails_when_the_consumer_is_created(monkeypatch):
    init = faust.transport.consumer.Consumer.__init__

    def init_without_gap(self, *args, **kwargs):
        init(self, *args, **kwargs)
        del self._gap

    monkeypatch.setattr(faust.transport.consumer.Consumer, "__init__", init_without_gap)
    app = create_app(Settings(anchors_topic=TOPIC, web_port=0))
    with pytest.raises(InternalsChanged, match="_gap"):
        app.consumer


def test_the_agent_refuses_a_consumer_without_the_gate():
    app = create_app(Settings(anchors_topic=TOPIC, web_port=0))
    assert gated(app.consumer) is app.consumer
    with pytest.raises(InternalsChanged, match="not a GatedConsumer"):
        gated(object())


def test_committed_offset_and_lag_read_the_consumer(consumer):
    consumer._committed_offset[TP0] = 7
    assert faust_internals.committed_offset(consumer, TP0) == 7
    assert faust_internals.committed_offset(consumer, TP(TOPIC, 3)) is None
