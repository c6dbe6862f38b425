"""Logging: readable text by default, one JSON object per line with `PAIRSTREAM_LOG_FORMAT=json`.

Secrets are redacted from the final formatted line, traceback included, in both
formats (and by a filter on the message, for handlers that format on their own) as
a second line of defence: pairstream never formats a secret into a message, but a
library or a server's error text might.

Repeats of the Kafka clients' and Faust's lines are collapsed (`CollapseRepeats`):
while the broker is away aiokafka logs every reconnect attempt of every connection,
about 100 lines a second. Each cause (logger and message template) is printed when
it starts, then at most once per interval with the count of lines left out (the
interval doubles from 1 s to 30 s while it goes on), and one line says when the
repeating stopped, which is when the connection is back.
"""

import logging
import logging.config
import threading
import time
from dataclasses import dataclass
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


@dataclass
class _Episode:
    started: float
    last: float  # last seen
    printed: float  # last let through
    next_print: float
    interval: float
    left_out: int = 0  # since the last line printed
    total_left_out: int = 0
    record: logging.LogRecord | None = None  # the last one left out, for the closing line


class CollapseRepeats(logging.Filter):
    """Let the first line of a repeating cause through, then one per interval with a count; close each episode
    with one line once the cause has been quiet for `quiet_s` (checked by a daemon thread, and on every record)."""

    def __init__(self, prefixes: tuple[str, ...] = ("aiokafka", "faust", "mode", "kafka"), *, first_interval_s=1.0,
                 max_interval_s: float = 30.0, quiet_s: float = 3.0, clock=time.monotonic):
        super().__init__()
        self.prefixes = prefixes
        self.first_interval_s, self.max_interval_s, self.quiet_s = first_interval_s, max_interval_s, quiet_s
        self.clock = clock
        self.episodes: dict[tuple, _Episode] = {}
        self._lock = threading.Lock()
        self._ticker: threading.Thread | None = None

    def _collapsible(self, record: logging.LogRecord) -> bool:
        return not getattr(record, "collapse_summary", False) and record.name.startswith(self.prefixes)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._collapsible(record):
            return True
        now = self.clock()
        key = (record.name, record.levelno, str(record.msg))
        with self._lock:
            ended = self._end_quiet(now)
            episode = self.episodes.get(key)
            if episode is None:
                self.episodes[key] = _Episode(now, now, now, now + self.first_interval_s, self.first_interval_s)
                keep = True
            elif now >= episode.next_print:
                if episode.left_out:
                    since = now - episode.printed
                    record.msg = f"{record.msg} [{episode.left_out} more like this in the last {since:.0f}s]"
                    record.pairstream = {**(getattr(record, "pairstream", None) or {}), "repeats": episode.left_out}
                episode.interval = min(self.max_interval_s, episode.interval * 2)
                episode.next_print = now + episode.interval
                episode.last = episode.printed = now
                episode.left_out = 0
                keep = True
            else:
                episode.left_out += 1
                episode.total_left_out += 1
                episode.last, episode.record = now, record
                keep = False
            if not keep and self._ticker is None:
                self._ticker = threading.Thread(target=self._tick, name="log-collapse", daemon=True)
                self._ticker.start()
        self._announce(ended)
        return keep

    def _end_quiet(self, now: float) -> list[tuple[logging.LogRecord, _Episode]]:
        ended = []
        for key, episode in list(self.episodes.items()):
            if now - episode.last >= self.quiet_s:
                del self.episodes[key]
                if episode.total_left_out and episode.record is not None:
                    ended.append((episode.record, episode))
        return ended

    def _announce(self, ended: list[tuple[logging.LogRecord, _Episode]]) -> None:
        """One line for every cause that went quiet together (the connection is back), naming the longest."""
        if not ended:
            return
        record, longest = max(ended, key=lambda e: e[1].last - e[1].started)
        line = logging.LogRecord("pairstream.logs", logging.INFO, record.pathname, record.lineno,
                                 "stopped repeating: %d cause(s) over %.0fs, %d lines left out (longest: %s: %s)",
                                 (len(ended), longest.last - longest.started, sum(e.total_left_out for _, e in ended),
                                  record.name, record.getMessage()), None)
        line.collapse_summary = True
        logging.getLogger("pairstream.logs").handle(line)

    def _tick(self) -> None:
        while True:
            time.sleep(min(1.0, self.quiet_s))
            with self._lock:
                ended = self._end_quiet(self.clock())
            self._announce(ended)


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
        "filters": {"redact": {"()": RedactSecrets}, "collapse": {"()": CollapseRepeats}},
        "formatters": {"main": formatter},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "main",
                                "filters": ["collapse", "redact"], "stream": "ext://sys.stderr"}},
        "root": {"level": level, "handlers": ["stderr"]},
        # Per-message chatter of the Kafka clients stays out of info level.
        "loggers": {"aiokafka": {"level": max(level, "WARNING", key=logging.getLevelName)},
                    "httpx": {"level": "WARNING"}},
    }


def configure_logging(level: str = "info", fmt: str = "text") -> None:
    logging.config.dictConfig(logging_config(level, fmt))
