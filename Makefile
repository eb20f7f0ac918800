# The two commands of the README: `make demo` and `make test`. Both set themselves up.
VENV ?= .venv
BIN := $(VENV)/bin
SRC := src tests bench fuzz

.PHONY: setup setup-test demo test lint typecheck unit soak bench fuzz clean

setup:
	@scripts/bootstrap.sh $(VENV)

setup-test:
	@scripts/bootstrap.sh $(VENV) test

demo: setup
	$(BIN)/simbankd demo

lint: setup-test
	$(BIN)/ruff check $(SRC)
	$(BIN)/ruff format --check $(SRC)

typecheck: setup
	$(BIN)/mypy

unit: setup
	$(BIN)/pytest tests/unit -q

test: lint typecheck
	$(BIN)/pytest -q

# The long runs of issue 6, one after the other, with their figures printed: the 30-minute
# fault soak (SIMBANK_SOAK_S), 1,000 SIGKILLs (SIMBANK_KILLS) and the 30-second MQTT flood.
# Their own directory: pytest's default one is pruned by any other pytest run meanwhile.
soak: setup
	$(BIN)/pytest -q -s -n 0 -m soak --timeout 7200 --basetemp=.soak

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
