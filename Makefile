# The two commands a newcomer needs: `make run` and `make test`. Both build .venv from the pinned
# requirements on first use, with only Python 3.11+ and make on the machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test lint bench chaos

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

run: $(VENV)/.installed
	$(PY) -m oncall.demo

# Test files run side by side (pytest-xdist), each file whole on one worker so its module fixtures start once:
# two workers for CI's 2 cores (more add load that the tests' real-time waits feel). TEST_WORKERS=0 runs the
# files one by one.
TEST_WORKERS ?= 2

test: $(VENV)/.installed
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(PY) -m ruff check .

bench: $(VENV)/.installed  # over the CPU budget (row 7) it fails: a regression is loud
	$(PY) -m bench.run_all

chaos: $(VENV)/.installed
	$(PY) -m bench.chaos
