# Every target sets itself up: a fresh clone needs nothing but python3 (3.11+).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test lint bench clean chromium

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("Tokensmith needs Python 3.11 or newer" if sys.version_info < (3, 11) else 0)'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

run: $(STAMP)
	$(BIN)/tokensmith migrate
	$(BIN)/tokensmith serve --host $(HOST) --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples
	$(BIN)/mypy
	$(BIN)/lint-imports

# The suite runs in parallel (pytest-xdist), one worker per core by default; docs/architecture.md
# says how tests stay apart. TEST_WORKERS=0 runs it in this one process, as plain `pytest` does.
TEST_WORKERS ?= auto
test: lint chromium
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup

# tests/examples/test_spa_browser.py drives Debian's chromium through Playwright (never
# `playwright install`): installed here when missing, as root or through sudo.
chromium:
	@test -x /usr/bin/chromium || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
		else sudo apt-get update -q && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; fi; }

# Tokensmith against node-oidc-provider on loopback; installs wrk and the npm peer into
# ~/.cache/tokensmith-bench. At most 15 minutes; BENCH_ARGS="--quick" for a smoke run.
bench: $(STAMP)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
