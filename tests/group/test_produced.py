"""`ProducedIds`: only the triplets topic teaches it (a dead-lettered id is generated again), and what it keeps is
bounded and compact."""

import tracemalloc
import uuid
from types import SimpleNamespace

from streams.group.produced import ProducedIds
from streams.settings import Settings


class _Follower:
    def __init__(self):
        self.topics = {}

    def follow(self, topic, lookback, handle, **kwargs):
        self.topics[topic] = (lookback, handle)


def test_it_learns_from_the_triplets_topic_only():
    follower = _Follower()
    produced = ProducedIds(100).follow(follower, "triplets", 50)
    assert set(follower.topics) == {"triplets"} and follower.topics["triplets"][0] == 50
    follower.topics["triplets"][1](SimpleNamespace(key=b"t-1", value=b"{}"))
    assert "t-1" in produced and "t-2" not in produced and len(produced) == 1


def test_the_oldest_ids_are_forgotten_past_capacity_and_a_repeat_takes_no_room():
    produced = ProducedIds(100)
    for i in range(250):
        produced.add(f"id-{i}")
        produced.add(f"id-{i}")
    assert len(produced) == 100
    assert all(f"id-{i}" in produced for i in range(150, 250))
    assert not any(f"id-{i}" in produced for i in range(150))


def test_by_default_it_keeps_what_the_lookback_reads():
    assert Settings(produced_lookback=20_000, topic_partitions=8).produced_ids_kept == 160_000
    assert Settings(produced_lookback=10, topic_partitions=2).produced_ids_kept == 10_000
    assert Settings(produced_capacity=500).produced_ids_kept == 500


def test_an_id_costs_under_100_bytes():
    """Review: 1,000,000 id strings cost 154 MB a worker; a hash of each is kept instead."""
    ids = [uuid.uuid4().hex for _ in range(50_000)]
    tracemalloc.start()
    try:
        produced = ProducedIds(len(ids))
        for record_id in ids:
            produced.add(record_id)
        used, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(produced) == len(ids)
    assert used / len(ids) < 100, f"{used / len(ids):.0f} bytes an id"
