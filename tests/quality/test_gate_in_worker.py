"""The gate in a real worker on the real broker (local embedding model, scripted fake LLM): a passing record
carries its scores and validates against the new triplet schema; an anchor no attempt could make pass becomes a
`quality` dead letter with its scores and candidates, valid against the dead-letter schema."""

import jsonschema
import orjson
import pytest

from schemas.export import schema_path
from streams.bench.fake_llm import Reply, anchor_of
from support.kafka import account, produce

pytestmark = pytest.mark.integration

GOOD = {"positive": "Someone performs guitar music for an audience.",
        "negative": "A woman is cooking dinner in the kitchen."}


def behaviour(body, n):
    anchor = anchor_of(body)
    if "guitar" in anchor and "Note:" not in body["messages"][-1]["content"]:
        return Reply(content=orjson.dumps({"positive": anchor.replace("a guitar", "the guitar"),
                                           "negative": GOOD["negative"]}).decode())  # a near-copy first
    if "guitar" in anchor:
        return Reply(content=orjson.dumps(GOOD).decode())
    return Reply(content=orjson.dumps({"positive": anchor.rstrip(".") + " today.",  # always a near-copy
                                       "negative": "Penguins live in Antarctica."}).decode())


def test_gate_in_the_worker(broker, names, fake_llm, start_worker):
    llm = fake_llm(behaviour=behaviour)
    produce(broker, names["anchors"], [b"A man is playing a guitar on the stage.", b"The children are laughing loudly."])
    worker = start_worker(PAIRSTREAM_LLM_BASE_URL=llm.base_url, PAIRSTREAM_QUALITY="gate",
                          PAIRSTREAM_MAX_GENERATION_ATTEMPTS="3")
    acc = account(broker, names, 2)
    assert not acc.lost and len(acc.triplets) == 1 and len(acc.dead_letters) == 1, worker.log[-3000:]

    triplet = {k: v for k, v in acc.triplets[0].items() if k != "_key"}
    jsonschema.validate(triplet, orjson.loads(schema_path("triplet").read_bytes()))
    assert triplet["attempts"] == 2 and triplet["schema_version"] == 3
    assert triplet["quality"]["verdict"] == "pass" and triplet["quality"]["problems"] == []
    assert triplet["quality"]["anchor_positive"] > triplet["quality"]["anchor_negative"]

    letter = {k: v for k, v in acc.dead_letters[0].items() if k != "_key"}
    jsonschema.validate(letter, orjson.loads(schema_path("dead_letter").read_bytes()))
    assert letter["stage"] == "quality" and letter["error"]["type"] == "near_copy" and letter["attempts"] == 3
    assert len(letter["candidates"]) == 3 and letter["quality"]["verdict"] == "fail"
    assert all("near_copy" in c["quality"]["problems"] for c in letter["candidates"])
