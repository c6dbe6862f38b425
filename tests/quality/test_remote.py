"""Remote embeddings against a fake OpenAI-compatible `/v1/embeddings`: vectors in input order and unit length,
the API key only in the header, transient faults retried, outages held by the gate, garbage and wrong
dimensions refused with a clear error."""

import numpy as np
import pytest
from pydantic import SecretStr

from streams.bench.fake_llm import Reply
from streams.generate.resilience import RetryPolicy
from streams.generate.outage import OutageGate
from streams.quality.embedder import EmbeddingError
from streams.quality.remote import RemoteEmbedder


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
