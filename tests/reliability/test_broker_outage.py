"""The network to the broker is cut for longer than the producer's delivery timeout (shortened to 3 s here;
1200 s by default, Faust's `producer_request_timeout`): triplets generated during the cut wait and are
re-sent when the broker is reachable again. The worker rides through: no dead letters, no anchor lost, none
generated twice (counted at the fake LLM), one warning for the whole outage, not one per record, and
no more generated ahead of the unreachable broker than the agent may hold (backpressure).

The broker keeps running behind a relay that is cut (tests/support/faults/netcut.py): `blackhole`, a
partition where requests go unanswered, and `reset`, every connection refused. The consumer-group session
(30 s) outlasts the cut, so the group does not rebalance and no anchor is redelivered: every LLM request
counted is a generation.
"""

import time

import pytest

from support.faults.netcut import MODES, cuttable_broker
from support.kafka import account, produce
from support.processes import Worker, clean_env, stsb_sentences
from support.wait import wait_until

pytestmark = pytest.mark.integration

N = 80
DELIVERY_TIMEOUT_S = 3
OUTAGE_S = 15  # five delivery timeouts
CONCURRENCY = 4


@pytest.fixture(params=MODES)
def cut_broker(request, tmp_path):
    b = cuttable_broker(tmp_path / "broker.log", mode=request.param)
    yield b
    b.stop()


def test_an_outage_longer_than_the_delivery_timeout_is_ridden_through(cut_broker, names, fake_llm, tmp_path):
    llm = fake_llm(latency_s=0.15, slots=8)
    env = clean_env(
        PAIRSTREAM_BROKER=cut_broker.url, PAIRSTREAM_ANCHORS_TOPIC=names["anchors"],
        PAIRSTREAM_TRIPLETS_TOPIC=names["triplets"], PAIRSTREAM_DLQ_TOPIC=names["dlq"],
        PAIRSTREAM_APP_ID=names["app_id"], PAIRSTREAM_TOPIC_PARTITIONS=4, PAIRSTREAM_WEB_PORT=0,
        PAIRSTREAM_QUALITY="off", PAIRSTREAM_LLM_BASE_URL=llm.base_url, PAIRSTREAM_CONCURRENCY=CONCURRENCY,
        PAIRSTREAM_BROKER_SESSION_TIMEOUT_S=30,  # outlasts the cut: no rebalance, no redelivery
        PAIRSTREAM_PRODUCER_DELIVERY_TIMEOUT_S=DELIVERY_TIMEOUT_S,
    )
    worker = Worker(env, tmp_path / "worker.log").start()
    try:
        worker.wait_assigned(90)
        produce(cut_broker, names["anchors"], [t.encode() for t in stsb_sentences(N)])
        # Cut once the LLM has answered a quarter of the anchors: counted in this process, so the cut lands
        # with three quarters still to generate. (Polling the triplets topic instead took long enough on a
        # slow CI machine for every anchor to be generated before the cut.)
        wait_until(lambda: llm.served >= N // 4, 60, "a quarter of the LLM's answers", interval=0.01)
        cut_broker.front.cut()
        asked_at_cut = len(llm.requests)
        time.sleep(OUTAGE_S)
        asked_during_cut = len(llm.requests) - asked_at_cut
        assert worker.alive()
        cut_broker.front.restore()

        acc = account(cut_broker, names, N, timeout=120)
        print(f"\nnetwork cut ({cut_broker.front.mode}) {OUTAGE_S}s, delivery timeout {DELIVERY_TIMEOUT_S}s: "
              f"{acc.summary()}; {len(llm.requests)} LLM requests, {asked_during_cut} during the cut")
        assert worker.alive()
        assert acc.dead_letters == [], acc.summary()
        assert not acc.lost, acc.summary()
        by_source: dict[tuple[int, int], set[str]] = {}
        for t in acc.triplets:  # a duplicate record (a timed-out request that landed after all) has the same id
            by_source.setdefault((t["source"]["partition"], t["source"]["offset"]), set()).add(t["id"])
        assert len(by_source) == N and all(len(ids) == 1 for ids in by_source.values())
        assert len(llm.requests) == N, "an anchor was generated twice"
        # Backpressure during the cut: the agent holds at most 2 x concurrency anchors, those waiting for the
        # broker included, so it generates at most that many ahead of a broker it cannot reach (0 when the
        # agent is already full of triplets waiting for their acks) instead of everything Faust has fetched.
        assert asked_during_cut <= 2 * CONCURRENCY, asked_during_cut
        log = worker.log
        assert log.count("waiting for the broker") == 1, log[-4000:]  # one warning for the outage
        assert "the broker takes records again" in log
    finally:
        worker.stop(9)
