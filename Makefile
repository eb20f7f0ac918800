# The two commands of the README: `make demo` and `make test`. Both set themselves up.
VENV ?= .venv
BIN := $(VENV)/bin
SRC := src tests bench

.PHONY: setup demo test lint typecheck unit soak bench clean

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

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
