"""TLS in front of the embedded broker: accept TLS on one port, pipe the plaintext to Tansu on another.

Tansu 0.6.0 has `--cert` and `--key` flags but puts them in one exclusive clap group,
so it refuses to start with both ("the argument '--cert' cannot be used with
'--key'") and serves plaintext with either alone. This terminator gives the
embedded broker a real TLS listener anyway: clients verify its certificate
against their CA file exactly as they would a Kafka broker's, and Tansu
advertises the TLS port in its metadata so every connection stays encrypted.
It runs its own event loop in a thread, so sync code (tests, the CLI) can use it.
"""

import asyncio
import ssl
import threading
from pathlib import Path


class TLSFront:
    def __init__(self, host: str, port: int, upstream_port: int, cert: Path, key: Path):
        self.host, self.port, self.upstream_port = host, port, upstream_port
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(str(cert), str(key))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    def start(self) -> "TLSFront":
        self._thread = threading.Thread(target=self._run, name="tls-front", daemon=True)
        self._thread.start()
        self._started.wait(10)
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        self._loop = loop = asyncio.new_event_loop()
        try:
            server = loop.run_until_complete(
                asyncio.start_server(self._serve, self.host, self.port, ssl=self.context))
        except BaseException as exc:  # port taken, bad certificate: reported by start()
            self._error = exc
            self._started.set()
            return
        self._started.set()
        loop.run_forever()
        server.close()
        for task in asyncio.all_tasks(loop):
            task.cancel()
        loop.run_until_complete(asyncio.sleep(0))
        loop.close()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            broker_r, broker_w = await asyncio.open_connection(self.host, self.upstream_port)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(_pipe(client_r, broker_w), _pipe(broker_r, client_w), return_exceptions=True)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()
