# The two commands: `make serve` and `make test`. Everything else is what they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install build serve test lint bench clean

# A virtual environment with lodpub and its test tools, pinned by constraints.txt.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

install: $(STAMP)

# Rebuild dist/ from the tables in data/ (validated; nothing is written if invalid).
build: install
	$(BIN)/lodpub build

serve: build
	$(BIN)/lodpub serve

lint: install
	$(BIN)/ruff check src tests bench

test: install lint
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python bench/build_bench.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
