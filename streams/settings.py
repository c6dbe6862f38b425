"""Every pairstream setting, read from `PAIRSTREAM_*` environment variables and CLI flags.

One pydantic-settings model is the single list of settings: the CLI derives its
flags from it, `docker-compose.yml` and `ops/` are checked against it by a test,
and a bad value fails fast with the setting's name (exit code 2). It runs past 300 lines because it is
that list, one field and its description each; splitting it would split the single source.
"""

import typing
from pathlib import Path
from typing import Literal

import orjson
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.anchor import Action

ENV_PREFIX = "PAIRSTREAM_"
# Fields of a chat-completions request that pairstream sets itself (streams.generate.llm.ChatRequest), which
# PAIRSTREAM_LLM_EXTRA_BODY may not override.
CHAT_REQUEST_FIELDS = frozenset({"model", "messages", "temperature", "max_tokens", "frequency_penalty",
                                 "presence_penalty", "response_format", "logprobs", "top_logprobs", "stream"})


class Settings(BaseSettings):
    """pairstream configuration. Field `foo_bar` is env `PAIRSTREAM_FOO_BAR` and flag `--foo-bar`."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", validate_default=True)

    # Kafka
    broker: str = Field("kafka://127.0.0.1:9092", description="Kafka bootstrap servers, e.g. kafka://host1:9092;host2:9092.")
    broker_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="Kafka security protocol."
    )
    broker_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "PLAIN", description="SASL mechanism for SASL_* protocols."
    )
    broker_sasl_username: str | None = Field(None, description="SASL user name.")
    broker_sasl_password: SecretStr | None = Field(None, description="SASL password (secret).")
    broker_ca_file: Path | None = Field(None, description="CA bundle that signs the brokers' certificates.")
    anchors_topic: str = Field("anchors", description="Topic the worker consumes anchors from.")
    triplets_topic: str = Field("triplets", description="Topic the worker produces triplet records to.")
    dlq_topic: str = Field("anchors-dlq", description="Dead-letter topic for anchors that cannot become triplets.")
    app_id: str = Field("pairstream", description="Faust app id, which is also the consumer group.")
    topic_partitions: int = Field(8, ge=1, description="Partitions of topics pairstream creates when missing.")
    topic_replicas: int = Field(1, ge=1, description="Replication factor of topics pairstream creates when missing.")
    broker_session_timeout_s: float = Field(
        10.0, gt=0, description="Consumer-group session timeout; a new member's first join waits about half of it."
    )

    # LLM
    llm_base_url: str = Field("http://127.0.0.1:8000/v1", description="OpenAI-compatible API base URL (ending in /v1).")
    llm_model: str = Field("SmolLM2-135M-Instruct", description="Model name sent in each request.")
    llm_api_key: SecretStr | None = Field(None, description="Bearer token for the LLM server (secret, never logged).")
    llm_timeout_s: float = Field(60.0, gt=0, description="Timeout of one LLM request, in seconds.")
    llm_max_retries: int = Field(4, ge=0, description="Retries of one LLM request on 429/408/409/5xx, connection errors and timeouts.")
    llm_outage_failures: int = Field(
        3, ge=0, description="Consecutive connection errors, timeouts or 5xx that mark an LLM outage: requests then "
        "hold (no retries spent, consumption pauses) and one probe goes out at a time; 0 disables.")
    llm_outage_probe_max_s: float = Field(30.0, gt=0, description="Longest wait between probes during an LLM outage.")
    llm_temperature: float = Field(0.2, ge=0, le=2, description="Sampling temperature of the first attempt.")
    llm_max_tokens: int = Field(256, ge=16, description="max_tokens of each request.")
    llm_frequency_penalty: float | None = Field(
        None, ge=-2, le=2, description="OpenAI's frequency_penalty, sent when set: lowers a token's odds by how "
        "often it already appeared (against loops; see docs/quality.md, Sampling against loops).")
    llm_presence_penalty: float | None = Field(
        None, ge=-2, le=2, description="OpenAI's presence_penalty, sent when set: lowers the odds of any token "
        "that already appeared.")
    llm_extra_body: str | None = Field(
        None, description="A JSON object merged into every chat-completions request, for a server's own sampling "
        "parameters (the OpenAI SDK's extra_body), e.g. llama.cpp's DRY sampler: "
        "'{\"dry_multiplier\": 0.8}', or vLLM's '{\"repetition_penalty\": 1.1}'. It cannot set the request's own "
        "fields (model, messages, temperature...): those have their settings.")
    llm_response_format: Literal["json_schema", "json_object"] = Field(
        "json_schema",
        description="How structured output is asked: `json_schema` (OpenAI, vLLM, llama.cpp) or "
        "`json_object` with an inline schema (llama-cpp-python server, older llama.cpp).",
    )

    # Generation (per-record fields of an anchor override these)
    action: Action = Field("paraphrase", description="What the positive is to the anchor.")
    triplet: bool = Field(True, description="Also generate a negative.")
    hard_negative: bool = Field(False, description="Negative shares words and structure with the anchor but means something else.")
    context: str = Field("", description="Text that steers generation (empty: none).")
    structured_output: bool = Field(True, description="Ask for JSON-schema output; false uses the plain-text format.")
    max_generation_attempts: int = Field(3, ge=1, description="Attempts at a valid output per anchor (re-asks on unparseable or invalid output).")
    candidates: int = Field(
        1, ge=1, le=8, description="Candidates asked for per attempt (best of n): each is checked and judged, and "
        "the best that passes is delivered; with the quality gate off only the first is used. Concurrent requests "
        "of one prompt, so the server's prompt cache serves all but the first.")
    max_anchor_chars: int = Field(4000, ge=1, description="Longer anchors are dead-lettered (stage validate).")
    dlq_max_raw_bytes: int = Field(
        65536, ge=0, description="A dead letter keeps at most this many bytes of the original value (`raw_truncated`).")
    max_output_chars: int = Field(400, ge=8, description="maxLength of each generated sentence.")

    # Quality gate (embedding checks on every generated pair)
    quality: Literal["gate", "flag", "off"] = Field(
        "gate", description="`gate`: a pair that fails the embedding checks is re-asked, then dead-lettered (stage "
        "quality); `flag`: delivered with its scores and a failed verdict, no re-ask; `off`: no scoring.")
    quality_max_copy: float = Field(
        0.95, gt=0, le=1, description="A positive this similar to the anchor (cosine) is a near-copy.")
    quality_max_char_ratio: float = Field(
        0.9, gt=0, le=1, description="A positive whose text matches the anchor's this closely, character for "
        "character (case and punctuation folded), is a near-copy whatever its cosine.")
    quality_min_topic: float = Field(
        0.5, ge=-1, lt=1, description="A positive less similar to the anchor than this (cosine) is off topic.")
    quality_negative_ratio: float = Field(
        0.95, gt=0, le=1, description="A negative must stay below this share of the positive's similarity to the "
        "anchor (positive-aware false-negative rule, sign-safe).")
    quality_min_hard_negative: float = Field(
        0.3, ge=-1, le=1, description="A hard negative less similar to the anchor than this (cosine) is too easy.")
    quality_min_token_match: float = Field(
        0.3, ge=-1, le=1, description="A positive with a content token whose best cosine with the anchor's tokens "
        "is below this says something the anchor does not (`invented`; in-process model only).")
    quality_max_negative_containment: float = Field(
        0.6, ge=-1, le=1.01, description="A negative whose every content token matches one of the anchor's at "
        "least this closely is true of the anchor (`entailed_negative`; in-process model only; above 1: off).")
    quality_round_trip: bool = Field(
        True, description="A positive closer to another sentence of the stream's recent records than to its own "
        "anchor is refused (`round_trip`; Promptagator's consistency filter; uses the mining window, so it needs "
        "PAIRSTREAM_MINED_NEGATIVES > 0).")
    mined_negatives: int = Field(
        3, ge=0, le=32, description="Hard negatives to mine per record from the sentences of earlier records in "
        "the stream (needs the quality embeddings; 0 disables).")
    mining_window: int = Field(
        10_000, ge=1, description="Most sentences (anchors and positives of recent records) the mining index keeps.")
    mining_max_age_s: float = Field(
        3600.0, gt=0, description="Sentences older than this leave the mining index.")
    mining_shared: bool = Field(
        True, description="Mine from the whole consumer group's recent sentences: share this worker's (with int8 "
        "vectors) on PAIRSTREAM_MINING_TOPIC and follow every worker's there (every partition, no group), the "
        "topic's recent past read at start-up; false: each worker mines only from what it delivered.")
    mining_topic: str = Field(
        "", description="Topic of the group's mining sentences (anchor and positive of each record with their "
        "vectors; `schemas/mining.py`). Empty: the triplets topic's name + `-mining`.")
    mining_negative_ratio: float = Field(
        0.95, gt=0, le=1, description="A mined negative must stay below this share of the positive's similarity "
        "to the anchor (positive-aware, sign-safe); lower keeps fewer near-paraphrases (false negatives).")
    mining_min_score: float = Field(
        0.0, ge=-1, lt=1, description="A mined negative must be at least this similar to the anchor (cosine): "
        "below it, a sentence is no harder than a random one.")
    embeddings_base_url: str | None = Field(
        None, description="OpenAI-compatible base URL (ending in /v1) of an embeddings server (TEI, vLLM, Infinity, "
        "Ollama, OpenAI); unset: all-MiniLM-L6-v2 in-process.")
    embeddings_model: str = Field(
        "sentence-transformers/all-MiniLM-L6-v2", description="Embedding model name sent to the embeddings server.")
    embeddings_api_key: SecretStr | None = Field(None, description="Bearer token for the embeddings server (secret).")
    embeddings_timeout_s: float = Field(30.0, gt=0, description="Timeout of one embeddings request, in seconds.")
    embeddings_batch: int = Field(
        32, ge=1, description="Most texts in one embeddings call (micro-batch); never more than the server "
        "takes (TEI's --max-client-batch-size is 32 by default). A server that answers 413 gets halves.")
    embeddings_max_chars: int = Field(
        1000, ge=1, description="Texts sent to the embeddings server are cut to this many characters, so "
        "none exceeds the model's token limit (512 word pieces for BERT models; 1000 characters of English "
        "is about 250; the in-process model reads its first 256 tokens). Lower it for CJK text (about a "
        "token a character).")
    embeddings_wait_ms: float = Field(
        5.0, ge=0, description="Longest wait for a micro-batch to fill before it is sent.")

    # Second opinions (off by default): a cross-encoder and an LLM judge review the pairs the checks pass
    review_rerank_url: str | None = Field(
        None, description="URL of a /rerank endpoint serving a cross-encoder (TEI, Infinity, vLLM), e.g. "
        "http://tei:8080/rerank: it scores anchor-positive and anchor-negative read together; unset: no such review.")
    review_rerank_api: Literal["tei", "cohere"] = Field(
        "tei", description="Request form of the /rerank endpoint: `tei` (query, texts) or `cohere` (model, query, "
        "documents: Cohere, Jina, Infinity, vLLM).")
    review_rerank_model: str = Field("", description="Model name sent to a `cohere`-form /rerank endpoint.")
    review_rerank_api_key: SecretStr | None = Field(None, description="Bearer token for the /rerank endpoint (secret).")
    review_rerank_min_positive: float = Field(
        0.75, description="A positive the cross-encoder scores below this with the anchor is refused (`rerank_positive`).")
    review_rerank_max_negative: float = Field(
        0.5, description="A negative the cross-encoder scores above this with the anchor is refused (`rerank_negative`).")
    review_llm_base_url: str | None = Field(
        None, description="OpenAI-compatible base URL (ending in /v1) of an LLM judge, a model of its own that "
        "answers yes/no questions about each pair's meaning (`llm_judge_positive`, `llm_judge_negative`); best of n "
        "ranks candidates by its scores; unset: none.")
    review_llm_model: str = Field("", description="Model name sent to the LLM judge.")
    review_llm_api_key: SecretStr | None = Field(None, description="Bearer token for the LLM judge (secret).")
    review_llm_timeout_s: float = Field(60.0, gt=0, description="Timeout of one LLM judge request, in seconds.")
    review_llm_min_positive: float = Field(
        0.5, ge=0, le=1, description="A positive the LLM judge gives a lower probability of keeping the anchor's "
        "meaning (nothing added, nothing dropped) is refused (`llm_judge_positive`).")
    review_llm_max_negative: float = Field(
        0.5, ge=0, le=1, description="A negative the LLM judge finds true of the anchor with a higher probability "
        "is refused (`llm_judge_negative`).")

    # Worker
    concurrency: int | Literal["auto"] = Field(
        8, description="LLM requests in flight per worker: an integer, or `auto` to find the backend's capacity "
        "(additive increase, multiplicative decrease on 429/503 or rising latency).")
    concurrency_max: int = Field(256, ge=1, description="Upper bound of `auto` concurrency.")
    consumer_fetch_max_wait_ms: int = Field(
        100, ge=1, le=30000, description="Longest wait of one fetch for new anchors. Kafka answers as soon as data "
        "arrives, but some compatible brokers (the embedded Tansu) hold the whole wait, adding it to latency.")
    producer_linger_ms: float = Field(
        20.0, ge=0, description="How long the worker batches output records before producing them; fewer, larger "
        "produce requests cost the broker and the worker much less CPU per record.")
    producer_delivery_timeout_s: float = Field(
        1200.0, gt=0, description="How long the producer tries to deliver an output record (Faust's "
        "producer_request_timeout, aiokafka's request_timeout_ms: each produce request's timeout and a batch's "
        "expiry); past it, during a broker outage, the worker waits and sends the record again, never a dead letter.")
    commit_interval_s: float = Field(
        1.0, gt=0, description="How often finished anchors' offsets are committed; shorter means fewer "
        "re-processed anchors after a crash.")
    skip_produced: bool = Field(
        True, description="Follow the triplets topic (every partition, no consumer group) for the ids the group has "
        "delivered, and ack a redelivered anchor whose triplet is already out without asking the LLM again (a "
        "dead-lettered anchor sent again is generated again).")
    produced_lookback: int = Field(
        20_000, ge=0, description="At start-up, how many of the latest records of each triplets partition are read "
        "for their ids before the first anchor is taken.")
    produced_capacity: int = Field(
        0, ge=0, description="Most delivered ids a worker keeps, as 64-bit hashes, oldest forgotten first (86 "
        "bytes an id); 0: what the lookback reads, PRODUCED_LOOKBACK x TOPIC_PARTITIONS (at least 10,000).")
    drain_timeout_s: float = Field(
        30.0, ge=0, description="On SIGTERM or when partitions are revoked, how long in-flight anchors may take to "
        "finish; the rest are not committed and are redelivered.")
    web_port: int = Field(6066, ge=0, le=65535, description="Port of the worker's web server.")
    web_host: str = Field("127.0.0.1", description="Interface of the worker's web server.")
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Log level.")
    log_format: Literal["text", "json"] = Field("text", description="`json` for one JSON object per log line.")

    @field_validator("concurrency")
    @classmethod
    def _positive(cls, value: int | str) -> int | str:
        if value != "auto" and value < 1:
            raise ValueError("must be an integer >= 1 or auto")
        return value

    @field_validator("llm_base_url", "embeddings_base_url")
    @classmethod
    def _http_url(cls, value: str | None, info) -> str | None:
        if value in (None, "") and info.field_name == "embeddings_base_url":
            return None  # unset: the local model
        if not value or not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("broker")
    @classmethod
    def _broker_url(cls, value: str) -> str:
        if not bootstrap_servers(value):
            raise ValueError("must name at least one host:port")
        return value

    @field_validator("llm_extra_body")
    @classmethod
    def _extra_body_is_an_object(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        try:
            body = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"must be a JSON object ({exc})") from None
        if not isinstance(body, dict):
            raise ValueError("must be a JSON object")
        taken = sorted(set(body) & CHAT_REQUEST_FIELDS)
        if taken:
            raise ValueError(f"cannot set {', '.join(taken)}: the request's own fields have their own settings")
        return value

    @property
    def llm_extra(self) -> dict:
        """`llm_extra_body` parsed (empty when unset)."""
        return orjson.loads(self.llm_extra_body) if self.llm_extra_body else {}

    @property
    def bootstrap_servers(self) -> list[str]:
        return bootstrap_servers(self.broker)

    @property
    def mining_topic_name(self) -> str:
        return self.mining_topic or f"{self.triplets_topic}-mining"

    @property
    def mines_from_group(self) -> bool:
        """Whether the workers share and follow the mining topic (needs the quality embeddings and mining on)."""
        return self.quality != "off" and self.mined_negatives > 0 and self.mining_shared

    @property
    def produced_ids_kept(self) -> int:
        """`produced_capacity`, or (0) what the lookback reads: lookback x the triplets topic's partitions."""
        return self.produced_capacity or max(10_000, self.produced_lookback * self.topic_partitions)


def bootstrap_servers(broker: str) -> list[str]:
    """`kafka://a:9092;b:9092` (Faust's form) or `a:9092,b:9092` -> ["a:9092", "b:9092"] for aiokafka."""
    hosts = []
    for part in broker.replace(",", ";").split(";"):
        part = part.strip().removeprefix("kafka://").removeprefix("aiokafka://").strip("/")
        if part:
            hosts.append(part)
    return hosts


def env_name(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


class SettingsError(Exception):
    """A setting has a bad value; `str()` is a one-line message naming it."""


def load_settings(**overrides) -> Settings:
    """Settings from the environment, with `overrides` (CLI flags) winning. Raises SettingsError."""
    overrides = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else "?"
        # Never echo the input of a secret setting.
        shown = "" if is_secret(field) else f" (got {err.get('input')!r})"
        raise SettingsError(f"{env_name(field)} / --{field.replace('_', '-')}: {err['msg']}{shown}") from None


def is_secret(field: str) -> bool:
    """A setting typed SecretStr (alone or optional); an unknown field counts as secret, to be safe."""
    info = Settings.model_fields.get(field)
    if info is None:
        return True
    return info.annotation is SecretStr or SecretStr in typing.get_args(info.annotation)
