"""The example plugin, pip-installed, shows up in /tools and is called in a turn."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.serve import parley_serve, sign_up

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "plugin-example"


def test_installed_plugin_is_discovered_and_called(tmp_path: Path, redis_url: str) -> None:
    site = tmp_path / "site"
    # A real pip install of the example's folder, into a folder of its own so the
    # project's environment is left as it was.
    uv = Path(sys.executable).with_name("uv")
    subprocess.run([str(uv), "pip", "install", "--quiet", "--python", sys.executable,
                    "--no-deps", "--target", str(site), str(EXAMPLE)], check=True)
    script = tmp_path / "script.json"
    script.write_text(json.dumps([{"route": {
        "convert": {"tool_calls": [{"name": "convert_units",
                                    "args": {"value": 5, "from_unit": "km", "to_unit": "mi"}}]},
        "log": {"tool_calls": [{"name": "log_measurement",
                                "args": {"name": "desk", "value": 120, "unit": "cm"}}]},
        "*": "Ask me to convert something."}}]))
    measurements = tmp_path / "measurements.csv"
    env = {"PARLEY_LLM": "fake", "PARLEY_FAKE_SCRIPT": str(script),
           "PARLEY_REDIS_URL": redis_url, "PARLEY_EXAMPLE_LOG": str(measurements),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(site),
                                                       os.environ.get("PYTHONPATH")]))}
    with parley_serve(tmp_path, env) as served:
        me = sign_up(served.url, "plugin-user")
        tools = {t["name"]: t for t in httpx.get(f"{served.url}/tools", headers=me).json()}
        turn = httpx.post(f"{served.url}/chat", json={"message": "convert 5 km to miles"},
                          headers=me, timeout=30).json()
        weather_agent = next(a for a in httpx.get(f"{served.url}/agents", headers=me).json()
                             if a["name"] == "weather")
        # The plugin's other tool writes a file, so it waits for the user's approval.
        paused = httpx.post(f"{served.url}/chat", json={"message": "log my desk"},
                            headers=me, timeout=30).json()
        assert [c["tool"] for c in paused["approval"]["calls"]] == ["log_measurement"]
        assert not measurements.exists()
        approved = httpx.post(f"{served.url}{paused['approval']['decide']}",
                              json={"decision": "approve"}, headers=me, timeout=30).json()
        assert measurements.read_text().strip() == "desk,120,cm"
        assert "saved desk: 120 cm" in approved["message"]["content"]
    plugin = tools["convert_units"]
    assert plugin["source"] == "parley-plugin-example"
    assert set(plugin["args_schema"]["properties"]) == {"value", "from_unit", "to_unit"}
    assert [(c["tool"], c["status"]) for c in turn["tool_calls"]] == [("convert_units", "ok")]
    assert "5 km = 3.107 mi" in turn["tool_calls"][0]["output"]
    assert "3.107 mi" in turn["message"]["content"]
    assert "convert_units" not in weather_agent["tools"]  # specialists keep their allow-list
