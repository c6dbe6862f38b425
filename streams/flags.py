"""What every `pairstream` command shares: flags derived from pydantic models, so a default, bound or
description is written once, and the way a command reports progress, fails and exits.

`model_options(Model, names)` adds a `--flag` per field (bools get `--flag/--no-flag`;
choices, numbers and paths a metavar); `build(Model, kwargs)` makes the model
from the flags given, and its error names the flag. Flags default to None: a flag not
given leaves the field to the model (its default, or for `Settings` the environment).

The commands live next to the code they drive (`streams.cli` wires them into one group) and exit the same
way: 0 success, 2 usage or configuration error (`usage_error`: one line naming the setting), 1 runtime
failure (`fail`), 130 interrupted (`interrupted`); their progress and log lines go to stderr.
"""

import sys
import typing
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable

import click
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from streams.settings import Settings, SettingsError, env_name, is_secret, load_settings

err_console = Console(stderr=True)

KAFKA_SETTINGS = ("broker", "broker_security_protocol", "broker_sasl_mechanism", "broker_sasl_username",
                  "broker_sasl_password", "broker_ca_file", "broker_session_timeout_s", "topic_partitions",
                  "topic_replicas")
ALL_SETTINGS = tuple(Settings.model_fields)
EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130
DATASET_DIR = click.argument("out_dir", metavar="DIR", type=click.Path(file_okay=False, exists=True, path_type=Path))


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


# -- a command's settings, errors and progress ---------------------------------------------------------

def model_from(model: type[BaseModel], kwargs: dict[str, Any]) -> Any:
    """`build`, exiting 2 with the flag's name on a bad value."""
    try:
        return build(model, kwargs)
    except FlagError as exc:
        usage_error(str(exc))


def settings_from(kwargs: dict[str, Any], names: tuple[str, ...] = ALL_SETTINGS) -> Settings:
    """Pop the setting flags out of `kwargs` and load Settings; exit 2 on a bad value."""
    flags = {name: kwargs.pop(name) for name in names if name in kwargs}
    try:
        settings = load_settings(**flags)
    except SettingsError as exc:
        usage_error(str(exc))
    from streams.logs import register_secret

    for name in Settings.model_fields:
        secret = getattr(settings, name) if is_secret(name) else None
        register_secret(secret.get_secret_value() if secret else None)
    return settings


def fail(message: str, code: int = EXIT_FAILURE) -> typing.NoReturn:
    err_console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    sys.exit(code)


def usage_error(message: str) -> typing.NoReturn:
    fail(message, EXIT_USAGE)


@contextmanager
def usage_errors(*errors: type[Exception]):
    """These exceptions mean the command was asked something it cannot do: exit 2 with their message."""
    try:
        yield
    except errors as exc:
        usage_error(str(exc))


def interrupted() -> typing.NoReturn:
    err_console.print("interrupted; every child process was stopped")
    sys.exit(EXIT_INTERRUPTED)


def log_line(line: str) -> None:
    err_console.print(line, highlight=False)


def progress_bar(quiet: bool = False) -> Progress:
    """A rich progress display on stderr (none with --quiet)."""
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=err_console, disable=quiet)
