"""deploy/k8s: every manifest valid against the Kubernetes API schemas (kubernetes-validate,
offline, strict), and the pieces fit: probes, non-root pods, Services selecting Deployments,
the autoscaler and the Ingress pointing at what exists, secrets only by reference."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.tools import ROOT, venv_tool

MANIFESTS = sorted((ROOT / "deploy/k8s").glob("*.yaml"))
KUBERNETES_VERSION = "1.31.0"


def resources() -> list[dict]:
    return [doc for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text()) if doc]


def of_kind(kind: str) -> dict[str, dict]:
    return {r["metadata"]["name"]: r for r in resources() if r["kind"] == kind}


def test_manifests_are_valid_kubernetes() -> None:
    result = subprocess.run([venv_tool("kubernetes-validate"), "--strict", "--quiet",
                             "-k", KUBERNETES_VERSION, *map(str, MANIFESTS)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", ["agent", "auth", "history"])
def test_service_pods(name: str) -> None:
    deployment = of_kind("Deployment")[name]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    (container,) = pod["containers"]
    assert container["image"] == f"parley-{name}:latest"
    prefix = "" if name == "agent" else f"/{name}"
    assert container["readinessProbe"]["httpGet"]["path"] == f"{prefix}/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == f"{prefix}/healthz"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    # Secrets by reference only; nothing secret in plain env values.
    for variable in container.get("env", []):
        assert "value" not in variable or "KEY" not in variable["name"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    service = of_kind("Service")[name]
    assert service["spec"]["selector"].items() <= labels.items()


def test_autoscaler_and_ingress_target_what_exists() -> None:
    hpa = of_kind("HorizontalPodAutoscaler")["agent"]
    assert hpa["spec"]["scaleTargetRef"]["name"] in of_kind("Deployment")
    assert hpa["spec"]["minReplicas"] >= 2
    ingress = of_kind("Ingress")["parley"]
    routes = {p["path"]: p["backend"]["service"]["name"]
              for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]}
    assert routes == {"/auth/": "auth", "/history": "history", "/": "agent"}
    assert ingress["metadata"]["annotations"][
        "nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    config = of_kind("ConfigMap")["parley-config"]["data"]
    assert config["PARLEY_MEMORY_ENGINE"] == "redis"
    assert not [k for k in config if "PASSWORD" in k or "API_KEY" in k]


def test_no_secret_objects_are_committed() -> None:
    assert "Secret" not in {r["kind"] for r in resources()}
    assert all(Path(p).suffix == ".yaml" for p in MANIFESTS)


def test_every_configmap_setting_is_read_by_a_service() -> None:
    from tests.deploy.test_compose import settings_variables

    known = set().union(*(settings_variables(s) for s in ("agent", "auth", "history")))
    data = of_kind("ConfigMap")["parley-config"]["data"]
    given = {k for k in data if k.startswith("PARLEY_")}
    assert given and given <= known, given - known
    assert data["PARLEY_SECURE_COOKIES"] == "true"  # the Ingress serves the login page
