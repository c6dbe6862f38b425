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
README_MARKER = "<!-- readme -->"
ROOT = Path(__file__).resolve().parents[2]


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


def home_page(readme: str) -> str:
    """The README as the site's home page: its links into `docs/` made relative to the site, and the sentence
    on how to build the site (the reader is on it) left out."""
    built_by = " The site is built from `docs/` (`make docs`, or `make docs-serve` to read it at http://127.0.0.1:8000)."
    return readme.replace("](docs/", "](").replace(built_by, "")


def on_page_markdown(markdown: str, page, config, files) -> str:
    if README_MARKER in markdown:  # one source for the front page: the README
        markdown = markdown.replace(README_MARKER, home_page((ROOT / "README.md").read_text()))
    if MARKER in markdown:
        from streams.settings import Settings

        markdown = markdown.replace(MARKER, settings_reference(Settings))
    return markdown


SCHEMAS = ROOT / "schemas" / "json"


def on_files(files, config):
    """The JSON Schema files, served as they are in the repository (one source: `python -m schemas.export`)."""
    from mkdocs.structure.files import File

    for path in sorted(SCHEMAS.glob("*.json")):
        files.append(File.generated(config, f"schemas/{path.name}", abs_src_path=str(path)))
    return files
