"""TLS and SASL in front of the embedded broker, so Kafka security can be tested end to end.

Tansu 0.6.0, the embedded broker, cannot do either for us: it puts `--cert` and
`--key` in one exclusive clap group, so it refuses to start with both ("the
argument '--cert' cannot be used with '--key'") and serves plaintext with either
alone; and its `--authentication` wants SCRAM users that can only be created by an
already authenticated client. `BrokerFront` listens where clients connect and
pipes every connection to Tansu on a private port:

- with a certificate, the listener is TLS: clients verify it against their CA file
  exactly as they would a Kafka broker's (Tansu advertises the front's port, so
  every connection stays encrypted);
- with `users`, a connection must authenticate first, like a Kafka broker's SASL
  listener: ApiVersions is passed through, SaslHandshake and SaslAuthenticate
  (v0/v1) are answered here for PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 (the SCRAM
  server is `scramp`'s), any other request before that closes the connection.

It runs its own event loop in a thread, so sync code (tests, the CLI) can use it.
"""

import asyncio
import functools
import ssl
import struct
import threading
from pathlib import Path

API_VERSIONS, SASL_HANDSHAKE, SASL_AUTHENTICATE = 18, 17, 36
UNSUPPORTED_SASL_MECHANISM, ILLEGAL_SASL_STATE, SASL_AUTHENTICATION_FAILED = 33, 34, 58
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


class BrokerFront:
    def __init__(self, host: str, port: int, upstream_port: int, *, cert: Path | None = None,
                 key: Path | None = None, users: dict[str, str] | None = None):
        self.host, self.port, self.upstream_port = host, port, upstream_port
        self.context = None
        if cert and key:
            self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.context.load_cert_chain(str(cert), str(key))
        self.users = users
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    def start(self) -> "BrokerFront":
        self._thread = threading.Thread(target=self._run, name=type(self).__name__, daemon=True)
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
        self._closing()
        for task in asyncio.all_tasks(loop):
            task.cancel()
        loop.run_until_complete(asyncio.sleep(0))
        loop.close()

    def _closing(self) -> None:
        """On the loop, once the listener is closed and before its tasks are cancelled (a subclass's hook)."""

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            broker_r, broker_w = await asyncio.open_connection(self.host, self.upstream_port)
        except OSError:
            client_w.close()
            return
        try:
            if self.users is not None and not await self._authenticate(client_r, client_w, broker_r, broker_w):
                raise ConnectionAbortedError
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            client_w.close()
            broker_w.close()
            return
        await asyncio.gather(_pipe(client_r, broker_w), _pipe(broker_r, client_w), return_exceptions=True)

    async def _authenticate(self, client_r, client_w, broker_r, broker_w) -> bool:
        """Run the client's SASL exchange; True once it authenticated, False to drop the connection."""
        session: _Session | None = None
        while True:
            frame = await _read_frame(client_r)
            api_key, version, correlation_id = struct.unpack(">hhi", frame[:8])
            (client_id_len,) = struct.unpack(">h", frame[8:10])
            body = frame[10 + max(0, client_id_len):]
            if api_key == API_VERSIONS:  # the broker's own answer: the versions it really supports
                broker_w.write(struct.pack(">i", len(frame)) + frame)
                reply = await _read_frame(broker_r)
                client_w.write(struct.pack(">i", len(reply)) + reply)
                await client_w.drain()
            elif api_key == SASL_HANDSHAKE and version == 1:
                mechanism = _string(body, 0)[0]
                ok = mechanism in MECHANISMS
                session = _Session(mechanism, self.users) if ok else None
                payload = struct.pack(">h", 0 if ok else UNSUPPORTED_SASL_MECHANISM) + _array(MECHANISMS)
                await _respond(client_w, correlation_id, payload)
                if not ok:
                    return False
            elif api_key == SASL_AUTHENTICATE and version in (0, 1) and session is not None:
                (size,) = struct.unpack(">i", body[:4])
                try:
                    answer = session.step(body[4:4 + size])
                    error, message = 0, None
                except _Refused as exc:
                    answer, error, message = b"", SASL_AUTHENTICATION_FAILED, str(exc)
                payload = struct.pack(">h", error) + _nullable_string(message) + struct.pack(">i", len(answer)) + answer
                if version == 1:
                    payload += struct.pack(">q", 0)  # session_lifetime_ms: no re-authentication
                await _respond(client_w, correlation_id, payload)
                if error:
                    return False
                if session.done:
                    return True
            else:  # anything else before authenticating (or a SASL version we do not speak): refuse
                return False


class _Refused(Exception):
    pass


class _Session:
    """One client's SASL exchange for `mechanism` against `users` {name: password}."""

    def __init__(self, mechanism: str, users: dict[str, str]):
        self.mechanism, self.users, self.done = mechanism, users, False
        self._scram = None

    def step(self, token: bytes) -> bytes:
        if self.mechanism == "PLAIN":
            try:
                _, user, password = token.decode().split("\0")
            except ValueError:
                raise _Refused("malformed PLAIN token") from None
            if self.users.get(user) != password:
                raise _Refused("Authentication failed: invalid credentials")
            self.done = True
            return b""
        return self._scram_step(token.decode())

    def _scram_step(self, message: str) -> bytes:
        from scramp import ScramException, ScramMechanism

        try:
            if self._scram is None:  # client-first
                infos = _scram_infos(self.mechanism, tuple(sorted(self.users.items())))
                self._scram = ScramMechanism(self.mechanism).make_server(
                    lambda user: infos[user] if user in infos else _unknown(user))
                self._scram.set_client_first(message)
                return self._scram.get_server_first().encode()
            self._scram.set_client_final(message)  # client-final: raises on a wrong password
            self.done = True
            return self._scram.get_server_final().encode()
        except (ScramException, KeyError) as exc:
            raise _Refused(f"Authentication failed: {exc}") from None


@functools.lru_cache(maxsize=8)
def _scram_infos(mechanism: str, users: tuple[tuple[str, str], ...]) -> dict[str, tuple]:
    """Salted credentials per user, computed once (4096 PBKDF2 rounds each), not per connection."""
    from scramp import ScramMechanism

    mech = ScramMechanism(mechanism)
    return {user: mech.make_auth_info(password) for user, password in users}


def _unknown(user: str):
    raise KeyError(f"unknown user {user!r}")


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    (size,) = struct.unpack(">i", await reader.readexactly(4))
    return await reader.readexactly(size)


async def _respond(writer: asyncio.StreamWriter, correlation_id: int, payload: bytes) -> None:
    writer.write(struct.pack(">ii", 4 + len(payload), correlation_id) + payload)
    await writer.drain()


def _string(data: bytes, at: int) -> tuple[str, int]:
    (size,) = struct.unpack(">h", data[at:at + 2])
    return data[at + 2:at + 2 + size].decode(), at + 2 + size


def _nullable_string(value: str | None) -> bytes:
    if value is None:
        return struct.pack(">h", -1)
    raw = value.encode()
    return struct.pack(">h", len(raw)) + raw


def _array(values: tuple[str, ...]) -> bytes:
    return struct.pack(">i", len(values)) + b"".join(_nullable_string(v) for v in values)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()
