"""Write the JSON Schema files in `schemas/json/` from the pydantic models.

Run `python -m schemas.export` after changing a model; `tests/schemas` fails
while the files and the models disagree.
"""

from pathlib import Path

import orjson

from schemas import AnchorIn, DeadLetter, TripletRecord

SCHEMA_DIR = Path(__file__).parent / "json"
MODELS = {"anchor": AnchorIn, "triplet": TripletRecord, "dead_letter": DeadLetter}


def render(model) -> bytes:
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **model.model_json_schema()}
    return orjson.dumps(schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def schema_path(name: str) -> Path:
    return SCHEMA_DIR / f"{name}.schema.json"


def main() -> None:
    SCHEMA_DIR.mkdir(exist_ok=True)
    for name, model in MODELS.items():
        schema_path(name).write_bytes(render(model))
        print(schema_path(name))


if __name__ == "__main__":
    main()
