# rapidtrace: `make run` (embedded stack + simulated fleet + API) and `make test` (the whole suite).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-timescale lint unit integration bench bench-quick bench-flagger-cost migrate clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/rapidtrace up --simulate

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

# The storage, statistics, failures and chain tests run a second time on the embedded PostgreSQL 18
# with TimescaleDB 2.29.2 preloaded (../shared/timescaledb, copied into the venv, never written to);
# there a skipped `timescale` test is a failure.
TIMESCALE_TESTS := $(addprefix tests/integration/,test_migrate.py test_stats.py test_failures.py \
  test_failure_causes.py test_outcomes.py test_retest.py test_reading_identity.py test_readings_verdicts.py \
  test_thresholds_live.py test_timescale_paths.py test_chain.py test_chain_custody.py test_chain_scope.py \
  test_pipeline.py test_registry.py)

# Tests on real brokers and a browser share one machine's timing: a failed test is run again up to
# twice (pytest-rerunfailures), and the rerun is reported ("R" and "rerun" in the summary).
RERUNS ?= --reruns 2 --reruns-delay 2

test: lint
	$(BIN)/python -m pytest -p no:cacheprovider $(RERUNS) $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$rc
	$(MAKE) --no-print-directory test-timescale

test-timescale: $(STAMP)
	$(BIN)/python -m tests.timescale_pg -- -p no:cacheprovider $(RERUNS) $(TIMESCALE_TESTS)

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

integration: $(STAMP)
	$(BIN)/python -m pytest tests/integration $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/rapidtrace bench

bench-quick: $(STAMP)
	$(BIN)/rapidtrace bench --duration 15 --rate 1000

bench-flagger-cost: $(STAMP)
	$(BIN)/rapidtrace bench --flagger-cost

migrate: $(STAMP)
	$(BIN)/rapidtrace migrate

clean:
	rm -rf $(VENV) .rapidtrace .pytest_cache .mypy_cache .ruff_cache *.egg-info
