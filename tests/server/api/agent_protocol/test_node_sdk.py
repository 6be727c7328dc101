"""LangGraph's JavaScript SDK (`@langchain/langgraph-sdk`, with its React `useStream`
hook) against a real Parley, run by Node's own test runner in tests/node/ (installed by
`make node-deps`, which `make test` runs)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support.agent_protocol import Server
from tests.support.cutting_proxy import cutting_proxy
from tests.support.system import missing, require

NODE_TESTS = Path(__file__).parents[3] / "node"


@pytest.mark.timeout(300)
def test_the_javascript_sdk_and_use_stream_work_unchanged(ap_server: Server) -> None:
    require("nodejs")
    require("npm")
    if not (NODE_TESTS / "node_modules" / "@langchain" / "langgraph-sdk").is_dir():
        missing("the Node test's packages are not installed: `make node-deps` installs them")
    with cutting_proxy(ap_server.url, cut_after=2) as proxy:
        done = subprocess.run(
            ["npm", "test", "--silent"], cwd=NODE_TESTS, capture_output=True, text=True,
            timeout=240, env={**os.environ, "PARLEY_URL": ap_server.url,
                              "PARLEY_API_KEY": ap_server.keys["ada"],
                              "PARLEY_OTHER_KEY": ap_server.keys["bob"],
                              "PARLEY_CUT_URL": proxy.url})
    assert done.returncode == 0, done.stdout + done.stderr
    assert proxy.cuts == 1  # the resumable stream really was cut, and came back
    assert "# fail 0" in done.stdout


def test_the_node_lock_names_no_download_address() -> None:
    """Each machine installs from the registry its own npm is set to: the committed lock
    records versions and integrity hashes, never where the packages came from."""
    assert "omit-lockfile-registry-resolved=true" in (NODE_TESTS / ".npmrc").read_text()
    lock = (NODE_TESTS / "package-lock.json").read_text()
    assert '"resolved"' not in lock and "registry." not in lock
    assert '"integrity"' in lock
