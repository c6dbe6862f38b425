"""A network cut between every client and the embedded broker, which a test switches on and off.

`NetworkCut` is a plaintext `BrokerFront`, so `CuttableBroker` puts it where Tansu's TLS/SASL front
would go: Tansu listens on a private port and advertises the relay's, so every connection,
including those made after a metadata answer, goes through it. While cut:

- `blackhole` (a partition, cables pulled): nothing is relayed either way and nothing is closed; a new
  connection is accepted (the kernel does that) and then hears nothing. Requests time out on the client's
  side. When the cut ends, what was held flows on, like TCP retransmitting after a partition heals.
- `reset` (the broker host refusing): every connection is reset and new ones are reset at once.

The broker process itself runs on throughout: its consumer groups, offsets and records are untouched.
"""

import asyncio
import socket
import struct
import threading
from pathlib import Path

from streams.local.broker_front import BrokerFront
from streams.local.broker import EmbeddedBroker
from streams.local.processes import free_port

MODES = ("blackhole", "reset")


class NetworkCut(BrokerFront):
    """A plaintext `BrokerFront` (its thread, loop and listener) whose relay a test can cut and restore."""

    def __init__(self, host: str, port: int, upstream_port: int, *, mode: str = "blackhole"):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        super().__init__(host, port, upstream_port)
        self.mode = mode
        self._open = asyncio.Event()
        self._open.set()
        self._writers: set[asyncio.StreamWriter] = set()

    # -- control, from the test's thread --

    def cut(self) -> None:
        self._call(self._cut)

    def restore(self) -> None:
        self._call(self._open.set)

    @property
    def is_cut(self) -> bool:
        return self._open is not None and not self._open.is_set()

    def _call(self, fn) -> None:
        done = threading.Event()

        def run() -> None:
            try:
                fn()
            finally:
                done.set()

        self._loop.call_soon_threadsafe(run)
        done.wait(10)

    # -- the relay, in its own loop --

    def _closing(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()

    def _cut(self) -> None:
        self._open.clear()
        if self.mode == "reset":
            for writer in list(self._writers):
                _reset(writer)

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if self.mode == "reset" and not self._open.is_set():
            _reset(client_w)
            return
        self._writers.add(client_w)
        try:
            await self._open.wait()  # blackhole: the connection is accepted, then silence
            try:
                broker_r, broker_w = await asyncio.open_connection(self.host, self.upstream_port)
            except OSError:
                client_w.close()
                return
            self._writers.add(broker_w)
            await asyncio.gather(self._pipe(client_r, broker_w), self._pipe(broker_r, client_w),
                                 return_exceptions=True)
        finally:
            self._writers.discard(client_w)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await self._open.wait()
                data = await reader.read(65536)
                if not data:
                    break
                await self._open.wait()  # a blackhole holds what it read until the cut ends
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (SO_LINGER 0), as a host refusing the connection would."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


class CuttableBroker(EmbeddedBroker):
    """An in-memory embedded broker whose every client connection goes through a `NetworkCut` (`broker.front`):
    Tansu listens on a private port and advertises the relay's."""

    def __init__(self, log_file: Path, mode: str = "blackhole"):
        super().__init__(log_file=log_file)
        self.mode = mode
        self.internal_port = free_port(self.host)

    def make_front(self) -> NetworkCut:
        return NetworkCut(self.host, self.port, self.internal_port, mode=self.mode)


def cuttable_broker(log_file: Path, mode: str = "blackhole") -> CuttableBroker:
    return CuttableBroker(log_file, mode).start()
