# rapidtrace: `make run` (embedded stack + simulated fleet + API) and `make test` (the whole suite).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint unit integration bench bench-quick bench-flagger-cost migrate clean

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

test: lint
	$(BIN)/python -m pytest -p no:cacheprovider $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$rc

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
