# Two commands on a fresh machine: `make demo` and `make test`.
# Both (re)create .venv when it is missing, broken, or older than pyproject.toml.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO_DIR ?= demo

.PHONY: demo test serve bench clean venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) && $(PY) -c "import sys" 2>/dev/null || rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/targeting demo --workdir $(DEMO_DIR)

test: $(STAMP)
	$(PY) -m pytest -q

serve: $(STAMP)
	CCP_LAKE_DIR=$${CCP_LAKE_DIR:-$(CURDIR)/$(DEMO_DIR)/lake} \
	CCP_DATABASE_URL=$${CCP_DATABASE_URL:-sqlite:///$(CURDIR)/$(DEMO_DIR)/var/ccp.db} \
	$(VENV)/bin/targeting serve

bench: $(STAMP)
	$(PY) -m bench.run_all

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .hypothesis
