"""`pairstream worker`: create the topics, then run the Faust worker in the foreground until SIGTERM or Ctrl-C."""

import asyncio

from streams.kafka import TopicCreationError, ensure_topics, worker_topics
from streams.logs import configure_logging, logging_config
from streams.quality.embedder import EmbeddingError
from streams.settings import Settings


class WorkerStartError(RuntimeError):
    """The topics could not be checked or created: the broker is down or refused them (exit code 1)."""


def run_worker(settings: Settings) -> None:
    import faust
    import uvloop  # about a third less event-loop overhead per record than asyncio's default loop

    from streams.worker.app import create_app
    from streams.worker.faust_internals import without_spinner

    configure_logging(settings.log_level, settings.log_format)
    try:
        asyncio.run(ensure_topics(settings, worker_topics(settings)))
    except TopicCreationError as exc:
        raise WorkerStartError(str(exc)) from exc
    except Exception as exc:
        raise WorkerStartError(f"cannot reach the broker at {settings.broker}: {exc}") from exc
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.set_event_loop(asyncio.new_event_loop())
    try:
        app = create_app(settings)
    except EmbeddingError as exc:  # the quality gate's model is missing or its file does not match its hash
        raise WorkerStartError(f"the quality gate cannot start: {exc}") from exc
    loglevel = {"warning": "warn"}.get(settings.log_level, settings.log_level)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False,
                          logging_config=logging_config(settings.log_level, settings.log_format))
    without_spinner(worker).execute_from_commandline()
