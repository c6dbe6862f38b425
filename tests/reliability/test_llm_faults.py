"""LLM faults on a real broker through a fault-injecting fake: transient errors are retried (backoff, Retry-After),
other 4xx and spent retries become `llm` dead letters, hung requests are cut off by the timeout, bad output is
re-asked and then becomes a `parse` dead letter holding the raw output, and an outage holds the worker instead
of flooding the dead-letter topic."""

import email.utils
import threading
import time

import orjson
import pytest

from support.kafka import account, produce
from streams.bench.fake_llm import Reply

pytestmark = pytest.mark.integration


class Script:
    """Per-anchor fault scripts: the anchor text names the faults of its first requests, then it is served."""

    def __init__(self, faults: dict[str, list[Reply]]):
        self.faults = faults
        self.seen: dict[str, list[float]] = {}
        self.lock = threading.Lock()

    def __call__(self, body, n):
        text = body["messages"][-1]["content"]
        name = next((k for k in self.faults if k in text), None)
        if name is None:
            return None
        with self.lock:
            times = self.seen.setdefault(name, [])
            times.append(time.monotonic())
            i = len(times) - 1
        script = self.faults[name]
        reply = script[i] if i < len(script) else None
        return reply() if callable(reply) else reply


def test_transport_faults_are_retried_or_dead_lettered(broker, names, fake_llm, start_worker):
    def dated():  # Retry-After as an HTTP date, 2 s from when the request arrives
        return Reply(status=503, headers={"Retry-After": email.utils.formatdate(time.time() + 2, usegmt=True)})

    script = Script({
        "rate-limited": [Reply(status=429, headers={"Retry-After": "1"})],
        "dated": [dated],
        "timeout-408": [Reply(status=408), Reply(status=408)],
        "conflict-409": [Reply(status=409)],
        "server-500": [Reply(status=500), Reply(status=502)],
        "reset": [Reply(drop=True)],
        "hung": [Reply(delay_s=30)],
        "unauthorised": [Reply(status=401, content="invalid token")] * 5,
        "not-found": [Reply(status=404, content="no such model")] * 5,
        "always-busy": [Reply(status=429)] * 10,
    })
    llm = fake_llm(behaviour=script)
    produce(broker, names["anchors"], [f"anchor {k}".encode() for k in script.faults])
    start_worker(PAIRSTREAM_LLM_BASE_URL=llm.base_url, PAIRSTREAM_LLM_TIMEOUT_S="1.5", PAIRSTREAM_LLM_MAX_RETRIES="3",
                 PAIRSTREAM_LLM_OUTAGE_FAILURES="0")

    acc = account(broker, names, len(script.faults))
    print("\ntransport faults:", acc.summary())
    assert not acc.lost and acc.duplicates == 0
    ok = {t["anchor"].split()[1]: t for t in acc.triplets}
    assert sorted(ok) == sorted(["rate-limited", "dated", "timeout-408", "conflict-409", "server-500", "reset", "hung"])
    assert ok["server-500"]["attempts"] == 3 and ok["rate-limited"]["attempts"] == 2
    letters = {d["raw"].split()[1]: d for d in acc.dead_letters}
    assert sorted(letters) == ["always-busy", "not-found", "unauthorised"]
    assert all(d["stage"] == "llm" for d in letters.values())
    # other 4xx: no retry, status and server message in the dead letter
    assert letters["unauthorised"]["attempts"] == 1 and letters["unauthorised"]["error"]["type"] == "http_401"
    assert "HTTP 401" in letters["unauthorised"]["error"]["message"] and "invalid token" in letters["unauthorised"]["error"]["message"]
    assert letters["not-found"]["attempts"] == 1 and "no such model" in letters["not-found"]["error"]["message"]
    # retries spent: 1 try + 3 retries, then a dead letter that says so
    assert letters["always-busy"]["attempts"] == 4 and "gave up after 4 tries" in letters["always-busy"]["error"]["message"]
    assert len(script.seen["always-busy"]) == 4 and len(script.seen["unauthorised"]) == 1
    # Retry-After honoured, in seconds and as an HTTP date
    rl, dt = script.seen["rate-limited"], script.seen["dated"]
    assert rl[1] - rl[0] >= 0.9 and dt[1] - dt[0] >= 0.5
    # the hung request was cut off by the 1.5 s timeout, then retried
    hung = script.seen["hung"]
    assert len(hung) == 2 and 1.4 <= hung[1] - hung[0] < 10


