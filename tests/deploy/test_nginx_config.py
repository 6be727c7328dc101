"""The ingress config: compose's copy is the template rendered (no drift), and Debian's
nginx accepts it (`nginx -t`), with the compose service names resolving to 127.0.0.1 in a
private mount namespace so the host's /etc/hosts is untouched."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from deploy.nginx_config import COMPOSE_CONF, compose_conf, local_conf
from tests.deploy.tools import nginx_binary


def test_compose_conf_is_the_rendered_template() -> None:
    assert COMPOSE_CONF.read_text() == compose_conf(), \
        "deploy/nginx/compose.conf is stale: run python -m deploy.nginx_config"


def test_nginx_accepts_the_compose_config(tmp_path: Path) -> None:
    nginx = nginx_binary()
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost agent auth history\n")
    test = f"{nginx} -t -q -c {COMPOSE_CONF}"
    if os.geteuid() == 0 and shutil.which("unshare"):
        command = ["unshare", "--mount", "sh", "-c",
                   f"mount --bind {hosts} /etc/hosts && {test}"]
    else:  # the same config with the names replaced by the address they would resolve to
        conf = tmp_path / "nginx.conf"
        text = compose_conf()
        for name in ("agent", "auth", "history"):
            text = text.replace(f"server {name}:", "server 127.0.0.1:")
        conf.write_text(text)
        command = [nginx, "-t", "-q", "-c", str(conf)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_nginx_rejects_a_broken_config(tmp_path: Path) -> None:
    """The check above can fail: a config missing an upstream is refused."""
    conf = tmp_path / "nginx.conf"
    text = local_conf(tmp_path, listen="127.0.0.1:18999", agents=["127.0.0.1:1"],
                      auth="127.0.0.1:2", history="127.0.0.1:3")
    conf.write_text(text.replace("upstream history", "upstream elsewhere"))
    result = subprocess.run([nginx_binary(), "-t", "-q", "-c", str(conf), "-p",
                             str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "host not found in upstream" in result.stderr
