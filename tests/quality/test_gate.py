"""The quality gate in the generation loop, with the real local embedding model and a scripted fake LLM: a
near-copy and an inverted triplet are re-asked with a note naming the problem; when no attempt passes the
anchor fails at stage `quality` with the best candidate's scores and every candidate; `flag` delivers with
a failed verdict instead; an embedding backend that fails is a clear failure, never a crash."""

import orjson
import pytest

from schemas import Source
from streams.bench.fake_llm import Reply
from streams.generate.decode import decode_anchor
from streams.generate.generator import Generated, GenerationFailure, Generator
from streams.generate.llm import LLMClient
from streams.quality.judge import EmbeddingJudge, thresholds
from streams.quality.local_minilm import LocalMiniLM
from streams.quality.remote import RemoteEmbedder
from streams.generate.resilience import RetryPolicy
from streams.settings import Settings

ANCHOR = "A man is playing a guitar on the stage."
GOOD = {"positive": "Someone performs guitar music for an audience.",
        "negative": "A woman is cooking dinner in the kitchen."}
NEAR_COPY = {"positive": "A man is playing the guitar on the stage.", "negative": GOOD["negative"]}
INVERTED = {"positive": "Someone is making music.", "negative": "A man plays a guitar on the stage."}


@pytest.fixture(scope="module")
def minilm():
    return LocalMiniLM()


def scripted(*answers):
    def behaviour(body, n):
        return Reply(content=orjson.dumps(answers[min(n, len(answers) - 1)]).decode())
    return behaviour


async def generate(llm, minilm, embedder=None, **settings):
    s = Settings(llm_base_url=llm.base_url, **settings)
    judge = EmbeddingJudge(embedder or minilm, thresholds(s))
    req = decode_anchor(ANCHOR.encode(), Source(topic="t", partition=0, offset=0), s)
    async with LLMClient(llm.base_url) as client:
        result = await Generator(client, s, judge=judge).generate(req)
    await judge.aclose()
    return result


@pytest.mark.parametrize("first, problem", [(NEAR_COPY, "near_copy"), (INVERTED, "false_negative")])
async def test_a_refused_pair_is_reasked_with_a_note_naming_the_problem(fake_llm, minilm, first, problem):
    llm = fake_llm(behaviour=scripted(first, GOOD))
    result = await generate(llm, minilm)
    assert isinstance(result, Generated) and result.attempts == 2
    assert result.positive == GOOD["positive"] and result.quality["verdict"] == "pass"
    assert result.quality["margin"] > 0.2 and result.quality["model"] == "sentence-transformers/all-MiniLM-L6-v2"
    note = llm.requests[1]["messages"][-1]["content"]
    assert "Note: your previous answer was rejected:" in note
    assert {"near_copy": "nearly the anchor", "false_negative": "as close to the anchor"}[problem] in note
    # hotter after a near-copy (move away from the anchor); the same after a bad negative (the note says why)
    t0, t1 = llm.requests[0]["temperature"], llm.requests[1]["temperature"]
    assert (t1 > t0) if problem == "near_copy" else (t1 == t0)


async def test_when_no_attempt_passes_the_anchor_fails_at_stage_quality_with_its_candidates(fake_llm, minilm):
    llm = fake_llm(behaviour=scripted(NEAR_COPY, INVERTED, NEAR_COPY))
    result = await generate(llm, minilm, max_generation_attempts=3)
    assert isinstance(result, GenerationFailure) and result.stage == "quality" and result.attempts == 3
    assert len(result.candidates) == 3
    ranks = [(len(c["quality"]["problems"]), -c["quality"]["margin"]) for c in result.candidates]
    assert ranks == sorted(ranks) and result.quality == result.candidates[0]["quality"]
    assert result.quality["verdict"] == "fail" and result.kind in result.quality["problems"]


async def test_flag_delivers_a_failing_pair_with_its_verdict_and_does_not_reask(fake_llm, minilm):
    llm = fake_llm(behaviour=scripted(INVERTED))
    result = await generate(llm, minilm, quality="flag")
    assert isinstance(result, Generated) and result.attempts == 1 and len(llm.requests) == 1
    # the negative restates the anchor: too close by the pooled cosine, and wholly contained token by token
    assert result.quality["verdict"] == "fail" and result.quality["problems"] == ["false_negative", "entailed_negative"]
    assert result.quality["margin"] < 0


async def test_off_does_not_score(fake_llm, minilm):
    llm = fake_llm(behaviour=scripted(INVERTED))
    result = await generate(llm, minilm, quality="off")
    assert isinstance(result, Generated) and result.quality is None


async def test_an_embedding_backend_that_fails_is_a_clear_quality_failure(fake_llm, minilm):
    llm = fake_llm(behaviour=scripted(GOOD), embed_behaviour=lambda body, n: Reply(status=400, content="too long"))

    async def no_sleep(_):
        pass

    remote = RemoteEmbedder(llm.base_url, "fake-embedder", retry=RetryPolicy(max_retries=1), sleep=no_sleep)
    result = await generate(llm, minilm, embedder=remote)
    assert isinstance(result, GenerationFailure) and result.stage == "quality" and result.kind == "http_400"
    assert "could not be scored" in result.message and "too long" in result.message


def test_the_reask_temperature_follows_the_problem():
    from streams.generate.generator import next_temperature
    from streams.generate.validation import Problem

    assert next_temperature(0.5, Problem("near_copy", "")) == pytest.approx(0.9)
    assert next_temperature(1.4, Problem("copies_anchor", "")) == 1.5
    assert next_temperature(0.5, Problem("off_topic", "")) == pytest.approx(0.2)
    assert next_temperature(0.2, Problem("off_topic", "")) == 0.1
    assert next_temperature(0.7, Problem("false_negative", "")) == 0.7
