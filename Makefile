# make demo: the built-in tour on a sample site.  make test: lint, types, tests.
# make faults: the whole fault matrix, written to RELIABILITY.md.  make fuzz: the long fuzz run.
# Both install what they need (apt packages, the virtualenv) when it is missing.

VENV := .venv
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
export PATH := /usr/sbin:/sbin:$(PATH)

.PHONY: demo test lint deps bench clean faults fuzz

deps:
	@scripts/install-deps.sh

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

demo: deps $(STAMP)
	$(VENV)/bin/flowsafe demo

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy

test: deps $(STAMP) lint
	$(VENV)/bin/pytest

faults: deps $(STAMP)
	scripts/fault-matrix

fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz $(VENV)/bin/pytest -m fuzz -q

bench: deps $(STAMP)
	$(VENV)/bin/python -m bench.backup
	$(VENV)/bin/python -m bench.restore
	$(VENV)/bin/python -m bench.drill

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
