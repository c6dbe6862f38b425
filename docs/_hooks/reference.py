"""MkDocs hooks: the configuration reference is generated from the `Settings` model when the site is built, and
the wire contract's JSON Schema files (`schemas/json/`) are published with the site under `schemas/`.

Why a hook and not a page kept by hand: the page is the model (each field's name, type, default and
description), so a setting added to `streams/settings.py` is on the page at the next build, and a test builds
the site and checks every field is there (`tests/docs/test_site.py`).
"""

import typing
from enum import Enum
from pathlib import Path

from pydantic import BaseModel, SecretStr

MARKER = "<!-- settings-reference -->"


def type_name(annotation) -> str:
    """A reader's name for a field's type: `one of a, b`, `secret`, `int`, `float, optional`..."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return "one of " + ", ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return f"{' or '.join(type_name(a) for a in rest)}, optional"
    if annotation is SecretStr:
        return "secret"
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return "one of " + ", ".join(f"`{m.value}`" for m in annotation)
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def default_text(field) -> str:
    value = field.default
    if value is None or value == "":
        return "unset"
    if isinstance(value, SecretStr):
        return "(secret)"
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def settings_reference(model: type[BaseModel], prefix: str = "PAIRSTREAM_") -> str:
    """A Markdown table of every field of `model`: the variable with its flag, type and default, then what it does."""
    rows = ['| Setting | What it does |', "|---|---|"]
    for name, field in model.model_fields.items():
        description = (field.description or "").replace("|", "\\|").replace("\n", " ")
        setting = (f'<span class="ps-var">`{prefix}{name.upper()}`</span><br>`--{name.replace("_", "-")}` · '
                   f"{type_name(field.annotation)} · default {default_text(field)}")
        rows.append(f'| {setting} | {description} |')
    return "\n".join(rows) + "\n"


def on_page_markdown(markdown: str, page, config, files) -> str:
    if MARKER not in markdown:
        return markdown
    from streams.settings import Settings

    return markdown.replace(MARKER, settings_reference(Settings))


SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "json"


def on_files(files, config):
    """The JSON Schema files, served as they are in the repository (one source: `python -m schemas.export`)."""
    from mkdocs.structure.files import File

    for path in sorted(SCHEMAS.glob("*.json")):
        files.append(File.generated(config, f"schemas/{path.name}", abs_src_path=str(path)))
    return files
