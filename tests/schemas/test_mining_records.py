"""The mining topic's records (`schemas.mining`): int8 vectors keep cosines within 0.002 of float32, a record is
under 1,000 bytes for two short MiniLM sentences, and anything else is refused with ValueError."""

import numpy as np
import pytest

from schemas import mining


def unit_rows(n: int, dims: int = 384, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, dims)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_a_record_round_trips_with_cosines_within_two_thousandths():
    vectors = unit_rows(2)
    value = mining.encode("rid-1", ["an anchor", "its positive"], vectors, "all-MiniLM-L6-v2")
    record_id, texts, decoded, embedder = mining.decode(value)
    assert (record_id, texts, embedder) == ("rid-1", ["an anchor", "its positive"], "all-MiniLM-L6-v2")
    assert np.allclose(np.linalg.norm(decoded, axis=1), 1, atol=1e-5)
    others = unit_rows(200, seed=1)
    errors = np.abs(others @ decoded.T - others @ vectors.T)
    assert errors.max() < 0.002
    assert len(value) < 1000  # int8 vectors (768 bytes) and a short header, against 3,072 bytes of float32


@pytest.mark.parametrize("value", [b"", b"\x00\x00\x00\x05{\"v\":", b"\x00\x00\x00\x02{}",
                                   mining.encode("r", ["a", "b"], unit_rows(2), "m")[:-1],
                                   mining.encode("r", ["a"], unit_rows(1), "m").replace(b'"v":1', b'"v":9')])
def test_anything_else_is_refused(value):
    with pytest.raises(ValueError):
        mining.decode(value)
