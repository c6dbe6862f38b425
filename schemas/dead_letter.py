"""The dead-letter record: why an anchor could not become a triplet (topic `anchors-dlq`).

Every anchor ends as a triplet or as one of these: nothing is dropped silently.
`raw` holds the original value so the anchor can be fixed and republished.
"""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.triplet import Quality, Source

Stage = Literal["decode", "validate", "llm", "parse", "quality", "produce"]


class ErrorInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str = Field(description="Machine-readable error kind, for example `invalid_json` or `http_400`.")
    message: str = Field(description="Human-readable explanation.")


class Candidate(BaseModel):
    """One generated pair that parsed and validated but failed the quality gate."""

    model_config = ConfigDict(extra="forbid")

    positive: str
    negative: str | None = None
    quality: Quality


class DeadLetter(BaseModel):
    model_config = ConfigDict(extra="forbid", title="DeadLetter")

    id: str | None = None
    error: ErrorInfo
    stage: Stage
    attempts: int = Field(ge=0, description="LLM requests made before giving up (0 before the LLM stage).")
    raw: str = Field(description="The original value: UTF-8 text, or base64 when `raw_encoding` says so.")
    raw_encoding: Literal["utf-8", "base64"] = "utf-8"
    raw_bytes: int | None = Field(default=None, ge=0, description="Size of the original value in bytes.")
    raw_truncated: bool = Field(
        default=False,
        description="`raw` holds only the first PAIRSTREAM_DLQ_MAX_RAW_BYTES bytes; the whole value is at `source`.")
    last_output: str | None = Field(default=None, description="The model's last raw output (stage `parse`).")
    quality: Quality | None = Field(default=None, description="Scores of the best candidate (stage `quality`).")
    candidates: list[Candidate] | None = Field(
        default=None, description="Every candidate the gate refused, best first (stage `quality`).")
    source: Source
    failed_at: datetime
