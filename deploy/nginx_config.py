"""The ingress config, rendered from one template for both distributed shapes: compose
(service names; the committed `deploy/nginx/compose.conf`) and `make run-distributed`
(127.0.0.1 ports). `python -m deploy.nginx_config` rewrites the compose file."""

from __future__ import annotations

from pathlib import Path
from string import Template

HERE = Path(__file__).parent / "nginx"
TEMPLATE = HERE / "nginx.conf.template"
COMPOSE_CONF = HERE / "compose.conf"


def render(*, listen: str, agents: list[str], auth: str, history: str, pid: str,
           error_log: str, access_log: str, temp: str, workers: str = "1") -> str:
    servers = "\n".join(f"        server {a} max_fails=1 fail_timeout=10s;" for a in agents)
    # safe_substitute: nginx's own `$host` and friends stay as they are.
    text = Template(TEMPLATE.read_text()).safe_substitute(
        LISTEN=listen, AGENT_SERVERS=servers, AUTH=auth, HISTORY=history, PID=pid,
        ERROR_LOG=error_log, ACCESS_LOG=access_log, TEMP=temp, WORKERS=workers)
    if "${" in text:
        raise ValueError(f"unfilled placeholder in {TEMPLATE.name}: {text[text.index('${'):][:40]}")
    return text


def compose_conf() -> str:
    """For the unprivileged nginx image in compose: port 8080, logs to the container's
    output, scratch files in /tmp. Docker's DNS gives `agent` one address per replica."""
    return ("# Rendered from nginx.conf.template by `python -m deploy.nginx_config`: "
            "edit the template.\n" + render(
                listen="8080", agents=["agent:8000"], auth="auth:8000", history="history:8000",
                pid="/tmp/nginx.pid", error_log="/dev/stderr", access_log="/dev/stdout",
                temp="/tmp", workers="auto"))


def local_conf(prefix: Path, *, listen: str, agents: list[str], auth: str,
               history: str) -> str:
    return render(listen=listen, agents=agents, auth=auth, history=history,
                  pid=f"{prefix}/nginx.pid", error_log=f"{prefix}/error.log",
                  access_log=f"{prefix}/access.log", temp=str(prefix))


if __name__ == "__main__":  # pragma: no cover
    COMPOSE_CONF.write_text(compose_conf())
    print(f"wrote {COMPOSE_CONF}")
