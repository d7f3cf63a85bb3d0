# rxcast: the two commands a newcomer needs are `make demo` and `make test`.
# Both set up everything they need first (scripts/bootstrap is idempotent).

PYTHON := .venv/bin/python
BUF := node_modules/.bin/buf

.PHONY: demo test lint bootstrap certs protos lint-protos breaking baseline bench constraints clean

## demo: the main job: play the simulated chain through the suite, write reports/demo/report.md
demo: bootstrap certs
	$(PYTHON) -m rxcast.demo $(DEMO_ARGS)

## test: run the whole test suite (contract, unit and integration tests)
test: bootstrap lint
	scripts/ensure-system-packages
	$(PYTHON) -m pytest $(PYTEST_ARGS)

## lint: ruff's checks and formatting (the import contracts run as a test)
lint: bootstrap
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .

bootstrap:
	scripts/bootstrap

## certs: a local CA and a certificate, key and bearer token per service and role in certs/
## (kept if there; `make certs CERTS_ARGS=--force` replaces them). Services, the demo and the
## CLIs read them from there by default; the tests make their own per session.
certs: bootstrap
	$(PYTHON) -m rxcast.runtime.certs --out certs $(CERTS_ARGS)

## protos: regenerate Python code from protos/ (bootstrap does this too)
protos: bootstrap

lint-protos: bootstrap
	$(BUF) lint

breaking: bootstrap
	$(BUF) breaking --against protos/buf-baseline.binpb

## baseline: record the current protos as the contract later changes must keep.
## Run in the same commit as every additive change to protos/ (tests/contract/test_baseline.py
## fails until the baseline holds every element); a breaking change needs a new package
## version, never a re-recorded baseline.
baseline: bootstrap
	$(BUF) build --exclude-source-info -o protos/buf-baseline.binpb

## constraints: re-pin every Python package after changing requirements.txt
constraints:
	rm -rf .venv-pin && python3 -m venv .venv-pin
	.venv-pin/bin/python -m pip install --disable-pip-version-check -q -r requirements.txt
	{ echo "# Exact versions for every package rxcast installs, transitive ones included."; \
	  echo "# Regenerate with: make constraints"; \
	  .venv-pin/bin/python -m pip freeze --exclude-editable; } > constraints.txt
	rm -rf .venv-pin

clean:
	rm -rf .venv node_modules build
