# The two commands a newcomer needs: `make run` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
INFRAAI := $(VENV)/bin/infraai
# `make run` installs what InfraAI needs to run; the test and lint tools come with the
# targets that use them.
RUNTIME := $(VENV)/.runtime-stamp
STAMP := $(VENV)/.installed-stamp
PIP := $(PY) -m pip install --quiet --disable-pip-version-check

.PHONY: run test test-unit lint format bench eval lock clean

$(RUNTIME): pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) -e .
	touch $(RUNTIME)

$(STAMP): $(RUNTIME)
	$(PIP) -e '.[dev]'
	touch $(STAMP)

## run: InfraAI on the embedded default (SQLite here, in-process execution, dry run, console)
run: $(RUNTIME)
	$(INFRAAI) migrate
	INFRAAI_POLICIES=$${INFRAAI_POLICIES:-examples/policies.yaml} \
	INFRAAI_DRY_RUN=$${INFRAAI_DRY_RUN:-true} \
	$(INFRAAI) serve

## test: the whole suite (integration tests skip with a reason when their servers are absent)
test: $(STAMP)
	$(PY) -m pytest

test-unit: $(STAMP)
	$(PY) -m pytest -m "not integration"

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy bot core adapters
	$(VENV)/bin/hadolint Dockerfile

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

## bench: the benchmarks (tables with a same-run baseline; needs PostgreSQL, Redis and wrk)
bench: $(STAMP)
	$(PY) -m bench.policies
	$(PY) -m bench.ingest
	$(PY) -m bench.agent
	$(PY) -m bench.cli
	$(PY) -m bench.e2e
	$(PY) -m bench.worker
	$(PY) -m bench.graph
	$(PY) -m bench.assets

## eval: the assistant's cases against the configured Ollama model (OLLAMA_BASE_URL, OLLAMA_MODEL)
eval: $(RUNTIME)
	$(PY) -m evals.run --runs $${RUNS:-3}

## lock: refresh requirements.lock, the image's pinned runtime dependencies (with hashes).
## Resolved on Python 3.11, the image's Python, so environment markers match the image.
lock: $(STAMP)
	$(PY) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11) and "make lock needs Python 3.11")'
	CUSTOM_COMPILE_COMMAND="make lock" $(PY) -m piptools compile --quiet --upgrade \
		--strip-extras --generate-hashes --no-emit-index-url --no-emit-find-links \
		--output-file requirements.lock pyproject.toml

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
