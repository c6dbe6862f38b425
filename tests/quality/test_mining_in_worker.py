"""Mining in a real worker on a real broker, with a SIGKILL and a restart mid-stream: the restarted worker's
index starts from the mining topic's recent past (without the group feed it starts empty and warms up
again), nothing else is lost (every anchor accounted for, duplicates only
with the same id), and every mined negative on the topic passes the positive-aware rule against the scores
its own record states."""

import time
from datetime import datetime

import httpx
import pytest

from streams.local.processes import free_port
from support.kafka import account, produce, read_raw
from support.processes import stsb_sentences
from support.wait import wait_until

pytestmark = pytest.mark.integration
N = 80


def mined_ok(record: dict) -> bool:
    ap = record["quality"]["anchor_positive"]
    own = {record["anchor"], record["positive"], record["negative"]}
    return all(m["score"] < ap - abs(ap) * 0.05 and m["source_id"] != record["id"] and m["text"] not in own
               for m in record["mined_negatives"])


@pytest.mark.parametrize("shared", [True, False], ids=["group-feed", "control-own-records-only"])
def test_mining_survives_a_worker_crash(broker, names, fake_llm, start_worker, shared):
    llm = fake_llm(latency_s=0.05)
    env = dict(PAIRSTREAM_LLM_BASE_URL=llm.base_url, PAIRSTREAM_CONCURRENCY="4", PAIRSTREAM_QUALITY="flag",
               PAIRSTREAM_MINED_NEGATIVES="3", PAIRSTREAM_MINING_SHARED=str(shared).lower())
    produce(broker, names["anchors"], [s.encode() for s in stsb_sentences(N)])
    first = start_worker(**env)
    wait_until(lambda: len(read_raw(broker, names["triplets"], 30, timeout=1)) >= 30, 120, "30 triplets", interval=0)
    assert first.stop(9) == -9
    killed_at = time.time()
    start_worker(**env)
    acc = account(broker, names, N, timeout=180)
    print("\nmining across a SIGKILL:", acc.summary())
    assert not acc.lost and acc.dead_letters == []
    by_id: dict[str, set] = {}
    for t in acc.triplets:
        by_id.setdefault(t["id"], set()).add((t["source"]["partition"], t["source"]["offset"]))
    assert len(by_id) == N and all(len(sources) == 1 for sources in by_id.values())  # a duplicate keeps its id
    assert all(mined_ok(t) for t in acc.triplets)
    when = {t["id"] + str(i): datetime.fromisoformat(t["generated_at"].replace("Z", "+00:00")).timestamp()
            for i, t in enumerate(acc.triplets)}
    after = sorted((t for i, t in enumerate(acc.triplets) if when[t["id"] + str(i)] > killed_at),
                   key=lambda t: t["generated_at"])
    assert after, "the restarted worker produced records"
    counts = [len(t["mined_negatives"]) for t in after]
    print("mined per record after the restart, in order:", counts)
    if shared:  # the index was filled from the mining topic: the first records mine as many as the later ones
        assert counts[:5] == [3] * 5
        before = {t["id"] for i, t in enumerate(acc.triplets) if when[t["id"] + str(i)] <= killed_at}
        assert {m["source_id"] for m in after[0]["mined_negatives"]} <= before  # from the dead worker's records
    else:
        assert counts[0] < 3  # the index started empty: the restart lost its warm-up, and only that
        assert counts[-10:] == [3] * 10 if len(counts) >= 14 else max(counts) == 3  # and it warmed up again


@pytest.mark.parametrize("shared", [True, False], ids=["group-feed", "control-own-records-only"])
def test_two_workers_mine_from_each_others_records(broker, names, fake_llm, start_worker, shared):
    """Each worker's LLM names a different model, so a record says which worker made it: with the group feed, a
    worker's records mine negatives from the other worker's records as well as from its own; without, never."""
    ports = [free_port(), free_port()]
    for model, port in zip(["fake-a", "fake-b"], ports):
        llm = fake_llm(latency_s=0.2, model=model)
        start_worker(PAIRSTREAM_LLM_BASE_URL=llm.base_url, PAIRSTREAM_CONCURRENCY="2", PAIRSTREAM_QUALITY="flag",
                     PAIRSTREAM_MINED_NEGATIVES="3", PAIRSTREAM_MINING_SHARED=str(shared).lower(),
                     PAIRSTREAM_WEB_PORT=str(port), PAIRSTREAM_LLM_MODEL=model)
    for port in ports:  # both joined the group and hold partitions
        wait_until(lambda: httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200, 120,
                   f"worker on {port} ready")
    produce(broker, names["anchors"], [s.encode() for s in stsb_sentences(N)])
    acc = account(broker, names, N, timeout=180)
    assert not acc.lost and acc.dead_letters == []
    made_by = {t["id"]: t["model_name"] for t in acc.triplets}
    assert set(made_by.values()) == {"fake-a", "fake-b"}, "both workers delivered records"
    mined = [(t["model_name"], made_by[m["source_id"]]) for t in acc.triplets for m in t["mined_negatives"]]
    across = sum(1 for own, source in mined if own != source)
    print(f"\nshared={shared}: {len(mined)} mined negatives, {across} from the other worker's records")
    assert mined
    if shared:
        assert across >= 0.25 * len(mined)
    else:
        assert across == 0
