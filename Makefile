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
	@# gc-bundle vendors these into device bundles (it never downloads): pyserial and
	@# paho-mqtt 2.x are wheels on PyPI; 1.6.1 is an sdist only, so build its wheel here.
	$(PY) -m pip download --quiet --no-deps --only-binary :all: --dest $(VENV)/wheels \
	    'pyserial==3.5' 'paho-mqtt>=2,<3'
	$(PY) -m pip wheel --quiet --no-deps --wheel-dir $(VENV)/wheels 'paho-mqtt==1.6.1'
	@touch $(STAMP)

# Tests use a real mosquitto (openssl for TLS, socat for linked pty pairs), started by the tests.
broker:
	@if { ! command -v mosquitto && ! test -x /usr/sbin/mosquitto; } >/dev/null 2>&1 || ! command -v socat >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing mosquitto and socat (apt-get)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto mosquitto-clients openssl socat >/dev/null; \
	  else \
	    echo "the tests need mosquitto and socat: sudo apt-get install mosquitto mosquitto-clients openssl socat"; exit 1; \
	  fi; \
	fi
	@# The web console's tests drive Debian's chromium through its chromedriver and scrape
	@# /metrics with a real prometheus (promtool checks the format).
	@if ! test -x /usr/bin/chromium || ! test -x /usr/bin/chromedriver || ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing chromium, chromium-driver and prometheus (apt-get)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver prometheus >/dev/null; \
	  else \
	    echo "the web console tests need: sudo apt-get install chromium chromium-driver prometheus"; exit 1; \
	  fi; \
	fi

lint: setup
	$(VENV)/bin/ruff check agent tools tests
	$(VENV)/bin/lint-imports
	$(VENV)/bin/vermin --target=3.6- --no-tips --violations agent/ tools/emulator/onboard/ tools/emulator/workloads/ tools/emulator/flashfull.py tools/emulator/gcpolicy.py

test: lint broker
	$(PY) -m pytest

# The console (embedded broker) watching three devices: agents around workloads.
# Ctrl-C stops it; without a terminal it runs 30 s. The earlier demo: python -m tools.demo --compare
demo: setup
	$(PY) -m tools.demo

bench: setup
	$(PY) -m tools.bench

bench-smoke: setup
	$(PY) -m tools.bench --quick

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache bench/results.json
