"""Kafka value -> anchor request, or a precise reason why not.

Decoding never raises: bad input must become a dead letter with a clear message
while the worker keeps going. A value is a JSON object (see `schemas.AnchorIn`)
or bare UTF-8 text taken as the anchor itself.
"""

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError

from schemas import AnchorIn, Source
from streams.settings import Settings
from streams.generate.task import TaskSpec


@dataclass(frozen=True)
class AnchorRequest:
    """A decoded anchor with the worker defaults applied."""

    id: str
    anchor: str
    spec: TaskSpec
    metadata: dict[str, Any] | None
    source: Source


@dataclass(frozen=True)
class DecodeFailure:
    stage: str  # "decode" (not readable) or "validate" (readable, not acceptable)
    kind: str
    message: str
    id: str | None = None


def record_id(topic: str, partition: int, offset: int, raw: bytes | None) -> str:
    """Deterministic id of an anchor without an `id`: the same source message always gets the same id.

    The value is part of the hash so that a recreated topic (offsets start again) does not
    collide with ids already in a dataset.
    """
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{topic}\0{partition}\0{offset}\0".encode())
    h.update(raw or b"")
    return h.hexdigest()


def raw_field(raw: bytes | None, max_bytes: int | None = None) -> tuple[str, str, bool]:
    """The original value for a dead letter: UTF-8 text, or base64 when it is not UTF-8, and whether it was cut.

    A value longer than `max_bytes` is cut to that many bytes (at a character boundary
    for text): a dead letter carrying a megabyte would itself be too large for the topic.
    """
    if raw is None:
        return "", "utf-8", False
    cut = max_bytes is not None and len(raw) > max_bytes
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return base64.b64encode(raw[:max_bytes] if cut else raw).decode("ascii"), "base64", cut
    return (raw[:max_bytes].decode("utf-8", errors="ignore") if cut else raw.decode("utf-8")), "utf-8", cut


def _pydantic_message(exc: ValidationError) -> tuple[str, str]:
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err["loc"]) or "value"
    kind = {"anchor": "invalid_anchor", "action": "unknown_action"}.get(field, f"invalid_{field}")
    if field == "anchor" and err["type"] == "missing":
        kind = "missing_anchor"
    return kind, f"{field}: {err['msg']}"


def decode_anchor(raw: bytes | None, source: Source, settings: Settings) -> AnchorRequest | DecodeFailure:
    default_id = record_id(source.topic, source.partition, source.offset, raw)
    if not raw:
        return DecodeFailure("decode", "empty_value", "the message value is empty", default_id)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return DecodeFailure("decode", "not_utf8", f"the value is not UTF-8 ({exc.reason} at byte {exc.start})", default_id)

    stripped = text.strip()
    fields: dict[str, Any]
    try:
        parsed = orjson.loads(stripped)
    except orjson.JSONDecodeError as exc:
        if stripped.startswith("{"):
            return DecodeFailure("decode", "invalid_json", f"the value looks like JSON but does not parse: {exc}", default_id)
        fields = {"anchor": text}  # bare text, even if it starts with "[" ("[Applause] ...")
    else:
        if isinstance(parsed, dict):
            fields = parsed
        elif isinstance(parsed, str):
            fields = {"anchor": text}  # a quoted sentence is bare text: keep its quotes
        else:
            kind = "null" if parsed is None else type(parsed).__name__
            return DecodeFailure(
                "decode", "not_an_object",
                f'the value is JSON {kind}; expected an object like {{"anchor": "..."}} or bare text', default_id,
            )

    try:
        anchor_in = AnchorIn.model_validate(fields)
    except ValidationError as exc:
        kind, message = _pydantic_message(exc)
        given_id = fields.get("id") if isinstance(fields.get("id"), str) and fields.get("id") else None
        return DecodeFailure("validate", kind, message, given_id or default_id)

    rid = anchor_in.id or default_id
    if len(anchor_in.anchor) > settings.max_anchor_chars:
        return DecodeFailure(
            "validate", "anchor_too_long",
            f"anchor has {len(anchor_in.anchor)} characters, more than PAIRSTREAM_MAX_ANCHOR_CHARS={settings.max_anchor_chars}",
            rid,
        )
    context = anchor_in.context if anchor_in.context is not None else (settings.context or None)
    spec = TaskSpec(
        action=anchor_in.action or settings.action,
        triplet=settings.triplet if anchor_in.triplet is None else anchor_in.triplet,
        hard_negative=settings.hard_negative if anchor_in.hard_negative is None else anchor_in.hard_negative,
        context=context or None,
    )
    return AnchorRequest(id=rid, anchor=anchor_in.anchor, spec=spec, metadata=anchor_in.metadata, source=source)
