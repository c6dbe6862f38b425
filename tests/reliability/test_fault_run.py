"""The fault run: 600 real sentences plus bad input through two workers on a real broker, with every kind of
LLM fault injected per anchor, one worker SIGKILLed and restarted, the other stopped with SIGTERM. Every anchor
must end as a triplet or a dead letter of the expected stage; the figures are printed for the closing note."""

import hashlib
import threading
import time

import jsonschema
import orjson
import pytest

from support.kafka import account, produce, read_raw
from support.processes import stsb_sentences
from schemas.export import schema_path
from streams.bench.fake_llm import Reply

pytestmark = pytest.mark.integration

N_GOOD = 600
BAD_INPUT = [b"\xff\xfe", b"[1]", b"", b'{"anchor": ', b'{"anchor": ""}', b'{"anchor": "x", "action": "?"}',
             b'{"anchor": "x", "triplet": "no"}', b'{"text": "no anchor"}'] * 5  # 40 decode/validate dead letters


def fault_of(anchor: str) -> str:
    """A deterministic fault for each anchor (about 1 in 4 get one)."""
    h = int(hashlib.sha1(anchor.encode()).hexdigest(), 16) % 100
    if h < 2:
        return "refused"  # HTTP 400 every time: llm dead letter
    if h < 4:
        return "garbage"  # unparseable every time: parse dead letter
    if h < 8:
        return "rate-limited"
    if h < 12:
        return "server-error"
    if h < 15:
        return "dropped"
    if h < 18:
        return "hung"
    if h < 22:
        return "invalid-json-once"
    if h < 25:
        return "copies-once"
    return "none"


class Faults:
    def __init__(self, anchors: list[str]):
        self.by_anchor = {a: fault_of(a) for a in anchors}
        self.tries: dict[str, int] = {}
        self.lock = threading.Lock()

    def __call__(self, body, n):
        text = body["messages"][-1]["content"]
        anchor = text.rsplit("## Anchor", 1)[-1].split("\nNote:")[0].strip()
        fault = self.by_anchor.get(anchor, "none")
        with self.lock:
            i = self.tries[anchor] = self.tries.get(anchor, 0) + 1
        first = i == 1
        if fault == "refused":
            return Reply(status=400, content="this request is not allowed")
        if fault == "garbage":
            return Reply(content="I am unable to produce JSON today.")
        if fault == "rate-limited" and first:
            return Reply(status=429, headers={"Retry-After": "0.5"})
        if fault == "server-error" and first:
            return Reply(status=503)
        if fault == "dropped" and first:
            return Reply(drop=True)
        if fault == "hung" and first:
            return Reply(delay_s=60)
        if fault == "invalid-json-once" and first:
            return Reply(content='{"positive": "unterminated')
        if fault == "copies-once" and first:
            return Reply(content=orjson.dumps({"positive": anchor, "negative": "Something else."}).decode())
        return None


def test_fault_run(broker, names, fake_llm, start_worker):
    anchors = stsb_sentences(N_GOOD)
    faults = Faults(anchors)
    llm = fake_llm(behaviour=faults, latency_s=0.05, sigma=0.8)
    values = [a.encode() for a in anchors]
    for i, bad in enumerate(BAD_INPUT):  # spread the bad values through the stream
        values.insert((i * 37) % len(values), bad)
    produce(broker, names["anchors"], values)
    env = dict(PAIRSTREAM_LLM_BASE_URL=llm.base_url, PAIRSTREAM_CONCURRENCY="12", PAIRSTREAM_LLM_TIMEOUT_S="2",
               PAIRSTREAM_LLM_MAX_RETRIES="3", PAIRSTREAM_MAX_GENERATION_ATTEMPTS="3")

    t0 = time.monotonic()
    a, b = start_worker(**env), start_worker(**env)
    a.wait_assigned()
    b.wait_assigned()

    def outputs() -> int:
        return (len(read_raw(broker, names["triplets"], 10**9, timeout=1))
                + len(read_raw(broker, names["dlq"], 10**9, timeout=1)))

    while outputs() < len(values) // 3:
        pass
    a.stop(9)  # crash one worker
    start_worker(**env).wait_assigned()  # and bring it back
    while outputs() < 2 * len(values) // 3:
        pass
    assert b.stop(15) == 0  # graceful stop of the other

    acc = account(broker, names, len(values), timeout=240)
    took = time.monotonic() - t0
    print(f"\nfault run ({took:.0f}s, {len(llm.requests)} LLM requests): {acc.summary()}")
    assert not acc.lost and len(acc.anchors) == len(values)

    expected = {k: sum(1 for f in faults.by_anchor.values() if f == k) for k in ("refused", "garbage")}
    stages = acc.by_stage()
    assert stages.get("decode", 0) + stages.get("validate", 0) == len(BAD_INPUT)
    assert stages.get("llm", 0) == expected["refused"] and stages.get("parse", 0) == expected["garbage"]
    good = {a for a, f in faults.by_anchor.items() if f not in ("refused", "garbage")}
    assert {t["anchor"] for t in acc.triplets} == good
    assert len({t["id"] for t in acc.triplets}) == len(good)
    schema = orjson.loads(schema_path("triplet").read_bytes())
    for t in acc.triplets:
        t.pop("_key")
        jsonschema.validate(t, schema)
