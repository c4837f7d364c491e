# The README's two commands: `make demo` and `make test`. Both set up .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OUT ?= results/spots3d

.PHONY: setup bytecode demo test test-fast lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade --quiet pip
	$(BIN)/pip install --quiet -e '.[all,dev]'
	touch $(STAMP)

# bakeoff's own modules compiled to bytecode: pip compiles a regular install but not an editable one, and
# where PYTHONDONTWRITEBYTECODE is set (this machine, CI) every process that imports bakeoff (a run, a SLURM job,
# a Ray worker, each CLI call of the tests) would compile them again, ~0.5 s on 2 cores. Only changed files are
# compiled (0.1 s when none); a file edited later is compiled in memory until the next make, as without this.
bytecode: $(STAMP)
	$(BIN)/python -m compileall -q src/bakeoff

demo: bytecode
	$(BIN)/bakeoff run examples/spots3d.yaml --out $(OUT)

# two pytest workers (pytest-xdist) on 2 cores: most tests wait on subprocesses, Ray, SLURM or a browser part
# of the time; the tests that drive SLURM, Ray or several processes run in one worker, one after another
# (tests/conftest.py); TEST_WORKERS=0 runs everything in this process
TEST_WORKERS ?= 2
test: bytecode
	$(BIN)/python -m pytest -q $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadgroup)

# the fast loop (under 2 minutes on 2 cores): every package's own tests without the slow and engine ones
# (markers in tests/conftest.py): config, the layer contract, data, models, losses, tasks, train, stats,
# the bad-input catalogue through the CLI, property tests, report tables; `make test` runs everything
test-fast: bytecode
	$(BIN)/python -m pytest -q -x -m "not slow and not engine and not gpu" tests/test_config.py \
		tests/test_layers.py tests/data tests/models tests/test_losses.py tests/tasks tests/train tests/stats \
		tests/robustness/test_catalogue.py tests/robustness/test_properties.py tests/report/test_tables.py \
		tests/report/test_methods.py tests/report/test_figures.py tests/report/test_figsave.py tests/test_common_checks.py \
		tests/instances/test_matching.py

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

bench: bytecode
	rm -f bench_summary.jsonl
	BENCH_SUMMARY=bench_summary.jsonl $(BIN)/python benchmarks/bench_train_throughput.py
	BENCH_SUMMARY=bench_summary.jsonl $(BIN)/python benchmarks/bench_timm_throughput.py
	BENCH_SUMMARY=bench_summary.jsonl $(BIN)/python benchmarks/bench_seg_throughput.py
	$(BIN)/python benchmarks/bench_study_overhead.py demo
	$(BIN)/python benchmarks/bench_study_overhead.py seg3d --set protocol.epochs=10
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python benchmarks/bench_data_scale.py --n 1200 20000
	$(BIN)/python benchmarks/bench_cache_formats.py
	$(BIN)/python benchmarks/bench_stats.py
	$(BIN)/python benchmarks/bench_calibration.py --sims 1000
	$(BIN)/python benchmarks/bench_table.py bench_summary.jsonl

clean:
	rm -rf $(VENV) results
