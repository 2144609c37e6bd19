# The two commands of the README: `make run` and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
export APP_ENV ?= development
export FLASK_APP := wsgi.py

.PHONY: install run migrate lint format test bench clean cluster

# psycopg is built against the system libpq (requirements.txt): say what is missing, up front.
NEED_PG_CONFIG = @command -v pg_config >/dev/null 2>&1 || { echo "pg_config not found. psycopg is \
	built against the system libpq: install a C compiler and libpq-dev (Debian, Ubuntu) or libpq \
	(Homebrew; put its bin/ on PATH)." >&2; exit 1; }

$(BIN)/.installed: requirements.txt requirements-dev.txt
	$(NEED_PG_CONFIG)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(BIN)/.installed

migrate: install
	$(BIN)/flask db upgrade

run: migrate
	$(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

# Two instances behind nginx on PostgreSQL (127.0.0.1:5432) and a private Redis; Ctrl-C stops.
cluster: install
	$(BIN)/python -m deploy.cluster

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint
	APP_ENV=test $(BIN)/pytest $(PYTEST_ARGS)

# The benchmark runs in a virtualenv of requirements.txt only, as the image does: the test tools
# in $(VENV) bring packages the app imports when present (PyYAML, via flask-smorest).
BENCH_VENV ?= .venv-bench
$(BENCH_VENV)/bin/.installed: requirements.txt
	$(NEED_PG_CONFIG)
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/pip install --quiet -r requirements.txt
	touch $@

# Loopback benchmark of Steadfast against in-run baselines (docs/performance.md); a few minutes.
# Options: make bench BENCH_ARGS="--duration 10 --rounds 8" BENCH_REDIS_URL=redis://127.0.0.1:6379/14
bench: $(BENCH_VENV)/bin/.installed
	@command -v wrk >/dev/null 2>&1 || { echo "bench: installing wrk (Debian package)"; \
		$$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -q wrk >/dev/null 2>&1 || \
		{ $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -q >/dev/null && \
		  $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -q wrk >/dev/null; }; }
	$(BENCH_VENV)/bin/python -m benchmarks.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(BENCH_VENV) instance .pytest_cache .ruff_cache
