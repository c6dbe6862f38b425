"""Mining in a real worker on a real broker, with a SIGKILL and a restart mid-stream: the restarted worker's
index starts empty and warms up again, nothing else is lost (every anchor accounted for, duplicates only
with the same id), and every mined negative on the topic passes the positive-aware rule against the scores
its own record states."""

import time
from datetime import datetime

import pytest

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


def test_mining_survives_a_worker_crash_with_only_the_index_warm_up_lost(broker, names, fake_llm, start_worker):
    llm = fake_llm(latency_s=0.05)
    env = dict(PAIRSTREAM_LLM_BASE_URL=llm.base_url, PAIRSTREAM_CONCURRENCY="4", PAIRSTREAM_QUALITY="flag",
               PAIRSTREAM_MINED_NEGATIVES="3")
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
    assert counts[0] < 3  # the index started empty: the restart lost its warm-up, and only that
    assert counts[-10:] == [3] * 10 if len(counts) >= 14 else max(counts) == 3  # and it warmed up again
