# make install: flowsafe on this server (system packages, a virtualenv in $(PREFIX), the
# command linked in $(BINDIR)); idempotent, run it again to update.
# make demo: the built-in tour on a sample site.  make test: lint, types, tests.
# make faults: the whole fault matrix, written to RELIABILITY.md.  make fuzz: the long fuzz run.
# Both install what they need (apt packages, the development virtualenv) when it is missing.

VENV := .venv
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
PREFIX ?= /opt/flowsafe
BINDIR ?= /usr/local/bin
export PATH := /usr/sbin:/sbin:$(PATH)

.PHONY: install demo test lint deps bench clean faults fuzz

install:
	@PREFIX="$(PREFIX)" BINDIR="$(BINDIR)" scripts/install.sh

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
	$(VENV)/bin/python -m bench.speed

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
