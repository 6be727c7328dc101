"""The ingress config, rendered from one template for both distributed shapes: compose
(service names; the committed `deploy/nginx/compose.conf`) and `make run-distributed`
(127.0.0.1 ports). `python -m deploy.nginx_config` rewrites the compose file."""

from __future__ import annotations

from pathlib import Path
from string import Template

HERE = Path(__file__).parent / "nginx"
TEMPLATE = HERE / "nginx.conf.template"
COMPOSE_CONF = HERE / "compose.conf"


# Docker's embedded DNS server, inside every container on a user-defined network.
DOCKER_DNS = "127.0.0.11"


def fixed_upstreams(agents: list[str], auth: str, history: str) -> dict[str, str]:
    """Addresses known when nginx starts (`make run-distributed`): upstream groups, with a
    replica that fails left alone for 10 s and connections kept open to the agents."""
    servers = "\n".join(f"        server {a} max_fails=1 fail_timeout=10s;" for a in agents)
    return {
        "UPSTREAMS": (f"    upstream agents {{\n{servers}\n        keepalive 16;\n    }}\n"
                      f"    upstream auth {{ server {auth}; }}\n"
                      f"    upstream history {{ server {history}; }}\n"),
        "PASS_AGENTS": "proxy_pass http://agents;",
        "PASS_AUTH": "proxy_pass http://auth;",
        "PASS_HISTORY": "proxy_pass http://history;",
    }


def resolved_upstreams(agents: str, auth: str, history: str,
                       resolver: str = DOCKER_DNS) -> dict[str, str]:
    """Service names asked of the resolver again every 5 s (compose): nginx resolves an
    upstream group's names once, at start, so a container that comes back with a new
    address (a restarted history or agent container) would never be found again, and a
    replica that is gone is dropped from the name's addresses within 5 s."""
    def proxy(name: str, address: str) -> str:
        # A variable in proxy_pass makes nginx resolve the name when it is used.
        return f"set ${name}_upstream {address}; proxy_pass http://${name}_upstream;"

    return {
        "UPSTREAMS": f"    resolver {resolver} valid=5s ipv6=off;\n"
                     "    resolver_timeout 2s;\n",
        "PASS_AGENTS": proxy("agents", agents),
        "PASS_AUTH": proxy("auth", auth),
        "PASS_HISTORY": proxy("history", history),
    }


def render(*, listen: str, upstreams: dict[str, str], pid: str, error_log: str,
           access_log: str, temp: str, workers: str = "1") -> str:
    # safe_substitute: nginx's own `$host` and friends stay as they are.
    text = Template(TEMPLATE.read_text()).safe_substitute(
        LISTEN=listen, PID=pid, ERROR_LOG=error_log, ACCESS_LOG=access_log, TEMP=temp,
        WORKERS=workers, **upstreams)
    if "${" in text:
        raise ValueError(f"unfilled placeholder in {TEMPLATE.name}: {text[text.index('${'):][:40]}")
    return text


def compose_conf() -> str:
    """For the unprivileged nginx image in compose: port 8080, logs to the container's
    output, scratch files in /tmp. Docker's DNS gives `agent` one address per replica,
    asked again as containers come and go."""
    return ("# Rendered from nginx.conf.template by `python -m deploy.nginx_config`: "
            "edit the template.\n" + render(
                listen="8080",
                upstreams=resolved_upstreams("agent:8000", "auth:8000", "history:8000"),
                pid="/tmp/nginx.pid", error_log="/dev/stderr", access_log="/dev/stdout",
                temp="/tmp", workers="auto"))


def local_conf(prefix: Path, *, listen: str, agents: list[str], auth: str,
               history: str) -> str:
    return render(listen=listen, upstreams=fixed_upstreams(agents, auth, history),
                  pid=f"{prefix}/nginx.pid", error_log=f"{prefix}/error.log",
                  access_log=f"{prefix}/access.log", temp=str(prefix))


if __name__ == "__main__":  # pragma: no cover
    COMPOSE_CONF.write_text(compose_conf())
    print(f"wrote {COMPOSE_CONF}")
