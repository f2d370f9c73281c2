# The two commands the README promises. Everything else here is a helper for them.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
DEMO_DIR ?= demo-project
PORT ?= 22362

.PHONY: demo test lint browser-deps clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(PIP) install -q -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	@test -d $(DEMO_DIR) || $(VENV)/bin/turnout init --for-demo $(DEMO_DIR)
	cd $(DEMO_DIR) && ../$(VENV)/bin/turnout db upgrade && \
	  TURNOUT_SIMULATE_ARRIVAL_RATE=$${TURNOUT_SIMULATE_ARRIVAL_RATE:-4} \
	  TURNOUT_ENABLE_DASHBOARD=true TURNOUT_LOGIN_USERNAME=demo TURNOUT_LOGIN_PW=demo \
	  exec ../$(VENV)/bin/turnout serve --demo --port $(PORT)

# Chromium for the browser tests comes from Debian's packages; install it when missing.
browser-deps:
	@command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 || { \
	  echo "installing Debian chromium + chromium-driver for the browser tests"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; }

test: $(VENV)/.installed-test browser-deps
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/pytest

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check src tests bench

clean:
	rm -rf $(VENV) build dist src/*.egg-info
