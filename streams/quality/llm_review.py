"""A second opinion from an LLM judge with its own model (off unless PAIRSTREAM_REVIEW_LLM_BASE_URL is set).

A larger model reviewing a small one's output reads meaning the way the readers of issue 24 did: it is
given their rubric, and answers with one of their labels per sentence (JSON-schema output, the same
labels as `tests/data/judge/`). Anything but `ok` refuses the pair, naming the label:
`llm_judge_positive` (copy, meaning_changed, off_topic, fragment_or_ungrammatical, repetition) and
`llm_judge_negative` (false_negative, nonsense_or_ungrammatical, fragment, repetition).

It is an OpenAI-compatible chat endpoint of its own (its URL, model, key, timeout), called through the
same client, retries and outage gate as the generator's LLM: a judge that is down holds anchors. An
answer that is not the schema is asked once more at temperature 0.3; then the pair cannot be judged.
"""

import asyncio
from typing import Awaitable, Callable

import orjson
from pydantic import SecretStr

from streams.generate.llm import ChatRequest, LLMClient
from streams.generate.outage import OutageGate
from streams.generate.resilience import RetryPolicy
from streams.generate.validation import Problem
from streams.quality.embedder import EmbeddingError, backend_call

POSITIVE_LABELS = ("ok", "copy", "meaning_changed", "off_topic", "fragment_or_ungrammatical", "repetition")
NEGATIVE_LABELS = ("ok", "false_negative", "nonsense_or_ungrammatical", "fragment", "repetition")

RUBRIC = """You review training data for a sentence-embedding model. Given an anchor sentence, a positive and \
a negative, label each with exactly one label.

positive:
- ok: a fluent, complete sentence that means the same as the anchor, in different words.
- copy: the anchor with only small-word, tense, pronoun or one-synonym edits, or a clause cut out of it.
- meaning_changed: anything invented, swapped or dropped: a place, an object, an event, who does what to whom.
- off_topic: about something else.
- fragment_or_ungrammatical: not a complete, grammatical sentence.
- repetition: repeats words or phrases in a loop.

negative:
- ok: a fluent sentence that clearly does not mean the same as the anchor (sharing words is fine).
- false_negative: true of the anchor, entailed by it, or only a shorter restatement of it.
- nonsense_or_ungrammatical: does not make sense, or is not grammatical.
- fragment: not a complete sentence.
- repetition: repeats words or phrases in a loop.

Answer with JSON only."""


def review_schema(with_negative: bool) -> dict:
    properties = {"positive": {"type": "string", "enum": list(POSITIVE_LABELS)}}
    if with_negative:
        properties["negative"] = {"type": "string", "enum": list(NEGATIVE_LABELS)}
    return {"type": "json_schema", "json_schema": {"name": "review", "strict": True, "schema": {
        "type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}}}


def review_messages(anchor: str, positive: str, negative: str | None) -> list[dict[str, str]]:
    record = {"anchor": anchor, "positive": positive} | ({"negative": negative} if negative is not None else {})
    return [{"role": "system", "content": RUBRIC},
            {"role": "user", "content": orjson.dumps(record, option=orjson.OPT_INDENT_2).decode()}]


def parse_review(content: str, with_negative: bool) -> dict[str, str] | None:
    """The labels, or None when the answer is not the schema."""
    try:
        data = orjson.loads(content.strip().removeprefix("```json").removesuffix("```"))
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict) or data.get("positive") not in POSITIVE_LABELS:
        return None
    if with_negative and data.get("negative") not in NEGATIVE_LABELS:
        return None
    return {k: data[k] for k in ("positive", "negative") if k in data}


class LLMReviewer:
    name = "llm_judge"

    def __init__(self, base_url: str, model: str, *, api_key: SecretStr | None = None, timeout_s: float = 60.0,
                 max_tokens: int = 64, retry: RetryPolicy | None = None, gate: OutageGate | None = None,
                 max_connections: int = 8, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep):
        self.client = LLMClient(base_url, api_key=api_key, timeout_s=timeout_s, max_connections=max_connections)
        self.model, self.max_tokens = model, max_tokens
        self.retry = retry or RetryPolicy()
        self.gate = gate or OutageGate(backend="LLM judge")
        self._sleep = sleep

    async def labels(self, anchor: str, positive: str, negative: str | None) -> dict[str, str]:
        with_negative = negative is not None
        for temperature in (0.0, 0.3):
            request = ChatRequest(model=self.model, messages=review_messages(anchor, positive, negative),
                                  temperature=temperature, max_tokens=self.max_tokens,
                                  response_format=review_schema(with_negative))
            response = await backend_call("LLM judge", lambda: self.client.chat(request), retry=self.retry,
                                          gate=self.gate, sleep=self._sleep)
            labels = parse_review(response.content, with_negative)
            if labels is not None:
                return labels
        raise EmbeddingError("bad_review", f"LLM judge: no review in its answer: {response.content[:120]!r}")

    async def review(self, anchor: str, positive: str, negative: str | None) -> list[Problem]:
        labels = await self.labels(anchor, positive, negative)
        found = []
        if labels["positive"] != "ok":
            found.append(Problem("llm_judge_positive", f"the LLM judge labels the positive {labels['positive']}"))
        if labels.get("negative", "ok") != "ok":
            found.append(Problem("llm_judge_negative", f"the LLM judge labels the negative {labels['negative']}"))
        return found

    async def aclose(self) -> None:
        await self.client.aclose()
