# The two commands a newcomer needs: `make run` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
INFRAAI := $(VENV)/bin/infraai
# `make run` installs what InfraAI needs to run; the test and lint tools come with the
# targets that use them.
RUNTIME := $(VENV)/.runtime-stamp
STAMP := $(VENV)/.installed-stamp
PIP := $(PY) -m pip install --quiet --disable-pip-version-check

.PHONY: run test test-unit lint format bench eval clean

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

## bench: the benchmarks (tables with a same-run baseline; needs PostgreSQL and Redis)
bench: $(STAMP)
	$(PY) -m bench.policies
	$(PY) -m bench.ingest
	$(PY) -m bench.e2e
	$(PY) -m bench.worker

## eval: the assistant's cases against the configured Ollama model (OLLAMA_BASE_URL, OLLAMA_MODEL)
eval: $(RUNTIME)
	$(PY) -m evals.run --runs $${RUNS:-3}

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
