# The two commands: `make run` and `make test`.  Each installs what it needs into .venv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint install lock bench checkers soak

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.run-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@ $(VENV)/.run-installed

$(VENV)/.lock-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[lock]'
	touch $@

install: $(VENV)/.run-installed

# requirements.txt: pyproject.toml's dependencies pinned for Python 3.11 on Linux, then the
# package itself; the Heroku Python buildpack installs from it.  Run after editing dependencies.
lock: $(VENV)/.lock-installed
	$(BIN)/uv pip compile pyproject.toml --quiet --python-version 3.11 \
		--python-platform x86_64-unknown-linux-gnu --custom-compile-command 'make lock' \
		--output-file requirements.txt
	printf '%s\n' '# Broadsheet itself, installed from this checkout.' '.' >> requirements.txt

run: $(VENV)/.run-installed
	$(BIN)/broadsheet run

lint: $(VENV)/.test-installed
	$(BIN)/ruff check src tests $(wildcard bench)
	$(BIN)/ruff format --check src tests $(wildcard bench)
	$(BIN)/mypy
	$(BIN)/lint-imports

# The outside checkers the tests run over every page, from npm as package-lock.json pins
# them: the Nu Html Checker (vnu.jar, run on the machine's Java) and axe-core.  Install
# scripts stay off (vnu-jar's would fetch a Java of its own).  Without npm the checker test
# is skipped (and fails under .ci/run).
CHECKERS := tests/checkers
$(CHECKERS)/node_modules/.package-lock.json: $(CHECKERS)/package-lock.json
	@command -v npm >/dev/null || { echo "npm is missing: the HTML and accessibility checks will not run"; exit 0; }
	npm ci --prefix $(CHECKERS) --ignore-scripts --no-audit --no-fund --loglevel=error

checkers: $(CHECKERS)/node_modules/.package-lock.json

# The suite runs in two pytest-xdist workers per core: much of it waits on worker processes,
# brokers and a browser, so the cores stay busy.  Each worker makes its own databases, queues
# and folders; idle workers steal tests from busy ones.  TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= $(shell echo $$(( $$(nproc) * 2 )))
test: lint checkers
	$(BIN)/pytest -n $(TEST_WORKERS) $(if $(filter 0,$(TEST_WORKERS)),,--dist worksteal)

# Reads under gunicorn and wrk on a 100,000-post PostgreSQL database, against a Flask "hello",
# then the newsletter at 100,000 recipients (aiosmtpd as the SMTP sink, hence the test extras);
# writes bench/results/<date>.md.  Needs PostgreSQL and RabbitMQ on 127.0.0.1 (Redis to
# compare page cache stores).
bench: $(VENV)/.test-installed
	$(BIN)/python bench/run_bench.py
	$(BIN)/python bench/search_bench.py
	$(BIN)/python bench/editor_bench.py
	$(BIN)/python bench/media_bench.py
	$(BIN)/python bench/import_bench.py
	$(BIN)/python bench/import_images_bench.py
	$(BIN)/python bench/stats_bench.py
	$(BIN)/python bench/email_tracking_bench.py

# Ten minutes (--minutes) of mixed traffic on a PostgreSQL cluster and a RabbitMQ node of its
# own (never the machine's shared ones), each restarted once, with a 20,000-recipient send
# into an SMTP sink; writes bench/results/soak-<date>.md.  Needs root and both servers' packages.
soak: $(VENV)/.test-installed
	$(BIN)/python bench/soak.py $(if $(MINUTES),--minutes $(MINUTES))
