"""Generation: one anchor request to a validated (positive, negative) pair, the GenerateSentencePair semantics.

`decode` turns a raw value into an `AnchorRequest`, `task` holds the prompts (`reask` the fixed re-ask notes),
JSON schema and output parsers, `validation` the checks a pair must pass,
`llm` the OpenAI-compatible client, `generator` the re-asks and retries,
`limits` the concurrency limit (fixed or AIMD) and `outage` the worker-wide gate
that holds requests while the backend is down.

No Faust or Kafka here: it is plain asyncio and HTTP, testable without a broker.
May import: `streams.settings`, `streams.metrics`, `schemas`, httpx, pydantic, orjson.
"""
