# Two entry points matter (see README): `make demo` and `make test`.
# Both build a pinned virtual environment from scratch with only python3, git and make.
# `make test-fast` is a developer's inner loop: the unit tier of the tests, in under two minutes.
PYTHON ?= python3
VENV   ?= .venv
UV_VERSION = 0.13.9
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
BENCH_STAMP = $(VENV)/.installed-bench

.PHONY: demo test test-fast test-oldest lint typecheck bench lock clean

# The oldest Airflow the package supports (pyproject's lower bound; README "Install" says why). $(VENV)
# pins the newest through constraints.txt; this one has its own venv and constraints file.
OLDEST_AIRFLOW     = 3.1
OLDEST_VENV        = .venv-airflow-$(OLDEST_AIRFLOW)
OLDEST_CONSTRAINTS = constraints-airflow-$(OLDEST_AIRFLOW).txt
OLDEST_STAMP       = $(OLDEST_VENV)/.installed

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

# The Celery end-to-end test (tests/integration/test_celery_s3.py) starts Debian's Redis as the broker
# and PostgreSQL as the metadata database (Celery needs one that several processes write at once).
REDIS_SERVER ?= /usr/bin/redis-server
PG_CTLCLUSTER ?= /usr/bin/pg_ctlcluster

$(REDIS_SERVER) $(PG_CTLCLUSTER):
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server postgresql >/dev/null

test: $(BENCH_STAMP) $(CHROMIUM) $(REDIS_SERVER) $(PG_CTLCLUSTER)
	$(BIN)/python -m playwright --version >/dev/null
	$(BIN)/ruff check airflow_hubspot_assoc tests example_dags benchmarks demo
	$(BIN)/mypy
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	$(MAKE) test-oldest

$(OLDEST_STAMP): $(BIN)/uv pyproject.toml $(OLDEST_CONSTRAINTS)
	rm -rf $(OLDEST_VENV)
	$(PYTHON) -m venv $(OLDEST_VENV)
	$(BIN)/uv pip install --quiet --python $(OLDEST_VENV)/bin/python -c $(OLDEST_CONSTRAINTS) -e '.[test,parquet,s3]'
	touch $(OLDEST_STAMP)

# On the oldest Airflow: the unit tests of the modules that meet Airflow's API (no Airflow processes),
# and a load and sensor run through dag.test() (tests/integration/test_airflow_versions.py). Deselected:
# the sensor runs whose 2 s visibility delay is shorter than 3.1's dag.test() may take to start the next
# task (test_airflow_versions runs poke and deferrable with a longer one), and three tests of APIs newer
# than 3.1 (airflow.sdk.serde, the task-runtime providers manager, a dict keyed by Asset as outlet events).
OLDEST_TESTS = tests/integration/test_airflow_versions.py tests/hooks tests/client tests/triggers \
	tests/sensors tests/readback tests/test_auth.py tests/test_record.py tests/test_links.py \
	tests/test_lineage.py tests/test_assets.py tests/test_storage.py
OLDEST_DESELECT = \
	tests/sensors/test_associations.py::test_waits_until_visible_through_airflow \
	tests/sensors/test_associations.py::test_deferrable_through_airflow \
	tests/triggers/test_associations.py::test_serialize_through_airflows_serde \
	tests/test_assets.py::test_the_scheme_is_registered_with_airflow \
	tests/test_assets.py::test_outlet_events_get_the_counts_of_a_matching_pair_only

test-oldest: $(OLDEST_STAMP)
	$(OLDEST_VENV)/bin/python -m pytest -m "not e2e and not slow" $(OLDEST_TESTS) \
		$(addprefix --deselect ,$(OLDEST_DESELECT))

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

# The benchmarks' own extra (DuckDB, the yardstick of the sync diff scenario) on top of the test venv;
# `make test` needs it too (the benchmarks' smoke tests run the scenarios at small size).
$(BENCH_STAMP): $(STAMP)
	$(BIN)/uv pip install --quiet --python $(BIN)/python -c constraints.txt -e '.[test,parquet,s3,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks.run

# Re-resolve the pins of both supported Airflow versions (needs the registry); commit the results.
LOCK = $(BIN)/uv pip compile --quiet --python-version 3.11 --universal --extra test --extra parquet --extra s3 \
	--extra bench
lock: $(BIN)/uv
	$(LOCK) pyproject.toml -o constraints.txt
	$(LOCK) pyproject.toml constraints-airflow-$(OLDEST_AIRFLOW).in -o $(OLDEST_CONSTRAINTS)

clean:
	rm -rf $(VENV) $(OLDEST_VENV) .demo .airflow-home
