"""The dataset's disk fails under `pairstream consume`: a file-size limit is hit, the filesystem fills up, it
turns read-only. Each time the sink exits 1 with one clear line, leaves no torn shard and no shard outside the
index, has committed exactly the offsets of what is indexed, and the same command completes the dataset
exactly once writing works again."""

import resource
import subprocess

import orjson
import pytest

from dataset.test_sink import triplet
from support.kafka import committed, produce
from support.processes import spawn_cli, stsb_sentences

pytestmark = pytest.mark.integration


def records(start: int, n: int, long: bool = False) -> list[bytes]:
    texts = stsb_sentences(1000)
    return [triplet(i, (texts[i % len(texts)] + " ") * (40 if long else 1)) for i in range(start, start + n)]


def consume(out, env, *, preexec=None) -> subprocess.CompletedProcess:
    proc = spawn_cli("consume", "--out", str(out), "--quiet", "--shard-rows", "100", "--until-idle", "3",
                     env=env, preexec_fn=preexec)
    stdout, stderr = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout.decode(), stderr.decode())


def check_consistent(out, broker, names) -> set[str]:
    """No temp file, no shard file outside the index, no torn line; the sink's committed offsets cover exactly
    the records indexed. Returns the ids in the dataset."""
    assert not list((out / ".pairstream").glob("*.tmp"))
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    indexed = {s["path"] for s in manifest["shards"]}
    on_disk = {str(p.relative_to(out)) for p in out.rglob("*.jsonl") if ".pairstream" not in p.parts}
    assert on_disk == indexed, (on_disk - indexed, indexed - on_disk)
    ids = []
    for shard in manifest["shards"]:
        if shard["family"] == "triplets":
            lines = (out / shard["path"]).read_bytes().splitlines()
            assert len(lines) == shard["rows"]
            ids += [orjson.loads(line)["id"] for line in lines]  # every line parses: no torn write
    assert len(ids) == len(set(ids))
    done = committed(broker, f"{names['app_id']}-sink", names["triplets"])
    assert sum(done.values()) == len(ids), (done, len(ids))  # nothing committed that is not in the dataset
    return set(ids)


def test_a_file_size_limit_stops_the_sink_and_the_same_command_completes_it(broker, names, pairstream_env,
                                                                             tmp_path):
    produce(broker, names["triplets"], records(0, 300) + records(300, 300, long=True), partition=0)
    out = tmp_path / "ds"
    limit = 256 * 1024  # 100 short records fit in a shard; 100 long ones (2.5 MB) do not

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    failed = consume(out, pairstream_env, preexec=small_files)
    assert failed.returncode == 1, failed.stderr
    assert "cannot write the dataset" in failed.stderr and "File too large" in failed.stderr
    assert "run the same command again" in failed.stderr and "Traceback" not in failed.stderr
    kept = check_consistent(out, broker, names)
    assert 100 <= len(kept) <= 300  # the short records' shards were written; the first long shard was not

    done = consume(out, pairstream_env)
    assert done.returncode == 0, done.stderr
    assert check_consistent(out, broker, names) == {f"rec-{i}" for i in range(600)}


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs at tmp_path/disk, for a real full disk (ENOSPC) and a real read-only one (EROFS); `remount`
    changes its size or mode in place, keeping what is on it. Mounting needs CAP_SYS_ADMIN (the CI runs as root)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        pytest.fail(f"cannot mount a small filesystem here: {mounted.stderr.strip()}")

    def remount(options: str) -> None:
        subprocess.run(["mount", "-o", f"remount,{options}", str(disk)], check=True)

    yield disk, remount
    subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_full_disk_then_a_read_only_one(broker, names, pairstream_env, small_disk):
    disk, remount = small_disk
    out = disk / "ds"
    produce(broker, names["triplets"], records(0, 300) + records(300, 300, long=True), partition=0)

    full = consume(out, pairstream_env)
    assert full.returncode == 1, full.stderr
    assert "No space left on device" in full.stderr and "free some space" in full.stderr, full.stderr
    assert "Traceback" not in full.stderr
    kept = check_consistent(out, broker, names)
    assert 100 <= len(kept) < 600

    remount("size=64m")  # space is back
    done = consume(out, pairstream_env)
    assert done.returncode == 0, done.stderr
    assert check_consistent(out, broker, names) == {f"rec-{i}" for i in range(600)}

    produce(broker, names["triplets"], records(600, 200), partition=0)
    remount("ro")
    read_only = consume(out, pairstream_env)
    assert read_only.returncode == 1, read_only.stderr
    assert "cannot write the dataset" in read_only.stderr and "Traceback" not in read_only.stderr
    assert "read-only" in read_only.stderr.lower() or "readonly" in read_only.stderr.lower(), read_only.stderr
    remount("rw")
    assert check_consistent(out, broker, names) == {f"rec-{i}" for i in range(600)}  # untouched meanwhile
    again = consume(out, pairstream_env)
    assert again.returncode == 0, again.stderr
    assert check_consistent(out, broker, names) == {f"rec-{i}" for i in range(800)}
