# Two commands on a fresh machine: `make demo` and `make test`.
# Both (re)create .venv when it is missing, broken, or older than pyproject.toml.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO_DIR ?= demo

.PHONY: demo test serve bench clean venv chromium

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) && $(PY) -c "import sys" 2>/dev/null || rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/targeting demo --workdir $(DEMO_DIR)

# The suite runs on every core up to four (pytest-xdist), each test file on one worker in file order:
# module fixtures (simulated worlds, trained models) are built once. TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= auto

test: $(STAMP) chromium
	$(PY) -m pytest -q -n $(TEST_WORKERS) --maxprocesses 4 --dist loadfile

# The browser tests drive the system's Chromium (Debian package); Playwright never downloads a browser.
chromium:
	@command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)

# The stores come from ccp.toml (make demo writes it, naming the demo's) and CCP_* variables.
serve: $(STAMP)
	$(VENV)/bin/targeting serve

bench: $(STAMP)
	$(PY) -m bench.run_all

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .hypothesis
	@grep -qs 'written by `targeting demo`' ccp.toml && rm -f ccp.toml || true
