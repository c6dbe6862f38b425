"""A burst far beyond what the LLM can take is held in Kafka, not in the worker's memory.

The LLM hangs, so nothing finishes; 10,000 anchors of about 2 KB arrive, then
30,000 more (60 MB). The worker's memory must not grow with the second burst:
the agent holds twice its concurrency, Faust's buffers are bounded and the
consumer pauses fetching once they are full.
"""

import time

import orjson
import psutil

from support.kafka import produce
from support.wait import wait_in_flight
from streams.bench.fake_llm import Reply

PAD = "x" * 2000


def anchors(start: int, n: int) -> list[bytes]:
    return [orjson.dumps({"anchor": f"Burst anchor {i}.", "metadata": {"pad": PAD}}) for i in range(start, start + n)]


def settled_rss(pid: int, seconds: float = 6.0) -> int:
    """Peak RSS over a few seconds (buffers fill asynchronously after a burst)."""
    proc, peak = psutil.Process(pid), 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        peak = max(peak, proc.memory_info().rss)
        time.sleep(0.2)
    return peak


def test_memory_stays_flat_under_a_burst_the_llm_cannot_take(broker, names, fake_llm, start_worker):
    llm = fake_llm(behaviour=lambda body, i: Reply(delay_s=300))
    worker = start_worker(PAIRSTREAM_LLM_BASE_URL=llm.base_url, PAIRSTREAM_CONCURRENCY="8",
                          PAIRSTREAM_LLM_TIMEOUT_S="600")
    worker.wait_assigned()
    produce(broker, names["anchors"], anchors(0, 10_000))
    wait_in_flight(llm, 8)
    first = settled_rss(worker.proc.pid)
    produce(broker, names["anchors"], anchors(10_000, 30_000))  # 60 MB more
    second = settled_rss(worker.proc.pid)
    grew_mb = (second - first) / 2**20
    print(f"\nworker RSS after 10k anchors {first / 2**20:.0f} MB, after 30k more {second / 2**20:.0f} MB "
          f"(+{grew_mb:.1f} MB); LLM requests {len(llm.requests)}")
    assert grew_mb < 15, f"worker memory grew {grew_mb:.0f} MB with a 60 MB burst"
    assert len(llm.requests) == 8 and llm.max_in_flight == 8  # nothing beyond the limit was pulled through
