"""The mining topic's records: a delivered record's anchor and positive with their vectors, compact.

Every worker mines hard negatives from the recent sentences of the whole consumer group, not only its own
(`streams.group.mining_feed`). To search another worker's sentences it needs their unit vectors: embedding them
again would cost each worker about 12 ms of CPU per record of the group (MiniLM on this CPU, two sentences),
about what judging its own record costs; carrying them costs bytes. So each worker publishes, per record,
its anchor and positive with their vectors quantized to int8 (one scale per vector): 384 bytes a vector for
MiniLM instead of 1,536 as float32, with cosines within about 0.002 of the float ones (mining rounds scores to
four decimals, and keeps a margin under the positive of 5 %).

Layout of a value (the key is the record id):
    4 bytes   big-endian length of the header
    header    JSON: {"v": 1, "id", "texts": [anchor, positive], "embedder", "dims", "scales": [...]}
    body      len(texts) x dims int8, row-major
`decode` refuses anything else with ValueError, so a foreign or corrupt record is skipped, never mined.
"""

import struct

import numpy as np
import orjson

FORMAT_VERSION = 1
_LENGTH = struct.Struct(">I")


def encode(record_id: str, texts: list[str], vectors: np.ndarray, embedder: str) -> bytes:
    """`vectors`: one unit vector per text (rows)."""
    vectors = np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)
    peaks = np.abs(vectors).max(axis=1)
    scales = np.where(peaks > 0, peaks / 127.0, 1.0).astype(np.float32)
    quantized = np.clip(np.rint(vectors / scales[:, None]), -127, 127).astype(np.int8)
    header = orjson.dumps({"v": FORMAT_VERSION, "id": record_id, "texts": texts, "embedder": embedder,
                           "dims": int(vectors.shape[1]), "scales": [float(s) for s in scales]})
    return _LENGTH.pack(len(header)) + header + quantized.tobytes()


def decode(value: bytes) -> tuple[str, list[str], np.ndarray, str]:
    """(record id, texts, unit vectors as float32 rows, embedder name) of a value `encode` made."""
    try:
        (length,) = _LENGTH.unpack_from(value)
        header = orjson.loads(value[_LENGTH.size:_LENGTH.size + length])
        if header.get("v") != FORMAT_VERSION:
            raise ValueError(f"mining record format {header.get('v')!r}, not {FORMAT_VERSION}")
        texts, dims, scales = header["texts"], int(header["dims"]), header["scales"]
        body = value[_LENGTH.size + length:]
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts) or len(scales) != len(texts) \
                or len(body) != len(texts) * dims:
            raise ValueError("mining record: texts, scales and vectors do not match")
        vectors = np.frombuffer(body, dtype=np.int8).reshape(len(texts), dims).astype(np.float32)
        vectors *= np.asarray(scales, dtype=np.float32)[:, None]
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return str(header["id"]), texts, vectors / np.where(norms > 0, norms, 1.0), str(header["embedder"])
    except (struct.error, orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"not a mining record: {exc}") from exc
