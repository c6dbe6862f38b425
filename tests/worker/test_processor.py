"""The per-anchor logic without Faust: one message to one outcome, and the dead letter of a triplet the broker
refused keeps the record's real attempt count."""

import orjson

from schemas import Source
from streams.bench.fake_llm import Reply
from streams.generate.generator import Generator
from streams.generate.llm import LLMClient
from streams.settings import Settings
from streams.worker.processor import AnchorProcessor


async def test_a_produce_dead_letter_reports_the_attempts_its_triplet_took(fake_llm):
    """Review item: a `produce`-stage dead letter said `attempts: 0` although its triplet took requests."""
    llm = fake_llm(behaviour=lambda body, n: Reply(content="not JSON at all") if n == 0 else None)
    settings = Settings(llm_base_url=llm.base_url, max_generation_attempts=3)
    async with LLMClient(llm.base_url) as client:
        processor = AnchorProcessor(settings, Generator(client, settings))
        raw = b"A sentence that needed a second try."
        outcome = await processor.process("anchors", 0, 7, raw)
        assert outcome.kind == "triplet" and orjson.loads(outcome.value)["attempts"] == 2
        letter = processor.produce_failure(outcome, raw, Source(topic="anchors", partition=0, offset=7),
                                           RuntimeError("MessageSizeTooLargeError"))
    body = orjson.loads(letter.value)
    assert (letter.kind, body["stage"], body["attempts"]) == ("dead_letter", "produce", 2)
    assert body["id"] == orjson.loads(outcome.value)["id"]
