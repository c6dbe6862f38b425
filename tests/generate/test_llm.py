"""The OpenAI-compatible client against a real HTTP server (the fake), and the retry policy of the generator."""

import time

import pytest
from pydantic import SecretStr

from schemas import Source
from streams.generate.decode import decode_anchor
from streams.generate.generator import Generated, GenerationFailure, Generator
from streams.generate.resilience import RetryPolicy
from streams.generate.llm import ChatRequest, LLMClient, LLMError, parse_retry_after
from streams.settings import CHAT_REQUEST_FIELDS, Settings, SettingsError, load_settings
from streams.bench.fake_llm import Reply

REQ = ChatRequest(model="m", messages=[{"role": "user", "content": "## Anchor\n\nhi there\n"}], temperature=0,
                  max_tokens=32, response_format={"type": "json_object"})


async def test_chat_returns_content_model_and_usage(fake_llm):
    llm = fake_llm(model="served-model")
    async with LLMClient(llm.base_url, api_key=SecretStr("sk-test")) as client:
        resp = await client.chat(REQ)
    assert resp.model == "served-model" and "hi there" in resp.content
    assert resp.usage.prompt_tokens == 50 and resp.finish_reason == "stop"
    assert llm.headers[0]["Authorization"] == "Bearer sk-test"
    assert llm.requests[0]["model"] == "m" and llm.requests[0]["response_format"] == {"type": "json_object"}


@pytest.mark.parametrize("status,retryable", [(429, True), (408, True), (409, True), (500, True), (503, True),
                                              (400, False), (401, False), (404, False), (422, False)])
async def test_http_errors_are_classified(fake_llm, status, retryable):
    llm = fake_llm(behaviour=lambda body, n: Reply(status=status, content="boom", headers={"Retry-After": "7"}))
    async with LLMClient(llm.base_url) as client:
        with pytest.raises(LLMError) as err:
            await client.chat(REQ)
    assert err.value.status == status and err.value.retryable is retryable
    assert err.value.retry_after == 7 and "boom" in str(err.value)


async def test_timeout_and_connection_errors_are_retryable(fake_llm):
    llm = fake_llm(behaviour=lambda body, n: Reply(delay_s=5))
    async with LLMClient(llm.base_url, timeout_s=0.3) as client:
        t0 = time.monotonic()
        with pytest.raises(LLMError) as err:
            await client.chat(REQ)
        # it gave up before the answer came (5 s): a timeout, not a slow reply
        assert err.value.kind == "timeout" and err.value.retryable and time.monotonic() - t0 < 5
    async with LLMClient("http://127.0.0.1:1/v1") as client:
        with pytest.raises(LLMError) as err:
            await client.chat(REQ)
        assert err.value.kind == "connection" and err.value.retryable


async def test_non_json_response_is_an_error(fake_llm):
    llm = fake_llm(behaviour=lambda body, n: Reply(body=b"<html>gateway</html>"))
    async with LLMClient(llm.base_url) as client:
        with pytest.raises(LLMError) as err:
            await client.chat(REQ)
    assert err.value.kind == "bad_response"


def test_retry_after_seconds_and_http_date():
    assert parse_retry_after("3") == 3
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480 - 10) == 10
    assert parse_retry_after("garbage") is None and parse_retry_after(None) is None
    assert RetryPolicy(retry_after_max_s=5).delay(0, 100) == 5
    assert all(0 <= RetryPolicy(backoff_base_s=1, backoff_max_s=3).delay(r, None) <= 3 for r in range(10))


def anchor_request(text="The sky is blue today.", **settings):
    s = Settings(**settings)
    return s, decode_anchor(text.encode(), Source(topic="t", partition=0, offset=0), s)


async def run_generator(llm, **settings):
    s, req = anchor_request(**settings)
    sleeps = []

    async def fake_sleep(d):
        sleeps.append(d)

    async with LLMClient(llm.base_url) as client:
        result = await Generator(client, s, sleep=fake_sleep).generate(req)
    return result, sleeps


async def test_transient_errors_are_retried_then_succeed(fake_llm):
    llm = fake_llm(behaviour=lambda body, n: Reply(status=503, headers={"Retry-After": "1"}) if n < 2 else None)
    result, sleeps = await run_generator(llm, llm_max_retries=3)
    assert isinstance(result, Generated) and result.attempts == 3 and sleeps == [1, 1]


async def test_retries_spent_is_an_llm_failure(fake_llm):
    llm = fake_llm(behaviour=lambda body, n: Reply(status=429))
    result, sleeps = await run_generator(llm, llm_max_retries=2)
    assert isinstance(result, GenerationFailure) and result.stage == "llm" and result.kind == "http_429"
    assert result.attempts == 3 and len(sleeps) == 2 and "gave up after 3 tries" in result.message


