"""compose.yaml: valid against the Compose spec, accepted by a real `docker compose config`
(Debian's docker-compose plugin; no engine needed), and wired as the README says."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.deploy.tools import ROOT, compose_binary, venv_tool

COMPOSE = ROOT / "compose.yaml"


def compose(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    # A clean environment: only what the test gives, so a developer's shell changes nothing.
    base = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run([compose_binary(), "--project-directory", str(ROOT), "-f",
                           str(COMPOSE), *args], capture_output=True, text=True,
                          env={**base, **(env or {})}, timeout=60)


@pytest.fixture(scope="module")
def config() -> dict:
    result = compose("--profile", "observability", "config", "--format", "json",
                     env={"POSTGRES_PASSWORD": "s3cret", "PARLEY_LLM_API_KEY": "sk-test"})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_compose_matches_the_compose_spec() -> None:
    result = subprocess.run([venv_tool("check-jsonschema"), "--builtin-schema",
                             "vendor.compose-spec", str(COMPOSE)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_docker_compose_config_accepts_it() -> None:
    result = compose("config", "-q", env={"POSTGRES_PASSWORD": "s3cret"})
    assert result.returncode == 0, result.stderr


def test_a_missing_database_password_is_a_clear_error() -> None:
    result = compose("config", "-q")
    assert result.returncode != 0
    assert "POSTGRES_PASSWORD" in result.stderr and ".env.example" in result.stderr


def test_topology(config: dict) -> None:
    services = config["services"]
    assert {"nginx", "agent", "auth", "history", "redis", "postgres"} <= services.keys()
    assert services["agent"]["deploy"]["replicas"] == 2
    # Only the ingress is published: the services are reached through nginx.
    published = {name for name, s in services.items() if s.get("ports")}
    assert published == {"nginx", "prometheus", "grafana"}
    # ... on the loopback only, unless the operator says otherwise (PARLEY_HTTP_BIND).
    assert {p.get("host_ip") for name in published for p in services[name]["ports"]} \
        == {"127.0.0.1"}
    # Health-checked start order.
    for name, needs in {"nginx": {"agent", "auth", "history"},
                        "agent": {"redis", "auth"},
                        "auth": {"postgres", "redis"},
                        "history": {"postgres", "redis", "auth"}}.items():
        depends = services[name]["depends_on"]
        assert needs <= depends.keys(), name
        assert all(d["condition"] == "service_healthy" for d in depends.values()), name
    for name in ("nginx", "redis", "postgres"):
        assert services[name]["healthcheck"]["test"], name
    assert any(v["target"] == "/var/lib/postgresql/data" and v["type"] == "volume"
               for v in services["postgres"]["volumes"])


def test_shared_state_and_secrets(config: dict) -> None:
    services = config["services"]
    agent = services["agent"]["environment"]
    # Replicas share one semantic memory in Redis, not per-replica FAISS files.
    assert agent["PARLEY_MEMORY_ENGINE"] == "redis"
    assert agent["PARLEY_REDIS_URL"].startswith("redis://redis:")
    # Secrets come from the environment at run time; unset ones stay unset, not empty.
    assert agent["PARLEY_LLM_API_KEY"] == "sk-test"
    assert agent["LANGSMITH_API_KEY"] is None
    # The agent sets the playground's login cookie, so it is the one told to mark it Secure.
    assert agent["PARLEY_SECURE_COOKIES"] == "false"
    assert "s3cret" in services["auth"]["environment"]["PARLEY_AUTH_DATABASE_URL"]
    assert "POSTGRES_PASSWORD" not in agent
    nginx_conf = next(v for v in services["nginx"]["volumes"]
                      if v["target"] == "/etc/nginx/nginx.conf")
    assert nginx_conf["source"] == str(ROOT / "deploy/nginx/compose.conf")
    assert nginx_conf["read_only"] is True
    for name in ("agent", "auth", "history"):
        build = services[name]["build"]
        assert (ROOT / build["dockerfile"]).exists(), name
        assert services[name]["read_only"] is True, name


def settings_variables(service: str) -> set[str]:
    """The PARLEY_* variables the service's settings object reads."""
    from pydantic_settings import BaseSettings

    from server.settings import Settings
    from services.auth.settings import AuthSettings
    from services.history.settings import HistorySettings

    classes: dict[str, type[BaseSettings]] = {
        "agent": Settings, "auth": AuthSettings, "history": HistorySettings}
    cls = classes[service]
    prefix = cls.model_config.get("env_prefix", "")
    return {f"{prefix}{name}".upper() for name in cls.model_fields}


@pytest.mark.parametrize("service", ["agent", "auth", "history"])
def test_every_setting_given_is_one_the_service_reads(config: dict, service: str) -> None:
    # A misspelt or misplaced variable is silently ignored: the operator's setting never
    # takes effect (the cookie setting was once given to auth, which sets no cookie).
    given = {k for k in config["services"][service].get("environment", {})
             if k.startswith("PARLEY_")}
    assert given and given <= settings_variables(service), given - settings_variables(service)
