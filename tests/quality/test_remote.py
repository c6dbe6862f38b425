"""Remote embeddings against a fake OpenAI-compatible `/v1/embeddings`: vectors in input order and unit length,
the API key only in the header, transient faults retried, outages held by the gate, garbage and wrong
dimensions refused with a clear error; and against a fake TEI that enforces TEI's limits, every anchor's pair
judged: at most 32 texts a request, long inputs cut, a 413 split rather than resent."""

import asyncio

import numpy as np
import pytest
from pydantic import SecretStr

from schemas import Source
from streams.bench.fake_llm import Reply
from streams.generate.decode import decode_anchor
from streams.generate.judging import Judgement, JudgeUnavailable
from streams.generate.resilience import RetryPolicy
from streams.generate.outage import OutageGate
from streams.quality.embedder import EmbeddingError, normalise
from streams.quality.judge import build_judge
from streams.quality.remote import RemoteEmbedder, TooLarge
from streams.settings import Settings
from support.fake_tei import FakeTEI


async def no_sleep(_):
    pass


def embedder(llm, **kwargs) -> RemoteEmbedder:
    return RemoteEmbedder(llm.base_url, "fake-embedder", sleep=no_sleep, **kwargs)


async def test_vectors_come_back_in_input_order_unit_length(fake_llm):
    llm = fake_llm(embed_dimensions=16)
    remote = RemoteEmbedder(llm.base_url, "fake-embedder", api_key=SecretStr("sk-emb-123"))
    try:
        vectors = await remote.embed(["one", "two", "three"])
        again = await remote.embed(["three"])
    finally:
        await remote.aclose()
    assert vectors.shape == (3, 16) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert np.allclose(vectors[2], again[0])  # the fake answers in reverse order: sorted back by index
    assert llm.embed_requests[0] == {"model": "fake-embedder", "input": ["one", "two", "three"]}


async def test_transient_faults_are_retried(fake_llm):
    llm = fake_llm(embed_behaviour=lambda body, n: Reply(status=503) if n < 2 else None)
    remote = embedder(llm, retry=RetryPolicy(max_retries=3))
    vectors = await remote.embed(["a", "b"])
    await remote.aclose()
    assert vectors.shape == (2, 8) and len(llm.embed_requests) == 3


@pytest.mark.parametrize("reply, kind", [
    (Reply(body=b"<html>proxy error</html>"), "bad_response"),
    (Reply(body=b'{"data": [{"index": 0, "embedding": [0.1, 0.2]}]}'), "bad_response"),  # 1 vector for 2 texts
    (Reply(body=b'{"data": [{"index": 0, "embedding": [0.1, 0.2]}, {"index": 1, "embedding": [0.3]}]}'),
     "bad_dimensions"),
    (Reply(body=b'{"data": [{"index": 0, "embedding": [0.1, "x"]}, {"index": 1, "embedding": [0.3, 1]}]}'),
     "bad_response"),
    (Reply(status=400, content="input too long"), "http_400"),
])
async def test_garbage_and_refusals_are_clear_errors(fake_llm, reply, kind):
    llm = fake_llm(embed_behaviour=lambda body, n: reply)
    remote = embedder(llm, retry=RetryPolicy(max_retries=0))
    with pytest.raises(EmbeddingError) as err:
        await remote.embed(["a", "b"])
    await remote.aclose()
    assert err.value.kind == kind


async def test_a_413_is_too_large_and_never_resent(fake_llm):
    """HTTP 413 is not retried (the same body would be refused again) and comes back as `TooLarge`, what the
    micro-batcher splits a batch on; any other refusal is a plain EmbeddingError, never split on."""
    llm = fake_llm(embed_behaviour=lambda body, n: Reply(status=413, content="too many inputs"))
    remote = embedder(llm, retry=RetryPolicy(max_retries=3))
    with pytest.raises(TooLarge) as err:
        await remote.embed(["a", "b"])
    await remote.aclose()
    assert err.value.kind == "http_413" and err.value.too_large and not err.value.retryable
    assert "embeddings: " in str(err.value) and len(llm.embed_requests) == 1
    assert not getattr(EmbeddingError("http_400", "refused"), "too_large", False)


async def test_a_dimension_change_between_answers_is_refused(fake_llm):
    dims = iter([8, 12])
    llm = fake_llm()
    remote = embedder(llm)
    await remote.embed(["a"])
    llm.embed_dimensions = next(dims) + next(dims)
    with pytest.raises(EmbeddingError, match="expected 8"):
        await remote.embed(["b"])
    await remote.aclose()


