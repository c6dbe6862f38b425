"""The sink's stop path without a broker: a dataset that cannot close must not keep the consumer in its group
(issue 23 item 6: `dataset.close()` raising skipped `consumer.stop()`)."""

import asyncio

import pytest

from streams.dataset.disk import StorageError
from streams.dataset.sink import Sink, SinkOptions
from streams.settings import Settings


class StoppedConsumer:
    """Enough of AIOKafkaConsumer for a sink that is asked to stop at once."""

    def __init__(self):
        self.stopped = False

    def subscribe(self, topics, listener):
        pass

    async def start(self):
        pass

    async def stop(self):
        self.stopped = True


@pytest.mark.parametrize("clean", [True, False])
def test_the_consumer_leaves_the_group_even_when_the_dataset_cannot_close(tmp_path, monkeypatch, clean):
    consumer = StoppedConsumer()

    def broken(*_):
        raise StorageError("cannot write the dataset")

    async def run():
        sink = Sink(Settings(), tmp_path, SinkOptions())  # aiokafka wants a running loop
        sink.consumer = consumer
        monkeypatch.setattr(sink.dataset, "close" if clean else "checkpoint", broken)
        stop = asyncio.Event()
        stop.set()
        await sink.run(None, stop)

    with pytest.raises(StorageError):
        asyncio.run(run())
    assert consumer.stopped