BAD_OUTPUT = {
    "invalid-json": Reply(content="Sure! Here is a paraphrase: the cat sat."),
    "schema-violation": Reply(content='{"positive": "Only a positive here."}'),
    "truncated": Reply(content='{"positive": "A long sentence that got cu', finish_reason="length"),
    "empty-fields": Reply(content='{"positive": "", "negative": ""}'),
}


def test_bad_output_is_reasked_then_dead_lettered_with_raw_output(broker, names, fake_llm, start_worker):
    copies = "copies-anchor"

    def behaviour(body, n):
        text = body["messages"][-1]["content"]
        for name, reply in BAD_OUTPUT.items():
            if f"always {name}" in text or (f"once {name}" in text and "Note:" not in text):
                return reply
        if copies in text:
            anchor = f"anchor always {copies}"
            return Reply(content=orjson.dumps({"positive": anchor.upper() + "!", "negative": "Unrelated."}).decode())
        return None

    llm = fake_llm(behaviour=behaviour)
    anchors = [f"anchor always {k}" for k in [*BAD_OUTPUT, copies]] + [f"anchor once {k}" for k in BAD_OUTPUT]
    produce(broker, names["anchors"], [a.encode() for a in anchors])
    start_worker(PAIRSTREAM_LLM_BASE_URL=llm.base_url, PAIRSTREAM_MAX_GENERATION_ATTEMPTS="3",
                 PAIRSTREAM_LLM_MAX_TOKENS="100")

    acc = account(broker, names, len(anchors))
    print("\nbad output:", acc.summary())
    assert not acc.lost and acc.duplicates == 0
    # a bad first answer is re-asked and the second one is used
    assert sorted(t["anchor"] for t in acc.triplets) == sorted(f"anchor once {k}" for k in BAD_OUTPUT)
    assert all(t["attempts"] == 2 for t in acc.triplets)
    letters = {d["raw"]: d for d in acc.dead_letters}
    kinds = {"invalid-json": "invalid_json", "schema-violation": "schema", "truncated": "truncated",
             "empty-fields": "empty_positive", copies: "positive_copies_anchor"}
    for name, kind in kinds.items():
        d = letters[f"anchor always {name}"]
        assert (d["stage"], d["error"]["type"], d["attempts"]) == ("parse", kind, 3), d
        expected_output = BAD_OUTPUT[name].content if name in BAD_OUTPUT else None
        assert d["last_output"] == expected_output if expected_output else d["last_output"].startswith('{"positive"')
    # each re-ask was adjusted: hotter, a correction note, and more tokens after a truncation
    truncated = [r for r in llm.requests if "always truncated" in r["messages"][-1]["content"]]
    assert [r["max_tokens"] for r in truncated] == [100, 200, 200]
    assert truncated[0]["temperature"] < truncated[1]["temperature"] < truncated[2]["temperature"]
    assert "Note:" in truncated[1]["messages"][-1]["content"]


def test_outage_holds_the_worker_instead_of_flooding_dead_letters(broker, names, fake_llm, start_worker):
    """The backend is down (connection refused) for 8 s: nothing is dead-lettered, no output is produced during
    the outage, the backend sees only a trickle of probes, and every anchor completes once it is back."""
    llm = fake_llm()
    llm.stop()  # down: connections are refused
    n = 30
    produce(broker, names["anchors"], [f"Outage anchor {i}.".encode() for i in range(n)])
    worker = start_worker(PAIRSTREAM_LLM_BASE_URL=llm.base_url, PAIRSTREAM_CONCURRENCY="4",
                          PAIRSTREAM_LLM_MAX_RETRIES="6", PAIRSTREAM_LLM_OUTAGE_PROBE_MAX_S="2")
    worker.wait_assigned()
    time.sleep(8)
    during = account(broker, names, n, timeout=3)
    assert during.triplets == [] and during.dead_letters == [], during.summary()
    assert "LLM backend unavailable" in worker.log
    llm.start()  # back on the same port
    acc = account(broker, names, n)
    print("\noutage:", acc.summary())
    assert not acc.lost and len(acc.triplets) == n and acc.dead_letters == []
    assert "LLM backend is back" in worker.log
