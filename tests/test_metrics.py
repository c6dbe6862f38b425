"""`/metrics` after a real end-to-end run counts exactly what happened: anchors, triplets, dead letters by
stage, LLM requests by status, retries, re-asks, tokens, latency, and the live gauges (in flight, limit,
partitions, consumer lag)."""

import threading
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from support.kafka import account, produce
from streams.local.processes import free_port
from streams.metrics import Metrics
from streams.bench.fake_llm import Reply

pytestmark = pytest.mark.integration


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} from the worker's /metrics."""
    resp = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(resp.text) for s in family.samples}


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples, name: str) -> float:
    return sum(v for (n, _), v in samples.items() if n == name)


def test_metric_names_are_prefixed_and_typed():
    names = Metrics().names()
    assert all(n.startswith("pairstream_") for n in names)
    for expected in ("pairstream_anchors_consumed_total", "pairstream_dead_letters_total",
                     "pairstream_llm_request_duration_seconds_bucket", "pairstream_consumer_lag",
                     "pairstream_concurrency_limit", "pairstream_llm_tokens_total"):
        assert expected in names


def test_metrics_after_an_end_to_end_run(broker, names, fake_llm, start_worker):
    lock = threading.Lock()
    seen: dict[str, int] = {}

    def script(body, n):
        text = body["messages"][-1]["content"]
        for tag, replies in (("rate-limited", [Reply(status=429, headers={"Retry-After": "0"})]),
                             ("garbled", [Reply(content="not json at all")]),
                             ("refused", [Reply(status=401, content="bad key")] * 9)):
            if tag in text:
                with lock:
                    i = seen[tag] = seen.get(tag, -1) + 1
                return replies[i] if i < len(replies) else None
        return None

    llm = fake_llm(behaviour=script)
    anchors = [f"A plain sentence number {i}.".encode() for i in range(20)]
    anchors += [b"anchor rate-limited once", b"anchor garbled once", b"anchor refused always",
                b'{"anchor": ""}', b'{"no_anchor": 1}']
    produce(broker, names["anchors"], anchors)
    port = free_port()
    worker = start_worker(PAIRSTREAM_LLM_BASE_URL=llm.base_url, PAIRSTREAM_WEB_PORT=str(port),
                          PAIRSTREAM_CONCURRENCY="6", PAIRSTREAM_LLM_OUTAGE_FAILURES="0")
    acc = account(broker, names, len(anchors))
    assert not acc.lost, acc.summary()
    assert len(acc.triplets) == 22 and acc.by_stage() == {"llm": 1, "validate": 2}, acc.summary()

    # Offsets are committed every second; lag reaches 0 once they are.
    deadline = time.monotonic() + 20
    while True:
        samples = scrape(port)
        if total(samples, "pairstream_consumer_lag") == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert total(samples, "pairstream_consumer_lag") == 0, worker.log[-2000:]

    assert value(samples, "pairstream_anchors_consumed_total") == len(anchors)
    assert value(samples, "pairstream_triplets_produced_total") == 22
    letters = {(d["stage"], d["error"]["type"]) for d in acc.dead_letters}
    for stage, error in letters:
        assert value(samples, "pairstream_dead_letters_total", stage=stage, error=error) >= 1
    assert total(samples, "pairstream_dead_letters_total") == 3

    # requests: 22 answered 200 + 1 re-ask of the garbled output, one 429 (then 200), one 401 (not retried)
    assert value(samples, "pairstream_llm_requests_total", status="200") == 23
    assert value(samples, "pairstream_llm_requests_total", status="429") == 1
    assert value(samples, "pairstream_llm_requests_total", status="401") == 1
    assert total(samples, "pairstream_llm_requests_total") == llm.received == 25
    assert value(samples, "pairstream_llm_retries_total", reason="http_429") == 1
    assert total(samples, "pairstream_llm_retries_total") == 1
    assert total(samples, "pairstream_generation_retries_total") == 1
    assert value(samples, "pairstream_llm_request_duration_seconds_count") == 25
    assert value(samples, "pairstream_llm_request_duration_seconds_bucket", le="+Inf") == 25

    prompt = sum(r["usage"]["prompt_tokens"] for r in acc.triplets)
    completion = sum(r["usage"]["completion_tokens"] for r in acc.triplets)
    assert value(samples, "pairstream_llm_tokens_total", kind="prompt") == prompt > 0
    assert value(samples, "pairstream_llm_tokens_total", kind="completion") == completion > 0

    assert value(samples, "pairstream_anchors_in_flight") == 0
    assert value(samples, "pairstream_llm_requests_in_flight") == 0
    assert value(samples, "pairstream_concurrency_limit") == 6
    assert value(samples, "pairstream_llm_outage") == 0
    assert value(samples, "pairstream_partitions_assigned") == 4
    assert len([k for k in samples if k[0] == "pairstream_consumer_lag"]) == 4
