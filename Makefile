# The two commands a new user needs: `make run` and `make test`. Both create the virtual
# environment from the lock file on first use, so a fresh machine needs only python3 and make.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-fast lint typecheck unit unit-fast bench install lock clean readme mutate

install: $(STAMP)

$(STAMP): requirements/dev.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements/dev.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

run: $(STAMP)
	$(BIN)/oauth-server db upgrade
	$(BIN)/oauth-server serve

lint: $(STAMP)
	$(BIN)/ruff check src tests scripts
	$(BIN)/ruff format --check src tests scripts

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest tests

test: lint typecheck unit

# Quick local runs: everything but the tests that start real server processes (marked slow).
# The full suite (`make test`, with OAUTH_SERVER_TEST_STRICT=1 in CI) stays the test command.
unit-fast: $(STAMP)
	$(BIN)/pytest tests -m "not slow"

test-fast: lint typecheck unit-fast

# Mutation testing of the security-critical modules (scripts/mutate.py; configured in
# pyproject.toml [tool.mutmut]). Not part of `make test`: it takes minutes. Fails when a mutant
# survives that tests/mutation/equivalent.txt does not list.
mutate: $(STAMP)
	$(BIN)/python scripts/mutate.py

# The benchmark (bench/README.md). BENCH_ARGS=--scale: empty against loaded databases;
# BENCH_ARGS=--quick: smoke test. Profiles: $(BIN)/python bench/profile.py [SCENARIO...]
bench: $(STAMP)
	bench/setup.sh
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# Regenerate the lock files after changing dependencies in pyproject.toml.
lock: $(STAMP)
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --generate-hashes --python-version 3.11 -q -o requirements/dev.lock
	$(BIN)/uv pip compile pyproject.toml --generate-hashes --python-version 3.11 -q -o requirements/prod.lock

# Regenerate the README's configuration table from the settings' docstrings.
readme: $(STAMP)
	$(BIN)/python scripts/update_readme.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache mutants
