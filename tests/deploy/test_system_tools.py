"""The system tools the tests need: one list (.ci/system-tools) that the installer
`make test` runs and the tests' skip helper both read. A missing tool skips its tests with
the command that installs it, outside CI; in CI it fails them."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.support.system import ROOT, read_manifest, require

INSTALLER = ROOT / ".ci" / "install-system-tools"


def test_the_list_names_every_tool_the_tests_ask_for() -> None:
    tools = read_manifest()
    asked = {name for path in (ROOT / "tests").rglob("*.py") if "node_modules" not in path.parts
             for name in re.findall(r'require\("([a-z-]+)"', path.read_text())}
    assert asked >= {"postgresql", "chromium", "nginx", "docker-compose", "nodejs", "npm"}
    assert set(tools) == asked
    for tool in tools.values():
        assert tool.probes and tool.installer.split(":")[0] in {"apt", "script"}
        if tool.installer.startswith("script:"):
            assert (ROOT / tool.installer.removeprefix("script:")).is_file()
    assert tools["chromium"].install_command() == "sudo apt-get install -y chromium"
    assert tools["docker-compose"].install_command() == "sudo bash .ci/install-compose"


def test_ci_runs_make_test_which_installs_them() -> None:
    """CI and a newcomer's `make test` set the machine up by the same script."""
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci and "apt-get" not in ci
    makefile = (ROOT / "Makefile").read_text()
    assert "bash .ci/install-system-tools" in makefile
    test_rule = next(line for line in makefile.splitlines() if line.startswith("test:"))
    assert "system-tools" in test_rule.split()


def _manifest(tmp_path: Path, probe: str, installer: str = "apt:chromium") -> Path:
    path = tmp_path / "system-tools"
    path.write_text(f"# name installer probes\nchromium  {installer}  {probe}\n")
    return path


def test_a_missing_tool_skips_with_the_command_that_installs_it(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path, str(tmp_path / "no-such-browser"))
    with pytest.raises(pytest.skip.Exception) as skipped:
        require("chromium", manifest=manifest, ci=False)
    assert "`sudo apt-get install -y chromium`" in str(skipped.value)


def test_in_ci_a_missing_tool_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = _manifest(tmp_path, "no-such-browser-command")
    monkeypatch.setenv("PARLEY_CI", "1")
    with pytest.raises(pytest.fail.Exception, match="chromium is not installed"):
        require("chromium", manifest=manifest)


def test_a_tool_is_found_by_command_or_by_glob(tmp_path: Path) -> None:
    tool = tmp_path / "lib" / "15" / "bin" / "chromium"
    tool.parent.mkdir(parents=True)
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    assert require("chromium", manifest=_manifest(tmp_path, f"{tmp_path}/lib/*/bin/chromium"),
                   ci=True) == str(tool)
    assert require("chromium", manifest=_manifest(tmp_path, "sh"), ci=True).endswith("/sh")


def _run_installer(manifest: Path, *names: str, **env: str
                   ) -> subprocess.CompletedProcess[str]:
    """The installer as a developer's shell runs it (CI's PARLEY_CI left out unless given),
    for the tools `names` (all when none)."""
    base = {k: v for k, v in os.environ.items() if k not in {"PARLEY_CI",
                                                             "PARLEY_SYSTEM_INSTALL"}}
    return subprocess.run(["bash", str(INSTALLER), *names], capture_output=True, text=True,
                          env={**base, "PARLEY_SYSTEM_TOOLS": str(manifest), **env},
                          timeout=60)


def test_the_installer_leaves_a_machine_that_has_everything_alone(tmp_path: Path) -> None:
    result = _run_installer(_manifest(tmp_path, "sh", installer="apt:no-such-package"))
    assert result.returncode == 0 and not result.stdout + result.stderr


def test_where_it_may_not_install_it_names_what_is_missing(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path, "no-such-browser-command")
    result = _run_installer(manifest, PARLEY_SYSTEM_INSTALL="no")
    assert result.returncode == 0
    assert "chromium not installed" in result.stderr and "skip" in result.stderr
    in_ci = _run_installer(manifest, PARLEY_SYSTEM_INSTALL="no", PARLEY_CI="1")
    assert in_ci.returncode == 1 and "cannot install chromium" in in_ci.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="installing system tools takes root")
def test_as_root_it_installs_what_is_missing(tmp_path: Path) -> None:
    tool = tmp_path / "bin" / "chromium"
    script = tmp_path / "install.sh"
    script.write_text(f"mkdir -p {tool.parent} && printf '#!/bin/sh\\n' > {tool} "
                      f"&& chmod +x {tool}\n")
    manifest = _manifest(tmp_path, str(tool), installer=f"script:{script}")
    first = _run_installer(manifest)
    assert first.returncode == 0, first.stderr
    assert "Installing the system tools the tests need: chromium" in first.stdout
    assert require("chromium", manifest=manifest, ci=True) == str(tool)
    again = _run_installer(manifest)
    assert again.returncode == 0 and not again.stdout  # found now: nothing to do



def test_named_tools_only_are_considered(tmp_path: Path) -> None:
    """`make run` passes Apertium's names: the other missing tools are not its business."""
    manifest = tmp_path / "system-tools"
    manifest.write_text("chromium apt:chromium no-such-browser-command\n"
                        "apertium apt:apertium no-such-apertium-command\n")
    result = _run_installer(manifest, "apertium", PARLEY_SYSTEM_INSTALL="no")
    assert result.returncode == 0
    assert "apertium not installed" in result.stderr and "chromium" not in result.stderr
    makefile = (ROOT / "Makefile").read_text()
    run_rule = makefile.split("\nrun: install\n")[1].split("\n\n")[0]
    assert "bash .ci/install-system-tools $(TRANSLATION_TOOLS)" in run_rule
