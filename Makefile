# The two commands of the README: `make run` and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
export APP_ENV ?= development
export FLASK_APP := wsgi.py

.PHONY: install run migrate lint format test bench clean cluster

$(BIN)/.installed: requirements.txt requirements-dev.txt
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

# Loopback benchmark of Steadfast against in-run baselines (docs/performance.md); a few minutes.
# Options: make bench BENCH_ARGS="--duration 10 --rounds 5" BENCH_REDIS_URL=redis://127.0.0.1:6379/14
bench: install
	@command -v wrk >/dev/null 2>&1 || { echo "bench: installing wrk (Debian package)"; \
		$$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -q wrk >/dev/null 2>&1 || \
		{ $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -q >/dev/null && \
		  $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -q wrk >/dev/null; }; }
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache
