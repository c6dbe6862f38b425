"""One shard file: written under a temporary name, fsynced, then renamed into place, so a glob for
`*.jsonl` or `*.parquet` never sees a half-written shard. Parquet shards share one fixed Arrow schema."""

import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

import orjson


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file in `path` durable (the directory entry itself is fsynced)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def parquet_schema(columns: tuple[str, ...] | None):
    """A fixed Arrow schema, so every shard has the same types.

    `metadata` (a free-form object) is stored as a JSON string, `generated_at` as a UTC timestamp; the
    `negative_N` columns of the training layouts are strings.
    """
    import pyarrow as pa

    full = {
        "id": pa.string(), "anchor": pa.string(), "positive": pa.string(), "negative": pa.string(),
        "model_name": pa.string(), "action": pa.string(), "triplet": pa.bool_(), "hard_negative": pa.bool_(),
        "context": pa.string(), "metadata": pa.string(),
        "usage": pa.struct([("prompt_tokens", pa.int64()), ("completion_tokens", pa.int64())]),
        "attempts": pa.int64(), "latency_ms": pa.float64(), "generated_at": pa.timestamp("us", tz="UTC"),
        "source": pa.struct([("topic", pa.string()), ("partition", pa.int64()), ("offset", pa.int64())]),
        "quality": pa.struct([("anchor_positive", pa.float64()), ("anchor_negative", pa.float64()),
                              ("margin", pa.float64()), ("model", pa.string()), ("verdict", pa.string()),
                              ("problems", pa.list_(pa.string()))]),
        "mined_negatives": pa.list_(pa.struct([("text", pa.string()), ("score", pa.float64()),
                                               ("source_id", pa.string())])),
        "schema_version": pa.int64(),
    }
    names = columns or tuple(full)
    return pa.schema([(n, full.get(n, pa.string())) for n in names])  # negative_N: a mined negative's text


class Shard:
    """One shard being written to a temp file; `finish()` makes it complete and visible."""

    def __init__(self, seq: int, tmp_dir: Path, final: Path, fmt: str, columns: tuple[str, ...] | None):
        self.seq = seq
        self.final = final
        self.tmp = tmp_dir / f"{final.name}.tmp"
        self.columns = columns
        self.ids: list[str] = []
        self.opened = time.monotonic()
        self._rows: list[dict[str, Any]] = []  # parquet: written at finish (bounded by --shard-rows)
        self._file = open(self.tmp, "wb") if fmt == "jsonl" else None

    def add(self, record_id: str, row: dict[str, Any]) -> None:
        self.ids.append(record_id)
        if self._file is not None:
            self._file.write(orjson.dumps(row) + b"\n")
        else:
            row = dict(row)
            if row.get("metadata") is not None:
                row["metadata"] = orjson.dumps(row["metadata"]).decode()
            if isinstance(row.get("generated_at"), str):
                row["generated_at"] = datetime.fromisoformat(row["generated_at"].replace("Z", "+00:00"))
            self._rows.append(row)

    @property
    def rows(self) -> int:
        return len(self.ids)

    def finish(self) -> None:
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pylist(self._rows, schema=parquet_schema(self.columns))
            pq.write_table(table, self.tmp)
            with open(self.tmp, "rb") as f:
                os.fsync(f.fileno())
        self.final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.tmp, self.final)
        fsync_dir(self.final.parent)

    def discard(self) -> None:
        """Drop the temp file; never raises (it runs after a failed write: disk full, read-only)."""
        try:
            if self._file is not None and not self._file.closed:
                self._file.close()  # flushing the buffer may fail again
        except OSError:
            pass
        try:
            self.tmp.unlink(missing_ok=True)
        except OSError:  # read-only: the next start deletes it
            pass


def read_rows(path: Path) -> Iterator[dict[str, Any]]:
    """The rows of a complete shard, JSONL or Parquet."""
    if path.suffix == ".jsonl":
        with open(path, "rb") as f:
            for line in f:
                if line.strip():
                    yield orjson.loads(line)
    else:
        import pyarrow.parquet as pq

        yield from pq.read_table(path).to_pylist()
