# gc-agent: every target creates and uses .venv; nothing needs root.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup lint test demo bench bench-smoke clean broker

setup: $(STAMP)

# The MQTT tests run the agent against both paho-mqtt APIs: 1.6 (what a Python
# 3.6 device runs) and 2.x, each installed into its own folder for PYTHONPATH.
$(STAMP): setup.cfg pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m pip install --quiet --upgrade --target $(VENV)/paho-1.6 'paho-mqtt==1.6.1'
	$(PY) -m pip install --quiet --upgrade --target $(VENV)/paho-2 'paho-mqtt>=2,<3'
	@touch $(STAMP)

# Tests use a real mosquitto (and openssl for TLS), started by the tests themselves.
broker:
	@if ! command -v mosquitto >/dev/null 2>&1 && ! test -x /usr/sbin/mosquitto; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing mosquitto (apt-get)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto mosquitto-clients openssl >/dev/null; \
	  else \
	    echo "mosquitto is needed by the tests: sudo apt-get install mosquitto mosquitto-clients openssl"; exit 1; \
	  fi; \
	fi

lint: setup
	$(VENV)/bin/ruff check agent tools tests
	$(VENV)/bin/lint-imports
	$(VENV)/bin/vermin --target=3.6- --no-tips --violations agent/ tools/emulator/onboard/ tools/emulator/workloads/ tools/emulator/flashfull.py

test: lint broker
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
