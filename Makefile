# unionsnap: `make run` (the demo) and `make test` work on a fresh machine with
# only the Rust toolchain, Python 3 and apt; every other setup step is here.

CARGO ?= cargo
PYTHON ?= python3
# Python tools the tests use: DuckDB (reads our Parquet back) and moto's S3 server.
PY_DEPS := duckdb "moto[server]"

.PHONY: run test lint fmt build py-deps clean

## run: the demo job against the built-in simulator → ./warehouse, then the report
run:
	$(CARGO) run --quiet -- demo

build:
	$(CARGO) build

## py-deps: DuckDB and moto for the tests (installed once, no prompts)
py-deps:
	@$(PYTHON) -c "import duckdb, moto.server" 2>/dev/null || \
		$(PYTHON) -m pip install --quiet --disable-pip-version-check $(PY_DEPS)

## test: unit and end-to-end tests (real HTTP, real Parquet read by DuckDB, real S3 server)
test: py-deps
	$(CARGO) test --no-fail-fast

## lint: formatting and clippy, warnings are errors
lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

fmt:
	$(CARGO) fmt

clean:
	rm -rf warehouse exports
