# Two entry points matter (see README): `make demo` and `make test`.
# Both build a pinned virtual environment from scratch with only python3, git and make.
# `make test-fast` is a developer's inner loop: the unit tier of the tests, in under two minutes.
PYTHON ?= python3
VENV   ?= .venv
UV_VERSION = 0.13.9
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: demo test test-fast lint typecheck bench lock clean

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(STAMP): $(BIN)/uv pyproject.toml constraints.txt
	$(BIN)/uv pip install --quiet --python $(BIN)/python -c constraints.txt -e '.[test,parquet,s3]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python demo/run.py

# The browser test of the connection form drives Debian's Chromium (nothing downloads a browser).
CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(CHROMIUM):
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null

test: $(STAMP) $(CHROMIUM)
	$(BIN)/python -m playwright --version >/dev/null
	$(BIN)/ruff check airflow_hubspot_assoc tests example_dags benchmarks demo
	$(BIN)/mypy
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The unit tier (`pytest --fast`, defined in tests/conftest.py): no Airflow processes, no browser, no
# benchmarks, and a time budget per test; --timeout stops a test that hangs. Its tests mostly wait
# (answer latency, rate windows, poke intervals), so one worker per core (-n auto) halves the time;
# PYTEST_ARGS="-n 0 tests/..." runs a few tests in this process instead.
test-fast: $(STAMP)
	$(BIN)/python -m pytest --fast -n auto --timeout=60 --durations=10 $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check airflow_hubspot_assoc tests example_dags benchmarks demo
	$(BIN)/ruff format --check airflow_hubspot_assoc tests example_dags benchmarks demo

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

# Re-resolve the pins (needs the registry); commit the result.
lock: $(BIN)/uv
	$(BIN)/uv pip compile --quiet --python-version 3.11 --universal --extra test --extra parquet --extra s3 \
		pyproject.toml -o constraints.txt

clean:
	rm -rf $(VENV) .demo .airflow-home
