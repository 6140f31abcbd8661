# Two set-up commands for users: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test bench lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch pinned to the CPU wheel available offline; the package itself accepts a range
	$(PY) -m pip install -q "torch==2.13.0"
	# the tests cover the integrations too, so they install every extra
	$(PY) -m pip install -q "torch==2.13.0" -e ".[dev,sklearn,pyro,sbi,onnx,tensorboard]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/flowforge train --out runs/demo

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/run.py

lint: $(STAMP)
	$(PY) -m pip install -q ruff && $(VENV)/bin/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) runs .pytest_cache
