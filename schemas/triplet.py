"""The triplet record: the value pairstream produces on the `triplets` topic (key = `id`).

`anchor`, `positive`, `negative` are the columns sentence-transformers loads as a
triplet dataset; the other fields say how each row was made, so a dataset can be
audited, filtered and deduplicated (`id` is deterministic per source anchor).
"""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.anchor import Action

# 2: `quality` (embedding scores and verdict); 3: `mined_negatives`. From 3 on, bump it only for a change an older
# reader cannot read (a field removed, renamed or retyped): a sink leaves out fields it does not know and keeps the
# record, but refuses a record of a newer version (`streams.dataset.wire`). A new optional field needs no bump.
SCHEMA_VERSION = 3


class Source(BaseModel):
    """Where the anchor came from on Kafka."""

    model_config = ConfigDict(extra="forbid")

    topic: str
    partition: int
    offset: int


class Usage(BaseModel):
    """Token usage reported by the LLM server, summed over every attempt."""

    model_config = ConfigDict(extra="forbid")

    prompt_tokens: int = 0
    completion_tokens: int = 0


class Quality(BaseModel):
    """How an embedding model judged the pair (cosine similarities of unit vectors)."""

    model_config = ConfigDict(extra="forbid")

    anchor_positive: float = Field(description="Cosine anchor-positive.")
    anchor_negative: float | None = Field(default=None, description="Cosine anchor-negative (null without one).")
    margin: float | None = Field(default=None, description="anchor_positive - anchor_negative; below 0: inverted.")
    model: str = Field(description="The embedding model that made the scores.")
    verdict: Literal["pass", "fail"] = Field(description="`fail` only with PAIRSTREAM_QUALITY=flag.")
    problems: list[str] = Field(default_factory=list, description="What failed: near_copy, off_topic, "
                                "false_negative, easy_negative.")
    judge_positive: float | None = Field(default=None, description="The LLM judge's probability that the positive "
                                         "keeps the anchor's meaning (null: no LLM judge asked).")
    judge_negative: float | None = Field(default=None, description="The LLM judge's probability that the negative "
                                         "is true of the anchor (null: no LLM judge asked, or no negative).")
    candidates: int | None = Field(default=None, description="Candidates judged in the attempt this pair won "
                                   "(best of n; null: one).")


class MinedNegative(BaseModel):
    """A sentence of an earlier record in the stream, mined as an extra negative for this anchor."""

    model_config = ConfigDict(extra="forbid")

    text: str
    score: float = Field(description="Cosine with the anchor; below the positive's by the positive-aware rule.")
    source_id: str = Field(description="Id of the record the sentence was taken from (its anchor or positive).")


class TripletRecord(BaseModel):
    """A validated (anchor, positive, negative) example."""

    model_config = ConfigDict(extra="forbid", title="Triplet")

    id: str
    anchor: str
    positive: str
    negative: str | None = Field(description="null when `triplet` is false.")
    model_name: str = Field(description="The model that generated the record, as the server reported it.")
    action: Action
    triplet: bool
    hard_negative: bool
    context: str | None
    metadata: dict[str, Any] | None
    usage: Usage
    attempts: int = Field(ge=1, description="LLM requests it took, retries included.")
    latency_ms: float = Field(ge=0, description="Time from consumption to generation, in milliseconds.")
    generated_at: datetime
    source: Source
    quality: Quality | None = Field(default=None, description="Embedding scores (null with PAIRSTREAM_QUALITY=off).")
    mined_negatives: list[MinedNegative] = Field(
        default_factory=list, description="Hard negatives mined from the stream, hardest first (empty while the "
        "worker's index warms up, or with PAIRSTREAM_MINED_NEGATIVES=0 or PAIRSTREAM_QUALITY=off).")
    schema_version: int = SCHEMA_VERSION
