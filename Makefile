# btc-platform: the commands a user and CI run. `make test` is what CI runs (.ci/run).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: install demo ui test lint format bench clean

# Create (or reuse) .venv and install the project with every extra the tests need.
# Reinstalls only when pyproject.toml changes.
$(INSTALLED): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), f"Python 3.11 is required, found {sys.version.split()[0]} at {sys.executable}"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet -e ".[batch,test]"
	touch $(INSTALLED)

install: $(INSTALLED)

# The platform end to end on this machine: local exchange, private Redis, Dagster from
# bronze to a promoted model, then a minute of the realtime service. Lands in data/demo.
DEMO_DIR := data/demo
demo: $(INSTALLED)
	$(BIN)/python -m btc_platform.demo --data-dir $(DEMO_DIR) $(DEMO_ARGS)

# Dagster's UI on what the demo built (its instance, catalog and model store).
ui: $(INSTALLED)
	@test -d $(DEMO_DIR)/dagster || { echo "run 'make demo' first: the UI shows what it built"; exit 1; }
	DAGSTER_HOME=$(abspath $(DEMO_DIR))/dagster BTC_DATA_DIR=$(abspath $(DEMO_DIR)) \
		$(BIN)/dagster dev -w workspace.yaml

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(INSTALLED)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# pytest exits non-zero on any failure and with status 5 when no test was collected.
test: lint
	$(BIN)/python -m pytest btc_platform_tests

# Every benchmark, each printing one JSON document (docs/benchmarks.md quotes them).
bench: $(INSTALLED)
	$(BIN)/python bench/sbe_decode.py
	$(BIN)/python bench/features_day.py
	$(BIN)/python bench/sim_stream.py
	$(BIN)/python bench/features_v2_day.py
	$(BIN)/python bench/quality_day.py
	$(BIN)/python bench/lakehouse_day.py
	$(BIN)/python bench/service_pipeline.py
	$(BIN)/python bench/chaos.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis build *.egg-info
