# The two set-up commands of the README: `make up` runs the pipeline, `make test` runs the tests.
# Both create the virtual environment and install what they need on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)

.PHONY: up test lint bench install

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

## make up: run the whole pipeline on this machine (starts RabbitMQ if it is installed and down)
up: $(STAMP)
	$(BIN)/sealflow keys init
	$(BIN)/sealflow up

## make test: lint, type-check and run the whole test suite against a real RabbitMQ
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/envelope.py
	$(BIN)/python bench/pipeline.py
