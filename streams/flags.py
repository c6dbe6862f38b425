"""Command-line flags derived from pydantic models, so a default, bound or description is written once.

`model_options(Model, names)` adds a `--flag` per field (bools get `--flag/--no-flag`;
choices, numbers and paths a metavar); `build(Model, kwargs)` makes the model
from the flags given, and its error names the flag. Flags default to None: a flag not
given leaves the field to the model (its default, or for `Settings` the environment).
"""

import typing
from pathlib import Path
from typing import Any, Callable, Iterable

import click
from pydantic import BaseModel, ValidationError

from streams.settings import Settings, env_name


class FlagError(ValueError):
    """A flag's value does not validate; `str()` is one line naming the flag."""


def model_options(model: type[BaseModel], names: Iterable[str]) -> Callable:
    """A `--flag` for each named field of `model`."""
    is_settings = issubclass(model, Settings)

    def decorate(func: Callable) -> Callable:
        for name in reversed(tuple(names)):
            field = model.model_fields[name]
            flag = "--" + name.replace("_", "-")
            help_text = field.description or ""
            if is_settings:
                help_text += f" [env {env_name(name)}]"
            elif field.default is not None:
                help_text += f" [default: {field.default}]"
            decls = [f"{flag}/--no-{flag[2:]}" if field.annotation is bool else flag, name]
            func = click.option(*decls, default=None, help=help_text, metavar=_metavar(field.annotation))(func)
        return func

    return decorate


def build(model: type[BaseModel], kwargs: dict[str, Any]) -> Any:
    """Pop `model`'s flags out of `kwargs` and make the model; raises FlagError naming the flag."""
    given = {name: kwargs.pop(name) for name in list(kwargs) if name in model.model_fields}
    try:
        return model(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        err = exc.errors()[0]
        where = f"--{str(err['loc'][0]).replace('_', '-')}: " if err["loc"] else ""
        raise FlagError(f"{where}{err['msg'].removeprefix('Value error, ')}") from None


def _metavar(annotation: Any) -> str | None:
    """[a|b] for choices, INTEGER, FLOAT or PATH for (optional) numbers and paths; click's default otherwise.

    Values are validated by the model, not by click, so a bad one is a single line naming the flag (exit 2).
    """
    if typing.get_origin(annotation) is typing.Literal:
        return "[" + "|".join(str(a) for a in typing.get_args(annotation)) + "]"
    kinds = {a for a in typing.get_args(annotation) or (annotation,) if a is not type(None)}
    names = {int: "INTEGER", float: "FLOAT", Path: "PATH"}
    return names.get(kinds.pop()) if len(kinds) == 1 else None
