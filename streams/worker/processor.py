"""One Kafka message -> exactly one output record: a triplet, or a dead letter that says why.

This is the whole per-anchor logic, free of Faust, so it can be tested and
benchmarked on its own. `process()` never raises for bad input or LLM trouble:
those become dead letters. Only a bug can raise, and the agent treats that as
fatal rather than skipping the message.
"""

import time
from collections.abc import Container
from dataclasses import dataclass
from datetime import datetime, timezone

from schemas import Candidate, DeadLetter, ErrorInfo, MinedNegative, Quality, Source, TripletRecord, Usage
from streams.generate.decode import DecodeFailure, decode_anchor, raw_field
from streams.generate.generator import GenerationFailure, Generator
from streams.settings import Settings


@dataclass(frozen=True)
class Outcome:
    """What to produce for one anchor: `topic` is the triplets or the dead-letter topic."""

    kind: str  # "triplet", "dead_letter", or "skipped" (already produced: nothing to send)
    topic: str
    key: bytes | None
    value: bytes
    stage: str | None = None  # dead letters only
    error_kind: str | None = None
    reason: str | None = None  # the error message, for the dead-letter log line
    attempts: int = 0  # generation attempts this anchor took (kept if producing the triplet fails)


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


class AnchorProcessor:
    def __init__(self, settings: Settings, generator: Generator, produced: Container[str] | None = None):
        self.settings = settings
        self.generator = generator
        self.produced = produced  # ids already delivered as triplets (`streams.group.produced`)

    async def process(self, topic: str, partition: int, offset: int, raw: bytes | None) -> Outcome:
        started = time.perf_counter()
        source = Source(topic=topic, partition=partition, offset=offset)
        decoded = decode_anchor(raw, source, self.settings)
        if isinstance(decoded, DecodeFailure):
            return self.dead_letter(raw, source, decoded.id, decoded.stage, decoded.kind, decoded.message, 0)
        if self.produced is not None and decoded.id in self.produced:
            return Outcome("skipped", "", decoded.id.encode(), b"")  # a redelivery: its record is already out
        result = await self.generator.generate(decoded)
        if isinstance(result, GenerationFailure):
            return self.dead_letter(raw, source, decoded.id, result.stage, result.kind, result.message,
                                    result.attempts, result.last_output, result.quality, result.candidates)
        record = TripletRecord(
            id=decoded.id,
            anchor=decoded.anchor,
            positive=result.positive,
            negative=result.negative,
            model_name=result.model_name,
            action=decoded.spec.action,
            triplet=decoded.spec.triplet,
            hard_negative=decoded.spec.hard_negative,
            context=decoded.spec.context,
            metadata=decoded.metadata,
            usage=Usage(prompt_tokens=result.prompt_tokens, completion_tokens=result.completion_tokens),
            attempts=result.attempts,
            latency_ms=round((time.perf_counter() - started) * 1000, 3),
            generated_at=now_utc(),
            source=source,
            quality=Quality(**result.quality) if result.quality else None,
            mined_negatives=[MinedNegative(**m) for m in result.mined],
        )
        return Outcome("triplet", self.settings.triplets_topic, decoded.id.encode(), record.model_dump_json().encode(),
                       attempts=result.attempts)

    def dead_letter(self, raw: bytes | None, source: Source, record_id: str | None, stage: str, kind: str,
                    message: str, attempts: int, last_output: str | None = None, quality: dict | None = None,
                    candidates: list[dict] | None = None) -> Outcome:
        text, encoding, cut = raw_field(raw, self.settings.dlq_max_raw_bytes)
        letter = DeadLetter(
            id=record_id,
            error=ErrorInfo(type=kind, message=message),
            stage=stage,
            attempts=attempts,
            raw=text,
            raw_encoding=encoding,
            raw_bytes=len(raw or b""),
            raw_truncated=cut,
            last_output=last_output,
            quality=Quality(**quality) if quality else None,
            candidates=[Candidate(**c) for c in candidates] if candidates else None,
            source=source,
            failed_at=now_utc(),
        )
        key = record_id.encode() if record_id else None
        return Outcome("dead_letter", self.settings.dlq_topic, key, letter.model_dump_json().encode(), stage, kind,
                       message[:300], attempts)

    def produce_failure(self, outcome: Outcome, raw: bytes | None, source: Source, exc: BaseException) -> Outcome:
        """The dead letter for a triplet the broker refused (for example: too large)."""
        rid = outcome.key.decode() if outcome.key else None
        return self.dead_letter(raw, source, rid, "produce", type(exc).__name__, f"producing the triplet failed: {exc}",
                                outcome.attempts)
