# Two commands set everything up on a fresh machine with Python 3.11 and pip:
#   make run    the whole stack on http://127.0.0.1:8080 (embedded Redis + mock when needed)
#   make test   the test suite (starts its own redis-server)
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test test-fast lint bench bench-peers bench-batch bench-scale bench-memory clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/llm-gateway up

test: $(STAMP)
	sh scripts/ensure-chromium.sh
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest

test-fast: $(STAMP)
	$(BIN)/python -m pytest tests/unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/bench_gateway.py

# A 50,000-line batch: accept time, validation and expansion rates, Redis memory per line,
# interactive latency while it runs against idle (bench/bench_batch.py).
bench-batch: $(STAMP)
	$(BIN)/python bench/bench_batch.py

# The status and poll paths on an empty Redis and on one holding two million more keys (ratios).
bench-scale: $(STAMP)
	$(BIN)/python bench/bench_scale.py

# Bytes of Redis per finished job, by kind (sync, streamed, async, batch line) and prompt size.
bench-memory: $(STAMP)
	$(BIN)/python bench/bench_memory.py

# Portkey (npm) and a LiteLLM proxy (its own venv) are installed under var/peers on first use.
bench-peers: $(STAMP)
	$(BIN)/python bench/bench_peers.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
