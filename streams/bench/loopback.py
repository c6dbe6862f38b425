"""An aiohttp app on loopback in a thread of its own: the fake backends' server (`FakeLLM`, the tests' fake TEI).

Tests and the bench are synchronous code that must talk to a live HTTP server in the same process; the
server's event loop runs in a daemon thread, and `stop()` then `start()` again on the same port looks, to a
client, like a backend going away and coming back.
"""

import asyncio
import threading

from aiohttp import web

from streams.local.processes import free_port


class LoopbackServer:
    """An aiohttp app on 127.0.0.1:`port`, served by an event loop of its own in a thread, so sync code (tests,
    the bench) can use it. `start()` again after `stop()` serves on the same port: a backend coming back.
    Subclasses build the app (`make_app`); requests still in flight at a stop (a "hung" reply) are cancelled."""

    thread_name = "loopback-server"

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    def make_app(self) -> web.Application:
        """The app, built on the server's own loop (so whatever it creates, a semaphore say, belongs there)."""
        raise NotImplementedError

    def _serve(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        runner = web.AppRunner(self.make_app(), access_log=None)
        self._loop.run_until_complete(runner.setup())
        self._loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())
        pending = asyncio.all_tasks(self._loop)
        for task in pending:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.close()

    def start(self):
        self._ready.clear()
        self._thread = threading.Thread(target=self._serve, name=self.thread_name, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError(f"{self.thread_name} did not start")
        return self

    def stop(self) -> None:
        if self._loop and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread:
            self._thread.join(10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
