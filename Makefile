# The two commands: `make serve` and `make test`. Everything else is what they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
COMUNICA := tools/comunica/node_modules/.installed-stamp

.PHONY: install build serve test lint bench clean debian-packages comunica

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

# What the tests take from Debian (debian-packages): Chromium (never a downloaded browser) and a Japanese font for the browser
# tests; Virtuoso 7 as a real remote store (tests/test_remote.py starts its own instance on loopback, and
# nothing here starts the package's service); nginx as a real proxy in front of lodpub or a store (tests start
# their own instance on loopback; the package's service is stopped like Virtuoso's), and openssl for the
# certificate tests/test_fronts.py makes for it; node and npm for Comunica (tests/test_federation.py).
debian-packages:
	@if ! command -v chromium >/dev/null || ! fc-list 2>/dev/null | grep -qi ipa || ! command -v virtuoso-t >/dev/null \
	    || [ ! -x /usr/sbin/nginx ] || ! command -v openssl >/dev/null || ! command -v npm >/dev/null; then \
	  apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-ipafont-gothic \
	    virtuoso-opensource nginx openssl nodejs npm >/dev/null; \
	  (service virtuoso-opensource-7 stop >/dev/null 2>&1 || true); \
	  (service nginx stop >/dev/null 2>&1 || true); \
	fi

# Comunica, the federating client tests/test_federation.py runs (npm, pinned by tools/comunica/package-lock.json;
# installed once, again only when the lock changes).
$(COMUNICA): tools/comunica/package.json tools/comunica/package-lock.json
	npm ci --prefix tools/comunica --no-audit --no-fund --loglevel=error
	touch $@

comunica: debian-packages $(COMUNICA)

test: install lint debian-packages comunica
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python bench/build_bench.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis tools/comunica/node_modules
