# The two set-up commands of the README: `make up` runs the pipeline, `make test` runs the tests.
# Both create the virtual environment and install what they need on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)

.PHONY: up test lint bench install system-deps

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

# System packages the tests use: Compose (only to parse docker-compose.yml; no engine needed).
system-deps:
	@if ! command -v docker-compose >/dev/null && ! docker compose version >/dev/null 2>&1; then \
		echo "installing Debian's docker-compose (to check docker-compose.yml)"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq docker-compose >/dev/null; \
	fi

## make up: run the whole pipeline on this machine (starts RabbitMQ if it is installed and down)
up: $(STAMP)
	$(BIN)/sealflow keys init
	$(BIN)/sealflow up

## make test: lint, type-check and run the whole test suite against a real RabbitMQ
test: $(STAMP) system-deps
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
