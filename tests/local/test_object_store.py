"""A durable broker's directory is private: the S3 credentials are never readable by others, not even for a
moment, and SeaweedFS's data and the logs (they hold the topics' records) are the owner's only."""

import os
import stat
from pathlib import Path

import pytest

from streams.local.broker import EmbeddedBroker
from streams.local.object_store import ObjectStore

pytestmark = pytest.mark.integration


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask():
    def set_umask(value: int) -> None:
        os.umask(value)

    old = os.umask(0o022)
    yield set_umask
    os.umask(old)


def test_the_credentials_are_created_private(tmp_path, umask, monkeypatch):
    """Under umask 0 and with every chmod disabled, the files come out 0600: the mode is the creation's, not
    a chmod's after the secret was already on disk with the umask's mode."""
    umask(0)
    for target in (os, Path):
        monkeypatch.setattr(target, "chmod", lambda *a, **k: None)
    monkeypatch.setattr(os, "fchmod", lambda *a, **k: None)
    data = tmp_path / "data"
    data.mkdir()
    store = ObjectStore(data)
    store.config = store._load_config()
    assert {name: oct(mode(data / name)) for name in ("object-store.json", "s3-identities.json")} == \
           {"object-store.json": "0o600", "s3-identities.json": "0o600"}


def test_a_durable_brokers_files_are_private_new_or_not(tmp_path, umask):
    """Under umask 022: what the broker creates, and what an older version left with the umask's modes (the
    credentials, the broker's log), are the owner's only."""
    data = tmp_path / "data"
    data.mkdir()
    for name in ("object-store.json", "broker.log"):
        (data / name).write_bytes(b"{}" if name.endswith(".json") else b"")
        os.chmod(data / name, 0o644)
    with EmbeddedBroker(data_dir=data, log_file=data / "broker.log"):
        modes = {name: oct(mode(data / name)) for name in
                 ("weed", "object-store.json", "s3-identities.json", "broker.log", "broker-storage.log")}
    assert modes == {"weed": "0o700", "object-store.json": "0o600", "s3-identities.json": "0o600",
                     "broker.log": "0o600", "broker-storage.log": "0o600"}
