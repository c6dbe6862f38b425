"""Read anchors from .txt / .jsonl / .csv / .tsv / stdin and publish them to the anchors topic.

Every line is checked against the anchor contract before anything is sent, so
a typo in a file is reported with its line number instead of becoming a dead
letter later. Text lines are sent as `{"anchor": line}` (unambiguous even when a
sentence starts with `{`).
"""

import csv
import io
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, TextIO

import orjson
from aiokafka import AIOKafkaProducer
from pydantic import ValidationError

from schemas import AnchorIn
from streams.kafka import aiokafka_kwargs, ensure_topics
from streams.settings import Settings

FORMATS = ("txt", "jsonl", "csv", "tsv")
DELIMITERS = {"csv": ",", "tsv": "\t"}
_BOOL_WORDS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


@dataclass
class BadLine:
    line: int
    message: str


def detect_format(path: str, explicit: str | None) -> str:
    if explicit:
        return explicit
    suffix = Path(path).suffix.lower().lstrip(".")
    return {"json": "jsonl", "ndjson": "jsonl"}.get(suffix, suffix if suffix in FORMATS else "txt")


def _csv_fields(row: dict[str, str]) -> dict:
    fields: dict = {}
    extra: dict = {}
    for name, value in row.items():
        if name is None or value is None:
            continue
        if name in ("triplet", "hard_negative"):
            if value.strip() == "":
                continue
            fields[name] = _BOOL_WORDS.get(value.strip().lower(), value)
        elif name == "metadata":
            fields[name] = orjson.loads(value) if value.strip() else None  # AnchorIn checks it is an object
        elif name in AnchorIn.model_fields:
            if value != "" or name == "anchor":
                fields[name] = value
        else:
            extra[name] = value
    if extra:
        metadata = fields.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise ValueError(f"metadata must be a JSON object to take the extra columns {', '.join(extra)}, "
                             f"got {type(metadata).__name__}")
        fields["metadata"] = {**metadata, **extra}
    return fields


def read_anchors(stream: TextIO, fmt: str) -> Iterator[tuple[int, dict | BadLine]]:
    """(line number, anchor fields) for every record, or a BadLine saying what is wrong."""
    if fmt in DELIMITERS:
        for n, row in enumerate(csv.DictReader(stream, delimiter=DELIMITERS[fmt]), start=2):
            try:
                yield n, _csv_fields(row)
            except orjson.JSONDecodeError as exc:
                yield n, BadLine(n, f"metadata is not JSON: {exc}")
            except ValueError as exc:
                yield n, BadLine(n, str(exc))
        return
    for n, line in enumerate(stream, start=1):
        text = line.rstrip("\r\n")
        if not text.strip():
            continue
        if fmt == "txt":
            yield n, {"anchor": text}
            continue
        try:
            obj = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            yield n, BadLine(n, f"not JSON: {exc}")
            continue
        yield n, obj if isinstance(obj, dict) else BadLine(n, f"expected a JSON object, got {type(obj).__name__}")


def encode_anchor(fields: dict | BadLine, line: int) -> tuple[bytes | None, bytes] | BadLine:
    """(key, value) ready to send, or why the line is not a valid anchor."""
    if isinstance(fields, BadLine):
        return fields
    try:
        anchor = AnchorIn.model_validate(fields)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "value"
        return BadLine(line, f"{where}: {err['msg']}")
    value = orjson.dumps(anchor.model_dump(exclude_none=True))
    return (anchor.id.encode() if anchor.id else None), value


def load_anchor_file(source: str, fmt: str | None = None) -> tuple[list[tuple[bytes | None, bytes]], list[BadLine]]:
    """Every record of a file (or `-`) ready to send, and every line that is not a valid anchor."""
    records: list[tuple[bytes | None, bytes]] = []
    bad: list[BadLine] = []
    with open_input(source) as stream:
        for line, fields in read_anchors(stream, detect_format(source, fmt)):
            encoded = encode_anchor(fields, line)
            (bad if isinstance(encoded, BadLine) else records).append(encoded)
    return records, bad


def open_input(path: str) -> TextIO:
    if path == "-":
        return io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8")
    return open(path, encoding="utf-8", newline="")


async def publish(settings: Settings, records: Iterable[tuple[bytes | None, bytes]], on_sent=None) -> int:
    """Send (key, value) pairs to the anchors topic; returns how many the broker confirmed."""
    producer = AIOKafkaProducer(**aiokafka_kwargs(settings), acks="all", linger_ms=5)
    await producer.start()
    sent = 0
    try:
        pending = []
        for key, value in records:
            pending.append(await producer.send(settings.anchors_topic, value=value, key=key))
            if len(pending) >= 1000:
                for fut in pending:
                    await fut
                sent += len(pending)
                if on_sent:
                    on_sent(len(pending))
                pending = []
        for fut in pending:
            await fut
        sent += len(pending)
        if on_sent and pending:
            on_sent(len(pending))
    finally:
        await producer.stop()
    return sent


class PublishError(Exception):
    """The file could not be read or has invalid lines (nothing was sent), or the broker failed; exit code 1.

    `details` are the first invalid lines, each `(line number, message)`.
    """

    def __init__(self, message: str, details: list[BadLine] | None = None):
        super().__init__(message)
        self.details = details or []


def read_anchor_file(source: str, fmt: str | None = None) -> list[tuple[bytes | None, bytes]]:
    """Every record of `source`, validated; raises PublishError naming the file and its bad lines."""
    try:
        records, bad = load_anchor_file(source, fmt)
    except OSError as exc:
        raise PublishError(f"cannot read {source}: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise PublishError(f"{source} is not UTF-8: {exc}") from exc
    if bad:
        raise PublishError(f"{len(bad)} invalid record(s) in {source}; nothing was published", bad[:10])
    return records


async def publish_records(settings: Settings, records: list[tuple[bytes | None, bytes]], on_sent=None) -> int:
    """Create the anchors topic if missing, then `publish`; raises PublishError on a broker failure."""
    try:
        await ensure_topics(settings, [settings.anchors_topic])
        return await publish(settings, records, on_sent=on_sent)
    except Exception as exc:
        raise PublishError(f"publishing to {settings.broker} failed: {exc}") from exc
