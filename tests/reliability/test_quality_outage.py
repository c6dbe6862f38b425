"""The quality gate's embedding backend goes down in a running worker, like an LLM outage: anchors wait (no
output, no dead letter) while it is down, and every anchor completes once it is back. Remote: the embeddings
server refuses connections. Local: the in-process ONNX model fails every call (fault injected by
tests/support/faults)."""

import time

import pytest

from support.kafka import account, produce
from support.processes import ROOT
from support.wait import wait_until

pytestmark = pytest.mark.integration

N = 20
OUTAGE_S = 8
# Enough retries for the probes of an 8 s outage (probing every 1-2 s), so a failure would mean the gate did not hold.
ENV = {"PAIRSTREAM_QUALITY": "flag", "PAIRSTREAM_MINED_NEGATIVES": "0", "PAIRSTREAM_CONCURRENCY": "4",
       "PAIRSTREAM_LLM_MAX_RETRIES": "8", "PAIRSTREAM_LLM_OUTAGE_PROBE_MAX_S": "2"}


def held_then_completed(broker, names, worker, bring_back) -> None:
    worker.wait_assigned()
    time.sleep(OUTAGE_S)
    during = account(broker, names, N, timeout=3)
    assert during.triplets == [] and during.dead_letters == [], during.summary()
    assert "embedding backend unavailable" in worker.log, worker.log[-3000:]
    bring_back()
    acc = account(broker, names, N)
    print("\nquality outage:", acc.summary())
    assert not acc.lost and len(acc.triplets) == N and acc.dead_letters == [], worker.log[-3000:]
    assert all(t["quality"]["model"] for t in acc.triplets)  # scored, not passed through unscored
    wait_until(lambda: "embedding backend is back" in worker.log, 10, "the recovery line")


def test_remote_embedding_outage_holds_anchors(broker, names, fake_llm, start_worker):
    llm = fake_llm()
    embeddings = fake_llm()
    embeddings.stop()  # down: connections are refused
    produce(broker, names["anchors"], [f"Remote outage anchor number {i}.".encode() for i in range(N)])
    worker = start_worker(PAIRSTREAM_LLM_BASE_URL=llm.base_url, PAIRSTREAM_EMBEDDINGS_BASE_URL=embeddings.base_url,
                          PAIRSTREAM_EMBEDDINGS_MODEL="fake-embedder", **ENV)
    held_then_completed(broker, names, worker, embeddings.start)
    assert len(llm.requests) == N  # each pair was generated once and waited to be scored, not re-generated


def test_local_embedding_model_failure_holds_anchors(broker, names, fake_llm, start_worker, tmp_path):
    llm = fake_llm()
    fault = tmp_path / "embedding-model-fails"
    fault.touch()
    produce(broker, names["anchors"], [f"Local outage anchor number {i}.".encode() for i in range(N)])
    worker = start_worker(PAIRSTREAM_LLM_BASE_URL=llm.base_url, FAULT_EMBED_WHILE=fault,
                          PYTHONPATH=ROOT / "tests" / "support" / "faults", **ENV)
    held_then_completed(broker, names, worker, fault.unlink)
    assert len(llm.requests) == N
