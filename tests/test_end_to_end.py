"""The whole path as a user runs it: `pairstream publish` 200 real sentences, `pairstream worker`
as a subprocess, 200 records on `triplets` that validate against schemas/json, consumed into a dataset
by `pairstream consume`; a restarted worker finds the offsets committed and produces nothing again."""

import time

import jsonschema
import orjson
import pytest

from support.kafka import read_topic
from support.processes import run_cli, stsb_sentences
from schemas.export import schema_path

pytestmark = pytest.mark.integration
N = 200


def test_publish_worker_consume_200_anchors(broker, names, fake_llm, start_worker, pairstream_env, tmp_path):
    llm = fake_llm(latency_s=0.02)
    anchors = stsb_sentences(N)
    src = tmp_path / "anchors.txt"
    src.write_text("\n".join(anchors) + "\n", encoding="utf-8")

    pub = run_cli("publish", str(src), "--quiet", env=pairstream_env)
    assert pub.returncode == 0, pub.stderr
    assert f"published {N} anchors" in pub.stdout

    t0 = time.monotonic()
    worker = start_worker(PAIRSTREAM_LLM_BASE_URL=llm.base_url, PAIRSTREAM_CONCURRENCY="16")
    records = read_topic(broker, names["triplets"], N, timeout=120)
    elapsed = time.monotonic() - t0
    assert len(records) == N, worker.log[-3000:]
    schema = orjson.loads(schema_path("triplet").read_bytes())
    for r in records:
        r.pop("_key")
        jsonschema.validate(r, schema)
    assert sorted(r["anchor"] for r in records) == sorted(anchors)
    assert len({r["id"] for r in records}) == N
    print(f"\nend-to-end: {N} anchors -> {N} triplets in {elapsed:.1f}s including worker start-up "
          f"({N / elapsed:.1f} records/s)")

    assert worker.stop(15) == 0  # SIGTERM: graceful, exit code 0
    again = start_worker(PAIRSTREAM_LLM_BASE_URL=llm.base_url)
    again.wait_assigned()
    served = len(llm.requests)
    time.sleep(3)
    assert len(llm.requests) == served, "restarted worker re-processed committed anchors"
    assert len(read_topic(broker, names["triplets"], N + 1, timeout=3)) == N

    out = tmp_path / "dataset"
    con = run_cli("consume", "--out", str(out), "--until-idle", "3", "--quiet", env=pairstream_env)
    assert con.returncode == 0, con.stderr

    def lines():
        return [x for f in out.glob("*.jsonl") for x in f.read_bytes().splitlines()]

    assert len(lines()) == N and {orjson.loads(x)["id"] for x in lines()} == {r["id"] for r in records}
    con2 = run_cli("consume", "--out", str(out), "--until-idle", "2", "--quiet", "--group", "another",
                   env=pairstream_env)
    assert "dropped 200 duplicates" in con2.stdout
    assert len(lines()) == N
