# The two set-up commands of the README: `make up` runs the pipeline, `make test` runs the tests.
# Both create the virtual environment and install what they need on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
INTEROP_PROVIDER := tests/gateway/interop/provider
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml Makefile $(INTEROP_PROVIDER)/package-lock.json | sha256sum | cut -c1-12)
# Swagger UI for the gateway's /docs: npm's swagger-ui-dist (maintained upstream), pinned by
# version and by the registry's sha512, unpacked into the environment (gateway/docs.py).
SWAGGER_UI_VERSION := 5.35.0
SWAGGER_UI_SHA512 := U06rpMtW9V3XPGOBeamTUSr0Z09jMX4IJuANpE/EZbAhw0G8CgwrzU4YmXkn/h0wCDNsXdGarTNNHC3sU8yVUQ==
SWAGGER_UI_DIR := $(VENV)/share/sealflow/swagger-ui
SWAGGER_UI_FILES := swagger-ui-bundle.js swagger-ui.css index.css favicon-16x16.png favicon-32x32.png LICENSE NOTICE
# The external OpenID provider of tests/gateway/interop (npm's oidc-provider, pinned by its
# package-lock.json), installed under the environment.
INTEROP_PROVIDER_DIR := $(VENV)/share/sealflow/oidc-provider

.PHONY: up test lint bench install system-deps pythons

$(STAMP): pyproject.toml $(INTEROP_PROVIDER)/package-lock.json
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	rm -rf $(SWAGGER_UI_DIR) && mkdir -p $(SWAGGER_UI_DIR)
	cd $(SWAGGER_UI_DIR) && npm pack --silent swagger-ui-dist@$(SWAGGER_UI_VERSION) >/dev/null \
		&& [ "$$(openssl dgst -sha512 -binary swagger-ui-dist-$(SWAGGER_UI_VERSION).tgz | base64 -w0)" = "$(SWAGGER_UI_SHA512)" ] \
		&& tar -xzf swagger-ui-dist-$(SWAGGER_UI_VERSION).tgz --strip-components=1 $(addprefix package/,$(SWAGGER_UI_FILES)) \
		&& rm swagger-ui-dist-$(SWAGGER_UI_VERSION).tgz
	rm -rf $(INTEROP_PROVIDER_DIR) && mkdir -p $(INTEROP_PROVIDER_DIR)
	cp $(INTEROP_PROVIDER)/package.json $(INTEROP_PROVIDER)/package-lock.json $(INTEROP_PROVIDER_DIR)/
	cd $(INTEROP_PROVIDER_DIR) && npm ci --no-audit --no-fund --silent
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

# System packages the tests use, from Debian: Chromium for the browser tests (Playwright drives
# /usr/bin/chromium; it cannot download a browser of its own here) and Compose, only to parse
# docker-compose.yml (no engine needed).
CHROMIUM ?= /usr/bin/chromium
SYSTEM_PACKAGES := $(if $(wildcard $(CHROMIUM)),,chromium) \
	$(if $(shell command -v docker-compose || (docker compose version >/dev/null 2>&1 && echo y)),,docker-compose)
system-deps:
	@if [ -n "$(strip $(SYSTEM_PACKAGES))" ]; then \
		echo "installing Debian packages: $(strip $(SYSTEM_PACKAGES))"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(SYSTEM_PACKAGES) >/dev/null; \
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
	$(MAKE) --no-print-directory pythons

# The other Python versions the project states (pyproject's classifiers): every test module is
# imported (collection) and the unit suites of the shapes and the envelope run, each in its own
# .venv-X.Y. A version this machine lacks is named, not hidden; the full suite runs on $(PYTHON).
OTHER_PYTHONS := 3.12 3.13
PYTHON_UNIT_TESTS := tests/schemas tests/broker/test_envelope.py tests/sealflow/test_packaging.py
pythons:
	@set -o pipefail; for version in $(OTHER_PYTHONS); do \
		interpreter=""; \
		for candidate in $$(ls $$HOME/.pyenv/versions/$$version.*/bin/python$$version 2>/dev/null) $$(command -v python$$version); do \
			if $$candidate -c 'import sys' 2>/dev/null; then interpreter=$$candidate; fi; \
		done; \
		if [ -z "$$interpreter" ]; then echo "Python $$version: not installed on this machine, not tested"; continue; fi; \
		venv=.venv-$$version; stamp=$$venv/.installed-$$(cat pyproject.toml | sha256sum | cut -c1-12); \
		if [ ! -f $$stamp ]; then \
			rm -rf $$venv && $$interpreter -m venv $$venv \
			&& $$venv/bin/pip install --quiet --disable-pip-version-check -e '.[test]' \
			&& touch $$stamp || exit 1; \
		fi; \
		echo "Python $$version ($$interpreter):"; \
		$$venv/bin/python -m pytest -q -p no:cacheprovider --collect-only tests | tail -n 1 || exit 1; \
		$$venv/bin/python -m pytest -q -p no:cacheprovider $(PYTHON_UNIT_TESTS) | tail -n 1 || exit 1; \
	done

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/envelope.py
	$(BIN)/python bench/pipeline.py
	$(BIN)/python bench/gateway_http.py
	$(BIN)/python bench/e2e.py
