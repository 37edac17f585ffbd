# Two commands: `make run` (install, ingest seeds/, open the chat UI) and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# llama.cpp compiles on install. Its default, -march=native, uses every instruction the CPU reports, and
# some virtual machines report AMX without letting a process use it: the model then dies with a general
# protection fault (seen on this project's machine). On x86-64 build for AVX2, which any x86-64 CPU of
# the last ten years runs; elsewhere keep llama.cpp's defaults.
LLAMA_CMAKE := $(if $(filter x86_64,$(shell uname -m)),-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON \
	-DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON)

.PHONY: install run test test-fast lint bench browser clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0  # the CPU build; must come before sentence-transformers
	CMAKE_ARGS="$(LLAMA_CMAKE) $$CMAKE_ARGS" $(BIN)/pip install -q -c constraints.txt -e '.[dev]'
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
	$(BIN)/mypy rag ui eval

bench: install
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .rag
