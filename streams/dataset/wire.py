"""What `pairstream consume` reads off the triplets and dead-letter topics: a record of the wire contract
(`schemas`), or the reason it cannot use the message (which then becomes a reject).

A record is validated against the contract's own models (the ones the JSON Schemas are generated from), so a
well-formed but wrong value (`quality: "bad"`, a mined negative without a score) is a reject here rather than an
error inside the dataset that would stop the sink on every restart.

The models forbid fields they do not have: what a worker produces must be exactly the contract. A sink may
be older than its workers, though, so it reads leniently: fields it does not know, on the record or in a
nested object, are left out of what it writes (every shard of a dataset keeps the same columns), and only a
triplet whose `schema_version` is newer than the sink's is refused, whatever its fields, with both versions
named: a new version is a change an older reader cannot read (a field removed, renamed or retyped), while a
new field alone does not make one.
"""

import copy

import orjson
from pydantic import ValidationError

from schemas import SCHEMA_VERSION, DeadLetter, TripletRecord

NEWER = "schema_version "  # how the reason for a record of a newer version starts


def read_record(value: bytes | None, is_dlq: bool, ignored: set[str] | None = None) -> dict | str:
    """The record in a message, without the fields the contract's models do not know (their names are added
    to `ignored`, dotted: `quality.calibrated`), or why the sink cannot use it."""
    if value is None:
        return "tombstone (null value)"
    try:
        record = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        return f"not JSON: {exc}"
    if not isinstance(record, dict):
        return f"not a JSON object: {type(record).__name__}"
    model, kind = (DeadLetter, "dead-letter") if is_dlq else (TripletRecord, "triplet")
    version = None if is_dlq else version_of(record)
    if version is not None and version > SCHEMA_VERSION:
        return f"{NEWER}{version} is newer than this sink reads ({SCHEMA_VERSION}): upgrade pairstream consume " \
               f"to keep such records"
    try:
        model.model_validate(record)
    except ValidationError as exc:
        unknown = [e["loc"] for e in exc.errors() if e["type"] == "extra_forbidden"]
        if len(unknown) < exc.error_count():  # something else is wrong: that is the reason
            return invalid(kind, [e for e in exc.errors() if e["type"] != "extra_forbidden"])
        record = without(record, unknown)
        try:
            model.model_validate(record)
        except ValidationError as again:  # a field it could not leave out
            return invalid(kind, again.errors())
        if ignored is not None:
            ignored.update(".".join(str(p) for p in loc if not isinstance(p, int)) for loc in unknown)
    return record


def invalid(kind: str, errors: list) -> str:
    problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in errors[:3])
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return f"not a {kind} record: {problems}{more}"


def version_of(record: dict) -> int | None:
    """Its `schema_version` as the model reads it (3, "3", 3.0), or None (absent, or not a number)."""
    try:
        return int(record.get("schema_version"))
    except (TypeError, ValueError, OverflowError):
        return None


def without(record: dict, paths: list[tuple]) -> dict:
    """A copy of `record` without the fields at these paths (keys, and indices into lists); a path it cannot
    follow is left as it is (validating the copy then says so)."""
    record = copy.deepcopy(record)
    for path in paths:
        node = record
        try:
            for step in path[:-1]:
                node = node[step]
            node.pop(path[-1], None)
        except (KeyError, IndexError, TypeError, AttributeError):
            continue
    return record
