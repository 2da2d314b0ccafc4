# MedLedger: `make demo` runs the main job, `make test` the whole test suite, `make analyze`
# Slither with its triage file.
# Each installs what it needs first (idempotently): a Python virtual environment in .venv with
# pinned versions (constraints.txt), the npm packages (solc-js, OpenZeppelin, Anvil, Cast, and
# Hardhat, the tests' second EVM: tools/hardhat/), the offline compiler bridge, and the compiled
# contracts.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.medledger-installed
NPM_STAMP := node_modules/.medledger-installed
ANVIL_DIR := $(CURDIR)/node_modules/@foundry-rs/anvil-linux-amd64/bin
export PATH := $(CURDIR)/$(BIN):$(ANVIL_DIR):$(PATH)

.PHONY: install demo test test-fast test-networks test-contracts test-package lint analyze clean

install: $(STAMP)

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(STAMP): pyproject.toml constraints.txt $(NPM_STAMP) compiler/solc-bridge.js
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	$(BIN)/python -m medledger.toolchain install
	# Byte-compiled once here: with PYTHONDONTWRITEBYTECODE set (as on these machines) every
	# command would otherwise compile the package again (0.15-0.3 s of each start-up).
	$(BIN)/python -m compileall -q src
	touch $@

demo: install
	$(BIN)/medledger demo

# `make test`, the whole suite, in three parts (each a target of its own): on Ape's in-process
# chain (eth-tester), the contract tests marked `networks`, whose outcome depends on what
# differs between the two chains (when the next block runs, how revert data reaches Python:
# see tests/contracts/conftest.py); the whole contract suite on Anvil; the package and CLI tests,
# among them the end-to-end flow on Hardhat Network (tests/package/test_second_evm.py, slow).
test: test-networks test-contracts test-package

test-networks: install
	$(BIN)/ape test tests/contracts -m networks --network ethereum:local:test -q

test-contracts: install
	$(BIN)/ape test tests/contracts --network ethereum:local:foundry -q

test-package: install
	$(BIN)/python -m pytest tests/package -q -p no:ape_test

# The inner loop: the package and CLI tests but the slow ones (no demo, no 1,000-grant gas
# check, no large FHIR samples), then the contract tests of the revert-data helpers on
# eth-tester. `make test` before a commit.
test-fast: install
	$(BIN)/python -m pytest tests/package -q -p no:ape_test -m "not slow"
	$(BIN)/ape test tests/contracts/test_support.py --network ethereum:local:test -q

lint: install
	$(BIN)/ruff check src tests scripts tools
	$(BIN)/mypy

# Slither on the deployable contracts (tools/analyze.py): fails on a High or Medium finding that
# analysis/slither-triage.yaml does not list with its reason. ANALYZE_ARGS="--verbose --json F".
analyze: install
	$(BIN)/python tools/analyze.py $(ANALYZE_ARGS)

clean:
	rm -rf $(VENV) node_modules .build .medledger
