"""The local embedder is all-MiniLM-L6-v2 as sentence-transformers computes it: the cosines of the model's own
documented example match (int8 weights: within 0.01), pooling ignores padding, and a tampered model file is
refused before it is loaded."""

import asyncio
import shutil

import numpy as np
import pytest

from streams.quality.embedder import EmbeddingError
from streams.quality.local_minilm import DIMENSIONS, LocalMiniLM, model_files


@pytest.fixture(scope="module")
def minilm():
    return LocalMiniLM()


def test_cosines_match_sentence_transformers(minilm):
    # sentence-transformers' quick-start with all-MiniLM-L6-v2 prints 0.6660, 0.1046 and 0.1411 (fp32 weights)
    vectors = minilm.embed_sync(["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."])
    sims = vectors @ vectors.T
    assert vectors.shape == (3, DIMENSIONS) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert abs(sims[0, 1] - 0.6660) < 0.01 and abs(sims[0, 2] - 0.1046) < 0.01 and abs(sims[1, 2] - 0.1411) < 0.01


def test_padding_does_not_change_a_sentence_vector(minilm):
    short = "A man is playing a flute."
    alone = minilm.embed_sync([short])[0]
    padded = minilm.embed_sync([short, "A much longer sentence that forces padding of the short one " * 5])[0]
    assert float(alone @ padded) > 0.9999


def test_empty_enormous_and_non_latin_texts_embed(minilm):
    vectors = asyncio.run(minilm.embed(["", "word " * 5000, "猫がマットの上に座っている。", "Кошка сидит на коврике."]))
    assert vectors.shape == (4, DIMENSIONS) and np.isfinite(vectors).all()


def test_a_tampered_model_file_is_refused(tmp_path):
    onnx, tokenizer = model_files()
    copy = tmp_path / "model.onnx"
    shutil.copy(onnx, copy)
    with open(copy, "r+b") as f:
        f.seek(1000)
        f.write(b"\x00\x01\x02")
    with pytest.raises(EmbeddingError, match="sha256"):
        LocalMiniLM(onnx_path=copy, tokenizer_path=tokenizer)
