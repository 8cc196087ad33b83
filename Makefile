# gc-agent: every target creates and uses .venv; nothing needs root.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup lint test demo bench bench-smoke clean

setup: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

lint: setup
	$(VENV)/bin/ruff check agent tools tests
	$(VENV)/bin/lint-imports
	$(VENV)/bin/vermin --target=3.6- --no-tips --violations agent/

test: lint
	$(PY) -m pytest

# The agent around a workload that makes reference cycles with gc disabled,
# once without and once with the agent, under a 64M ceiling.
demo: setup
	$(PY) -m tools.demo

bench: setup
	$(PY) -m tools.bench

bench-smoke: setup
	$(PY) -m tools.bench --quick

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache bench/results.json
