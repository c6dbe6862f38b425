"""The anchor record: the value users publish on the `anchors` topic.

A value is either a JSON object of this shape or bare UTF-8 text (the anchor
itself). Types are strict on purpose: `"triplet": "yes"` is a user mistake that
must become a dead letter with a clear message, not a silent coercion.
"""

from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, field_validator

Action = Literal["paraphrase", "semantically-similar", "query", "answer"]
ACTIONS: tuple[str, ...] = get_args(Action)


class AnchorIn(BaseModel):
    """One anchor sentence plus optional per-record overrides of the worker defaults."""

    model_config = ConfigDict(extra="ignore", title="Anchor")

    anchor: StrictStr = Field(description="The sentence to generate a positive (and negative) for.")
    id: StrictStr | None = Field(
        default=None,
        min_length=1,
        description="Record id; when absent it is derived from (topic, partition, offset).",
    )
    context: StrictStr | None = Field(default=None, description="Optional text that steers generation.")
    action: Action | None = Field(default=None, description="What the positive is to the anchor.")
    triplet: StrictBool | None = Field(default=None, description="Also generate a negative.")
    hard_negative: StrictBool | None = Field(
        default=None, description="Make the negative share words and structure with the anchor."
    )
    metadata: dict[str, Any] | None = Field(default=None, description="Carried through to the output record.")

    @field_validator("anchor")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("anchor is empty or whitespace only")
        return value
