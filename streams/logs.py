"""Logging: readable text by default, one JSON object per line with `PAIRSTREAM_LOG_FORMAT=json`.

Secrets are redacted from the final formatted line, traceback included, in both
formats (and by a filter on the message, for handlers that format on their own) as
a second line of defence: pairstream never formats a secret into a message, but a
library or a server's error text might.
"""

import logging
import logging.config
import time
from typing import Any

import orjson

_SECRETS: set[str] = set()


def register_secret(value: str | None) -> None:
    """Make sure `value` never appears in a log line (it is replaced by ***)."""
    if value and len(value) >= 4:
        _SECRETS.add(value)


def redact(text: str) -> str:
    for secret in _SECRETS:
        if secret in text:
            text = text.replace(secret, "***")
    return text


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if _SECRETS:
            record.msg = redact(record.getMessage())
            record.args = None
        return True


class TextFormatter(logging.Formatter):
    """`asctime level logger: message`, then the traceback, all redacted."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "pairstream", None) or {})  # structured fields given as extra={"pairstream": ...}
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return redact(orjson.dumps(entry).decode())


def logging_config(level: str = "info", fmt: str = "text") -> dict[str, Any]:
    """A dictConfig for the whole process (Faust's worker takes it as `logging_config`)."""
    level = level.upper()
    formatter = {"()": JsonFormatter if fmt == "json" else TextFormatter}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": RedactSecrets}},
        "formatters": {"main": formatter},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "main", "filters": ["redact"],
                                "stream": "ext://sys.stderr"}},
        "root": {"level": level, "handlers": ["stderr"]},
        # Per-message chatter of the Kafka clients stays out of info level.
        "loggers": {"aiokafka": {"level": max(level, "WARNING", key=logging.getLevelName)},
                    "httpx": {"level": "WARNING"}},
    }


def configure_logging(level: str = "info", fmt: str = "text") -> None:
    logging.config.dictConfig(logging_config(level, fmt))
