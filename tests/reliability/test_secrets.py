"""A canary API key must never leave the Authorization header: not in logs (even at debug level), not in dead
letters or triplets, not in error text, not in /metrics or /ready, even when the server echoes the rejected
key back."""

import httpx
import pytest

from support.kafka import account, produce
from streams.local.processes import free_port
from streams.bench.fake_llm import Reply

pytestmark = pytest.mark.integration

CANARY = "sk-canary-7f3a9c1e5b"


def echo_key(body, n):
    text = body["messages"][-1]["content"]
    if "rejected" in text:
        return Reply(status=401, content=f"Incorrect API key provided: {CANARY}")
    if "flaky" in text:
        return Reply(status=503, content=f"upstream failed for key {CANARY}")
    return None


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_canary_api_key_never_appears_outside_the_auth_header(broker, names, fake_llm, start_worker, log_format):
    llm = fake_llm(behaviour=echo_key)
    produce(broker, names["anchors"], [b"A rejected anchor.", b"A flaky anchor.", b"A fine anchor.", b"\xff"])
    port = free_port()
    worker = start_worker(PAIRSTREAM_LLM_BASE_URL=llm.base_url, PAIRSTREAM_LLM_API_KEY=CANARY,
                          PAIRSTREAM_WEB_PORT=str(port),
                          PAIRSTREAM_LOG_LEVEL="debug", PAIRSTREAM_LOG_FORMAT=log_format,
                          PAIRSTREAM_LLM_MAX_RETRIES="1", PAIRSTREAM_LLM_OUTAGE_FAILURES="0")
    acc = account(broker, names, 4)
    assert not acc.lost and len(acc.dead_letters) == 3, acc.summary()
    assert any(h.get("Authorization") == f"Bearer {CANARY}" for h in llm.headers), "the key was sent"
    rejected = next(d for d in acc.dead_letters if d["raw"] == "A rejected anchor.")
    assert "Incorrect API key provided: ***" in rejected["error"]["message"]
    for path in ("/metrics", "/ready", "/health"):
        page = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=10)
        assert page.status_code in (200, 503) and CANARY not in page.text
    assert "pairstream_dead_letters_total" in httpx.get(f"http://127.0.0.1:{port}/metrics").text
    worker.stop(15)
    log = worker.log
    assert "HTTP 401" in log or "http_401" in log  # the failures were logged...
    assert CANARY not in log  # ...without the key
    for record in acc.triplets + acc.dead_letters:
        assert CANARY not in repr(record)
