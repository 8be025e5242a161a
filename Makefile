# unionsnap: `make run` (the demo) and `make test` work on a fresh machine with
# only the Rust toolchain, Python 3 and apt; every other setup step is here.

CARGO ?= cargo
PYTHON ?= python3
# Python tools the tests use: DuckDB (reads our Parquet back), moto's S3 server,
# deltalake (reads our Delta tables back, at any version), and the checkers data
# and platform teams run on what they paste: kubernetes-validate (the API schemas
# of every Kubernetes release), sqlglot (SQL dialect parsers) and pyspark (Spark
# 3.5 with its jars: a 318 MB sdist that pip builds into a wheel once and then
# installs from its cache, ~7 s). The checkers are pinned: a new release may
# read the same files differently.
KUBERNETES_VALIDATE := 1.37.0
SQLGLOT := 30.31.0
PYSPARK := 3.5.9
# The peer of `make bench` (bench/peer.py): what a data engineer would write instead.
WECHATPY := 1.8.18
PANDAS := 2.3.3
BENCH_DEPS := "wechatpy==$(WECHATPY)" "pandas==$(PANDAS)"
PY_DEPS := duckdb "moto[server]" "deltalake[pyarrow]" \
	"kubernetes-validate==$(KUBERNETES_VALIDATE)" "sqlglot==$(SQLGLOT)" "pyspark==$(PYSPARK)"

.PHONY: run test lint fmt build py-deps browser-deps java-deps report-png clean bench soak fuzz

## run: the demo job against the built-in simulator → ./warehouse (7 simulated
## days), then the report on the terminal and in ./report.html
run:
	$(CARGO) run --quiet -- demo

build:
	$(CARGO) build

## py-deps: DuckDB, moto, deltalake and the pinned checkers for the tests (installed
## once, no prompts)
py-deps:
	@$(PYTHON) -c "import duckdb, moto.server, deltalake, pyarrow; \
		from importlib.metadata import version as v; \
		assert v('kubernetes-validate') == '$(KUBERNETES_VALIDATE)' and v('sqlglot') == '$(SQLGLOT)' \
		and v('pyspark') == '$(PYSPARK)'" 2>/dev/null || \
		$(PYTHON) -m pip install --quiet --disable-pip-version-check $(PY_DEPS)

## browser-deps: headless Chromium for the HTML report's browser test (Debian's package)
browser-deps:
	@command -v chromium >/dev/null 2>&1 || (apt-get update && apt-get install -y chromium)

## java-deps: a Java runtime for the Spark test (Debian's openjdk-17-jre-headless). Where
## none can be installed, the Spark test skips and says why (outside CI; CI=true fails it)
java-deps:
	@command -v java >/dev/null 2>&1 || (apt-get update && apt-get install -y openjdk-17-jre-headless) || \
		echo "make: no Java runtime and none could be installed: the Spark test will skip"

## test: unit and end-to-end tests (real HTTP, real Parquet read by DuckDB, real S3 server,
## the HTML report in headless Chromium, the manifests and the SQL through the validators,
## parsers and the Spark that platform and data teams use). The fuzz targets are libFuzzer
## programs, not tests (`cargo test --bins` would run them without end): `make fuzz`
test: py-deps browser-deps java-deps
	$(CARGO) test --workspace --exclude unionsnap-fuzz --no-fail-fast --lib --bins --tests

## lint: formatting, clippy (warnings are errors) and the layers of docs/ARCHITECTURE.md
lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) check --no-default-features
	$(CARGO) test --quiet --test layers

fmt:
	$(CARGO) fmt --all

## report-png: docs/report.png, a screenshot of the report of `make run`'s output
report-png: run browser-deps
	chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
		--disable-component-update --disable-sync --no-first-run --hide-scrollbars \
		--user-data-dir=$$(mktemp -d) --window-size=1000,4300 \
		--screenshot=docs/report.png file://$(CURDIR)/report.html

clean:
	rm -rf warehouse report.html exports

## bench: the scale benchmark (release build, then ~4 minutes): prints a table;
## BENCH_CASES=c runs one case (see bench/bench.py)
bench: py-deps
	@$(PYTHON) -c "from importlib.metadata import version as v; \
		assert v('wechatpy') == '$(WECHATPY)' and v('pandas') == '$(PANDAS)'" 2>/dev/null || \
		$(PYTHON) -m pip install --quiet --disable-pip-version-check $(BENCH_DEPS)
	$(CARGO) build --release
	$(PYTHON) bench/bench.py

## soak: `serve` runs the job SOAK_RUNS times (default 50) with faults and churn;
## every run exact, memory and open files flat
soak: py-deps
	$(CARGO) build
	$(PYTHON) bench/soak.py

## fuzz: libFuzzer over the response decoders, the job-file parser and the import readers,
## FUZZ_SECONDS each (default 60). The targets are built on the dependencies the tests
## built, with libFuzzer's coverage in the workspace's own crates (fuzz/rustc-sancov;
## stable Rust, no cargo fuzz). Each starts from seeds: the real WeChat answers of
## tests/fixtures/wechat (status 200), the job files of jobs/ and README.md, the
## exports of fuzz/seeds/imports and the broken ones of tests/fixtures/imports. What it
## finds new stays in fuzz/corpus/, a crash in fuzz/artifacts/.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := decoders job_file imports
fuzz:
	RUSTC_WORKSPACE_WRAPPER=$(CURDIR)/fuzz/rustc-sancov $(CARGO) build -p unionsnap-fuzz --bins
	@mkdir -p $(addprefix fuzz/corpus/,$(FUZZ_TARGETS)) $(addprefix fuzz/artifacts/,$(FUZZ_TARGETS))
	@for f in tests/fixtures/wechat/*/*.json; do \
		{ printf '\000\000'; cat "$$f"; } > fuzz/corpus/decoders/seed-$$(basename "$$f"); done
	@cp jobs/demo.toml fuzz/corpus/job_file/seed-demo.toml
	@awk '/^```toml/ { n++; out = "fuzz/corpus/job_file/seed-readme-" n ".toml"; next } \
		/^```/ { out = "" } out { print > out }' README.md
	@cp fuzz/seeds/imports/* fuzz/corpus/imports/
	@for f in tests/fixtures/imports/*; do \
		case "$$f" in *.md) ;; *) cp "$$f" fuzz/corpus/imports/seed-$$(basename "$$f");; esac; done
	@for target in $(FUZZ_TARGETS); do \
		$${CARGO_TARGET_DIR:-target}/debug/$$target -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
			-artifact_prefix=fuzz/artifacts/$$target/ fuzz/corpus/$$target || exit 1; \
	done
