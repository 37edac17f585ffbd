# Two commands: `make run` (install, ingest seeds/, open the chat UI) and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# llama.cpp compiles on install, for this CPU (-march=native). Some virtual machines report AMX but do
# not let a process use it: a native build then dies with a general protection fault on the first prompt
# (seen on this project's machine). Where the CPU reports AMX, build without it; the rest stays native.
NO_AMX := $(if $(shell grep -qsw amx_tile /proc/cpuinfo && echo yes),-mno-amx-tile -mno-amx-int8 -mno-amx-bf16)

.PHONY: install run test test-fast lint bench browser clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0  # the CPU build; must come before sentence-transformers
	CFLAGS="$(NO_AMX) $$CFLAGS" CXXFLAGS="$(NO_AMX) $$CXXFLAGS" $(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

run: install
	$(BIN)/rag ingest seeds/
	$(BIN)/rag serve

browser:
	@test -x /usr/lib/chromium/chromium || (apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null)

test: install browser
	$(BIN)/python -m pytest -q -m "not slow"

test-fast: install
	$(BIN)/python -m pytest -q -m "not real and not browser and not slow"

lint: install
	$(BIN)/ruff check rag ui eval tests bench
	$(BIN)/mypy rag ui eval tests bench

bench: install
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .rag
