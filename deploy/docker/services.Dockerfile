# The auth and history services: one build, one final stage per service (`--target auth`,
# `--target history`), each with only the services' dependencies (no LangChain, no model).
# `make images` builds both. By hand, from the repository root:
#   docker build -f deploy/docker/services.Dockerfile --target auth -t parley-auth .
# PYTHON_IMAGE and the wheelhouse (deploy/wheels/services): as in agent.Dockerfile.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG PIP_NO_INDEX=0
COPY requirements-services.lock /tmp/
COPY deploy/wheels/services /wheels
RUN python3 -m venv /opt/parley \
 && /opt/parley/bin/pip install --no-cache-dir --disable-pip-version-check \
        --find-links /wheels --require-hashes -r /tmp/requirements-services.lock

FROM ${PYTHON_IMAGE} AS runtime
# The keys folder exists in the image, owned by the service's user, so a named volume
# mounted there starts out writable by it.
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/parley --create-home parley \
 && install -d -o parley -g parley -m 0700 /var/lib/parley/keys
COPY --from=build /opt/parley /opt/parley
COPY services /app/services
ENV PATH=/opt/parley/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    # nginx is these services' only client: trust its X-Forwarded-For, so the login
    # limiter counts the caller, not nginx.
    FORWARDED_ALLOW_IPS="*"
USER 10001:10001
WORKDIR /var/lib/parley
EXPOSE 8000

FROM runtime AS auth
ENV PARLEY_AUTH_KEYS_DIR=/var/lib/parley/keys
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/auth/healthz', timeout=4)"]
CMD ["uvicorn", "--factory", "services.auth.app:from_env", "--host", "0.0.0.0", "--port", "8000", "--proxy-headers"]

# The history API; its lifespan runs the turn-stream consumer (a consumer group, so
# replicas share the stream).
FROM runtime AS history
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/history/healthz', timeout=4)"]
CMD ["uvicorn", "--factory", "services.history.app:from_env", "--host", "0.0.0.0", "--port", "8000", "--proxy-headers"]
