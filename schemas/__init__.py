"""Wire contracts of pairstream: what goes on the `anchors`, `triplets` and dead-letter topics.

These pydantic models are the single source of truth; the JSON Schema files in
`schemas/json/` are generated from them (`python -m schemas.export`) and a test
keeps the two in sync, so non-Python consumers can validate the same records.
The mining topic's binary records, for the workers only, are `schemas.mining`.
"""

from schemas.anchor import ACTIONS, Action, AnchorIn
from schemas.dead_letter import Candidate, DeadLetter, ErrorInfo, Stage
from schemas.triplet import SCHEMA_VERSION, MinedNegative, Quality, Source, TripletRecord, Usage

__all__ = [
    "ACTIONS",
    "Action",
    "AnchorIn",
    "Candidate",
    "DeadLetter",
    "ErrorInfo",
    "MinedNegative",
    "Quality",
    "SCHEMA_VERSION",
    "Source",
    "Stage",
    "TripletRecord",
    "Usage",
]
