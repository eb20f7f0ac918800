# The two commands of the README: `make demo` and `make test`. Both set themselves up.
VENV ?= .venv
BIN := $(VENV)/bin
SRC := src tests bench

.PHONY: setup demo test lint typecheck unit soak bench fuzz clean

setup:
	@scripts/bootstrap.sh $(VENV)

demo: setup
	$(BIN)/simbankd demo

lint: setup
	$(BIN)/ruff check $(SRC)
	$(BIN)/ruff format --check $(SRC)

typecheck: setup
	$(BIN)/mypy

unit: setup
	$(BIN)/pytest tests/unit -q

test: lint typecheck
	$(BIN)/pytest -q

soak: setup
	$(BIN)/pytest -q -m soak --timeout 3600

bench: setup
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# The long fuzz run (issue 6): atheris on the AT codec, the driver parsers and MQTT request
# decoding, FUZZ_RUNS inputs per target, one target after the other (about 20-30 min in all).
FUZZ_RUNS ?= 1000000
fuzz: setup
	$(BIN)/python -m pip install -q -e '.[dev,fuzz]'
	$(BIN)/python fuzz/run.py --runs $(FUZZ_RUNS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
