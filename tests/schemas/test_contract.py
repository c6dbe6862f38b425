"""The JSON Schema files in schemas/json are exactly what the pydantic models generate, and they
describe the records the processor makes."""

import asyncio

import jsonschema
import orjson
import pytest

from schemas.export import MODELS, render, schema_path
from streams.generate.generator import Generator
from streams.generate.llm import LLMClient
from streams.worker.processor import AnchorProcessor
from streams.settings import Settings


@pytest.mark.parametrize("name", sorted(MODELS))
def test_schema_files_are_in_sync_with_models(name):
    assert schema_path(name).read_bytes() == render(MODELS[name]), "run: python -m schemas.export"


def load(name):
    return orjson.loads(schema_path(name).read_bytes())


def test_triplet_schema_has_every_contract_field():
    required = set(load("triplet")["required"])
    assert required >= {"id", "anchor", "positive", "negative", "model_name", "action", "triplet", "hard_negative",
                        "context", "metadata", "usage", "attempts", "latency_ms", "generated_at", "source"}


def test_anchor_schema_accepts_contract_examples():
    schema = load("anchor")
    jsonschema.validate({"anchor": "x", "id": "1", "action": "query", "triplet": False, "metadata": {"a": 1}}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"anchor": "x", "action": "summarise"}, schema)


def test_processor_output_validates_against_the_files(fake_llm):
    llm = fake_llm()
    settings = Settings(llm_base_url=llm.base_url)

    async def run():
        async with LLMClient(llm.base_url) as client:
            proc = AnchorProcessor(settings, Generator(client, settings))
            ok = await proc.process("anchors", 0, 5, b'{"anchor": "A dog runs.", "metadata": {"src": "t"}}')
            bad = await proc.process("anchors", 0, 6, b"\xff\xff")
            return ok, bad

    ok, bad = asyncio.run(run())
    assert ok.kind == "triplet" and bad.kind == "dead_letter"
    jsonschema.validate(orjson.loads(ok.value), load("triplet"))
    letter = orjson.loads(bad.value)
    jsonschema.validate(letter, load("dead_letter"))
    assert letter["raw_encoding"] == "base64" and letter["stage"] == "decode"
    assert letter["source"] == {"topic": "anchors", "partition": 0, "offset": 6}


def test_the_models_stay_strict_for_the_producer():
    """The sink reads leniently (tests/dataset/test_sink_records.py); the models it shares with the worker do not:
    a worker that makes a field the contract does not have fails its own validation."""
    from pydantic import ValidationError

    from schemas import DeadLetter, TripletRecord

    schema = load("triplet")
    record = {key: None for key in schema["required"]}
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        TripletRecord.model_validate({**record, "unknown": 1})
    with pytest.raises(ValidationError, match="error.unknown\n  Extra inputs are not permitted"):
        DeadLetter.model_validate({"error": {"type": "t", "message": "m", "unknown": 1}})
    assert schema["additionalProperties"] is False and load("dead_letter")["additionalProperties"] is False
