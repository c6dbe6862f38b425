"""`MiningFeed`: records of another width are skipped and counted, never sizing the window; while the broker is
down it does not leak a producer per record, and it backs off."""

import asyncio
import time
from types import SimpleNamespace

import numpy as np
from aiokafka import AIOKafkaProducer

from schemas import mining
from streams.group import mining_feed
from streams.group.mining_feed import MiningFeed
from streams.local.processes import free_port
from streams.metrics import Metrics
from streams.quality.mining import SentenceWindow
from streams.settings import Settings


def _record(record_id: str, dims: int, embedder: str = "minilm") -> SimpleNamespace:
    vectors = np.eye(dims, dtype=np.float32)[:2]
    value = mining.encode(record_id, ["An anchor.", "A positive."], vectors, embedder)
    return SimpleNamespace(value=value, timestamp=time.time() * 1000)


def _count(metrics: Metrics, event: str) -> float:
    return metrics.mining_feed.labels(event)._value.get()


def test_a_record_of_another_width_is_skipped_and_counted_never_crashing_the_search():
    metrics = Metrics()
    window = SentenceWindow(100, 3600)
    feed = MiningFeed(Settings(), window, "minilm", metrics)
    feed.receive(_record("wide-first", 768))  # before this worker embedded anything: it may size the window...
    own = np.eye(384, dtype=np.float32)[:1]
    assert window.scores(own).shape == (1, 0)  # ...until this worker's own vectors take it back
    feed.receive(_record("wide-again", 768))
    feed.receive(_record("other-model", 384, embedder="another-model"))
    feed.receive(_record("fits", 384))
    assert window.scores(own).shape == (1, 2)
    assert set(window.record_ids) - {None} == {"fits"}
    assert (_count(metrics, "received"), _count(metrics, "refused")) == (2, 2)


async def test_while_the_broker_is_down_one_producer_is_tried_closed_and_backed_off(monkeypatch):
    """Review: every share built a new producer and a failed `start()` was never stopped: one leaked producer
    (its connections and tasks) per record for as long as the broker was down."""
    created = []

    class Counting(AIOKafkaProducer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.stopped = False
            created.append(self)

        async def stop(self):
            self.stopped = True
            await super().stop()

    monkeypatch.setattr(mining_feed, "AIOKafkaProducer", Counting)
    metrics = Metrics()
    feed = MiningFeed(Settings(broker=f"kafka://127.0.0.1:{free_port()}"), SentenceWindow(10, 3600),
                      "minilm", metrics, retry_s=(60.0, 60.0))
    vectors = np.eye(8, dtype=np.float32)[:2]
    for i in range(20):
        feed.share(f"r{i}", ["An anchor.", "A positive."], vectors)
        await asyncio.sleep(0.01)
    await asyncio.wait_for(feed.stop(), 30)
    assert _count(metrics, "failed") == 20
    assert len(created) == 1 and created[0].stopped
