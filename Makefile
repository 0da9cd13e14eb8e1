# Two commands for a fresh machine: `make demo` runs the product, `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test test-fast lint benchmark clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	$(PY) manage.py demo

# pytest exits 5 when it collected nothing: not a failure for a filtered run.
test: $(VENV)/.installed
	$(PY) -m pytest $(PYTEST_ARGS); status=$$?; [ $$status -eq 5 ] && exit 0; exit $$status

# The local loop: everything but the slow tests (benchmark, crash/restart, fuzzing), which CI runs.
test-fast: $(VENV)/.installed
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS); status=$$?; [ $$status -eq 5 ] && exit 0; exit $$status

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

benchmark: $(VENV)/.installed
	$(PY) manage.py benchmark

clean:
	rm -rf $(VENV) var staticfiles test-artifacts
