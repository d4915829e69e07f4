# OnceCal: `make run` starts the app with demo data, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 5000
BASE_URL ?= http://127.0.0.1:$(PORT)
CHROMIUM := /usr/bin/chromium

.PHONY: run test proof lint install install-dev browser wrk lighthouse bench clean

$(VENV)/.runtime: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.runtime
install-dev: $(VENV)/.dev

# Playwright cannot download its own browser here: use Debian's Chromium.
browser:
	@test -x $(CHROMIUM) || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "Chromium is missing: run 'sudo apt-get install chromium'"; exit 1; fi; }
	@$(CHROMIUM) --version

# wrk, the load generator of `make bench`, from Debian.
wrk:
	@command -v wrk >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; \
	  else echo "wrk is missing: run 'sudo apt-get install wrk'"; exit 1; fi; }

# Lighthouse, the layout-shift measure of `make bench`: npm's, pinned in
# bench/lighthouse (package-lock.json), run on Debian's Node and Chromium.
lighthouse:
	@command -v npm >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null; \
	  else echo "npm is missing: run 'sudo apt-get install npm'"; exit 1; fi; }
	@test -x bench/lighthouse/node_modules/.bin/lighthouse || \
	  npm ci --prefix bench/lighthouse --no-audit --no-fund --loglevel=error

# Benchmark on SQLite and PostgreSQL (about 5 minutes): prints the table,
# writes bench/results.md, fails when a request failed or a budget FAILs.
bench: install-dev browser wrk lighthouse
	$(BIN)/python bench/run.py

run: install
	$(BIN)/flask --app app db upgrade
	@echo
	@ONCECAL_BASE_URL=$(BASE_URL) $(BIN)/flask --app app demo
	@echo
	@echo "OnceCal is starting on $(BASE_URL) with its outbox worker (Ctrl+C stops both)."
	@echo "Open the one-time link above, book a time, then open the same link again."
	@export ONCECAL_BASE_URL=$(BASE_URL); \
	  $(BIN)/flask --app app worker & worker=$$!; \
	  trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
	  $(BIN)/flask --app app serve --port $(PORT)

# ruff, then mypy on app.py, oncecal/ and blueprints/ (pyproject.toml's [tool.mypy]).
lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: install-dev browser lint
	$(BIN)/pytest

# The proof suite (tests/proof) at full scale on SQLite and PostgreSQL, with
# gunicorn and 4 workers: prints the table and writes docs/reliability.md,
# exits non-zero when any row is wrong.
proof: install-dev browser
	ONCECAL_PROOF=1 $(BIN)/pytest tests/proof --proof-table=docs/reliability.md

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .hypothesis