async def test_client_error_is_not_retried(fake_llm):
    llm = fake_llm(behaviour=lambda body, n: Reply(status=400, content="bad model"))
    result, sleeps = await run_generator(llm, llm_max_retries=5)
    assert isinstance(result, GenerationFailure) and result.attempts == 1 and sleeps == []
    assert "HTTP 400" in result.message and "bad model" in result.message


async def test_copied_anchor_is_reasked_with_adjusted_request(fake_llm):
    anchor = "The sky is blue today."

    def behaviour(body, n):
        if n == 0:
            return Reply(content=f'{{"positive": "{anchor}", "negative": "Cats purr."}}')
        return None

    llm = fake_llm(behaviour=behaviour)
    result, _ = await run_generator(llm, llm_temperature=0.2)
    assert isinstance(result, Generated) and result.attempts == 2 and result.positive != anchor
    first, second = llm.requests
    assert second["temperature"] > first["temperature"]
    assert "repeated the anchor" in second["messages"][-1]["content"]


@pytest.mark.parametrize("reply,kind", [
    (Reply(content="not json at all"), "invalid_json"),
    (Reply(content='{"positive": "ok sentence"}'), "schema"),
    (Reply(content='{"positive": "", "negative": "N."}'), "empty_positive"),
    (Reply(content='{"positive": "Fine', finish_reason="length"), "truncated"),
])
async def test_bad_output_ends_as_parse_failure_with_raw_output(fake_llm, reply, kind):
    llm = fake_llm(behaviour=lambda body, n: reply)
    result, _ = await run_generator(llm, max_generation_attempts=3)
    assert isinstance(result, GenerationFailure) and result.stage == "parse" and result.kind == kind
    assert result.attempts == 3 and result.last_output == reply.content


async def test_truncated_output_is_reasked_with_more_tokens(fake_llm):
    llm = fake_llm(behaviour=lambda body, n: Reply(content='{"positive": "Fi', finish_reason="length") if n == 0 else None)
    result, _ = await run_generator(llm, llm_max_tokens=100)
    assert isinstance(result, Generated)
    assert [r["max_tokens"] for r in llm.requests] == [100, 200]


async def test_plain_text_mode_sends_no_response_format_and_parses_sections(fake_llm):
    llm = fake_llm()
    result, _ = await run_generator(llm, structured_output=False)
    assert isinstance(result, Generated) and result.negative
    assert "response_format" not in llm.requests[0]


@pytest.mark.parametrize("served", ["-", "", "  "])
async def test_a_placeholder_model_name_falls_back_to_the_configured_one(fake_llm, served):
    """Some servers answer `"model": "-"` (llama.cpp without an alias): `model_name` must still name the model."""
    result, _ = await run_generator(fake_llm(model=served), llm_model="SmolLM2-135M-Instruct")
    assert isinstance(result, Generated) and result.model_name == "SmolLM2-135M-Instruct"


async def test_the_served_model_name_wins_over_the_configured_one(fake_llm):
    result, _ = await run_generator(fake_llm(model="org/served-model-q4"), llm_model="what-we-asked-for")
    assert result.model_name == "org/served-model-q4"


async def test_sampling_penalties_are_sent_only_when_set(fake_llm):
    """Issue 24: OpenAI's frequency/presence penalties against loops, passed through when configured."""
    llm = fake_llm()
    await run_generator(llm)
    await run_generator(llm, llm_frequency_penalty=0.5, llm_presence_penalty=0.3)
    assert "frequency_penalty" not in llm.requests[0] and "presence_penalty" not in llm.requests[0]
    assert (llm.requests[1]["frequency_penalty"], llm.requests[1]["presence_penalty"]) == (0.5, 0.3)


async def test_extra_body_reaches_the_server_and_cannot_replace_the_requests_own_fields(fake_llm):
    """Issue 24: a server's own sampling parameters (llama.cpp's DRY sampler) pass through
    PAIRSTREAM_LLM_EXTRA_BODY; the request's own fields are refused there, with the setting named."""
    llm = fake_llm()
    await run_generator(llm, llm_extra_body='{"dry_multiplier": 0.8, "dry_allowed_length": 2}')
    assert (llm.requests[0]["dry_multiplier"], llm.requests[0]["dry_allowed_length"]) == (0.8, 2)
    assert llm.requests[0]["model"] and llm.requests[0]["messages"]
    for bad in ('{"temperature": 1.5}', '[1, 2]', '{"dry_multiplier": '):
        with pytest.raises(SettingsError, match="PAIRSTREAM_LLM_EXTRA_BODY"):
            load_settings(llm_extra_body=bad)


def test_the_fields_extra_body_may_not_set_are_the_chat_requests_own():
    assert CHAT_REQUEST_FIELDS == set(ChatRequest.model_fields) - {"extra_body"}
