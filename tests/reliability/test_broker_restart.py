"""The broker goes away mid-stream and comes back on the same storage (durable embedded broker: Tansu on
SeaweedFS S3). Two workers and a dataset sink ride through it: every anchor ends as a triplet or a dead letter,
duplicates only carry the same id, the dataset holds each anchor's record exactly once, and the outage costs
a bounded number of log lines (repeats collapsed), not thousands."""

import re
import signal
import time

import orjson
import pytest

from streams.local.broker import EmbeddedBroker
from support.kafka import account, produce, read_raw
from support.processes import Worker, spawn_cli, stsb_sentences
from support.wait import wait_until

pytestmark = pytest.mark.integration

N = 240
OUTAGE_S = 10
STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)")


@pytest.fixture
def durable_broker(tmp_path):
    b = EmbeddedBroker(data_dir=tmp_path / "broker-data", log_file=tmp_path / "broker.log").start()
    yield b
    b.stop()


def lines_between(log: str, start: float, end: float) -> list[str]:
    """The log lines stamped within [start, end] (wall clock, whole seconds)."""
    out = []
    for line in log.splitlines():
        m = STAMP.match(line)
        if m and start - 1 <= time.mktime(time.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")) <= end:
            out.append(line)
    return out


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_broker_restart_mid_stream_loses_nothing(durable_broker, names, pairstream_env, fake_llm, tmp_path, sig):
    llm = fake_llm(latency_s=0.1, slots=8)
    env = {**pairstream_env, "PAIRSTREAM_BROKER": durable_broker.url, "PAIRSTREAM_LLM_BASE_URL": llm.base_url,
           "PAIRSTREAM_CONCURRENCY": "4"}
    workers = [Worker(env, tmp_path / f"worker-{i}.log").start() for i in range(2)]
    out = tmp_path / "ds"
    sink = spawn_cli("consume", "--out", str(out), "--quiet", "--shard-rows", "50", "--shard-seconds", "1",
                     env=env, log=tmp_path / "sink.log")
    try:
        for w in workers:
            w.wait_assigned()
        texts = stsb_sentences(N)
        produce(durable_broker, names["anchors"], [t.encode() for t in texts])
        wait_until(lambda: len(read_raw(durable_broker, names["triplets"], N // 4, timeout=1)) >= N // 4, 60,
                   "a quarter of the triplets", interval=0)
        down = time.time()
        durable_broker.kill(sig)
        time.sleep(OUTAGE_S)
        durable_broker.start()
        up = time.time()

        acc = account(durable_broker, names, N, timeout=120)
        print(f"\nbroker {sig.name}:", acc.summary())
        assert not acc.lost, acc.summary()
        assert acc.dead_letters == [], acc.summary()
        by_source = {}
        for t in acc.triplets:  # a duplicate is the same anchor's record again, with the same id
            by_source.setdefault((t["source"]["partition"], t["source"]["offset"]), set()).add(t["id"])
        assert len(by_source) == N and all(len(ids) == 1 for ids in by_source.values())

        def dataset_complete() -> int:
            assert sink.poll() is None, (tmp_path / "sink.log").read_text()[-3000:]
            manifest = orjson.loads((out / "manifest.json").read_bytes())
            return manifest["rows"]["triplets"] == N
        wait_until(dataset_complete, 60, f"{N} rows in the dataset")
        ids = [orjson.loads(line)["id"] for shard in sorted(out.glob("*.jsonl"))
               for line in shard.read_bytes().splitlines()]
        assert len(ids) == len(set(ids)) == N and set(ids) == {t["id"] for t in acc.triplets}
        for w in workers:
            assert w.alive()
    finally:
        sink.send_signal(signal.SIGTERM)
        sink.wait(30)
        for w in workers:
            w.stop(9)

    # the outage costs a few lines a second per process (about 1,200 in 15 s each without the collapsing), and
    # one line says the repeating stopped
    for path in [tmp_path / "worker-0.log", tmp_path / "worker-1.log", tmp_path / "sink.log"]:
        text = path.read_text(errors="replace")
        during = lines_between(text, down, up + 5)
        print(f"{path.name}: {len(during)} lines in the {up + 5 - down:.0f} s around the outage")
        assert len(during) <= 5 * (up + 5 - down), "\n".join(during[-40:])
        assert "stopped repeating" in text