async def test_an_outage_holds_requests_behind_one_probe(fake_llm):
    llm = fake_llm(embed_behaviour=lambda body, n: Reply(status=503) if n < 4 else None)
    gate = OutageGate(failures_to_open=2, cooldown_s=0.01, max_cooldown_s=0.05)
    remote = embedder(llm, retry=RetryPolicy(max_retries=10), gate=gate)
    vectors = await remote.embed(["held"])
    await remote.aclose()
    assert vectors.shape == (1, 8) and gate.outages == 1 and not gate.is_open


# The quality gate's whole embedding path (settings -> judge -> micro-batcher -> remote embedder) against a
# fake TEI that enforces TEI's limits (tests/support/fake_tei.py): 32 inputs a request, 512 tokens an input.

SHORT = "A man is playing a guitar on the stage number {i}."


@pytest.fixture
def tei():
    servers = []

    def make(**kwargs) -> FakeTEI:
        server = FakeTEI(**kwargs).start()
        servers.append(server)
        return server

    yield make
    for s in servers:
        s.stop()


async def judge_all(tei: FakeTEI, anchors: list[str], **settings) -> list:
    """Judge one pair per anchor, all at once (as the anchors in flight are); a judgement or the error each."""
    s = Settings(embeddings_base_url=tei.base_url, **settings)
    judge = build_judge(s)
    reqs = [decode_anchor(a.encode(), Source(topic="t", partition=0, offset=i), s) for i, a in enumerate(anchors)]
    try:
        return await asyncio.gather(*(judge(req, f"positive {i}", f"negative {i}") for i, req in enumerate(reqs)),
                                    return_exceptions=True)
    finally:
        await judge.aclose()


def expected_vectors(tei: FakeTEI, texts: list[str], max_chars: int = 1000) -> np.ndarray:
    return normalise(np.asarray([tei.vector(t[:max_chars]) for t in texts], dtype=np.float32))


def assert_judged(tei, anchors, results, skip=()):
    for i, (anchor, result) in enumerate(zip(anchors, results)):
        if i in skip:
            continue
        assert isinstance(result, Judgement), f"anchor {i}: {result!r}"
        assert np.allclose(result.vectors, expected_vectors(tei, [anchor, f"positive {i}", f"negative {i}"]),
                           atol=1e-6), f"anchor {i} got someone else's vectors"


async def test_eleven_anchors_fit_tei_default_batch_and_each_gets_its_own_vectors(tei):
    server = tei()
    anchors = [SHORT.format(i=i) for i in range(11)]
    results = await judge_all(server, anchors)
    assert_judged(server, anchors, results)
    assert server.sizes(413) == [] and sorted(server.sizes()) == [1, 32]


async def test_a_4000_character_anchor_does_not_fail_its_batch(tei):
    server = tei()
    anchors = [SHORT.format(i=i) for i in range(5)]
    anchors[2] = ("A very long anchor sentence about guitars and stages. " * 80)[:4000]
    results = await judge_all(server, anchors)
    assert_judged(server, anchors, results)
    assert server.sizes(413) == [] and max(len(t) for inputs, _ in server.requests for t in inputs) == 1000


async def test_an_input_tei_still_refuses_fails_only_its_own_anchor(tei):
    """With the client-side bound lifted, the long anchor's 413 splits the batch: only that anchor fails."""
    server = tei()
    anchors = [SHORT.format(i=i) for i in range(5)]
    anchors[2] = "word " * 800
    results = await judge_all(server, anchors, embeddings_max_chars=4000)
    assert isinstance(results[2], JudgeUnavailable) and results[2].kind == "http_413"
    assert "must have less than 512 tokens" in str(results[2])
    for i in (0, 1, 3, 4):
        assert isinstance(results[i], Judgement)
        assert np.allclose(results[i].vectors,
                           expected_vectors(server, [anchors[i], f"positive {i}", f"negative {i}"]), atol=1e-6)


async def test_a_server_limit_below_our_batch_is_met_by_splitting_on_413(tei):
    """TEI run with --max-client-batch-size 8 against our 32: every anchor is judged; the 413s are split, never
    resent as they were (3 of them: 32 and its two halves), and the next batches go out at 8 texts."""
    server = tei(max_client_batch_size=8)
    anchors = [SHORT.format(i=i) for i in range(11)]
    results = await judge_all(server, anchors, embeddings_batch=32)
    assert_judged(server, anchors, results)
    assert sorted(server.sizes(413)) == [16, 16, 32] and max(server.sizes(200)) == 8


def test_the_embeddings_batch_defaults_to_tei_limit():
    assert Settings().embeddings_batch == 32 and Settings().embeddings_max_chars == 1000
