"""The chat page through nginx, as `make run-distributed` runs it: the page and its
streams from two agent servers, /auth and /history from their own services, a report's
chart made by one replica and fetched through the other."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deploy.run_distributed import Topology, bring_up
from tests.server.web.pages import api_json, last_answer, send, sign_up, thread_titles, wait_answer
from tests.support.browser import chromium

pytestmark = pytest.mark.skipif(shutil.which("nginx") is None and
                                not Path("/usr/sbin/nginx").exists(),
                                reason="nginx is not installed (.ci/run installs nginx-light)")


@pytest.fixture(scope="module")
def topology() -> Iterator[Topology]:
    root = Path(tempfile.mkdtemp(prefix="parley-page-"))
    root.chmod(0o755)  # PostgreSQL runs as its own user and must reach its folder
    script = root / "script.json"
    script.write_text(json.dumps([{"route": {
        "report": {"tool_calls": [{"name": "usage_report", "args": {"period_days": 7}}]},
        "*": {"echo": True}}}]))
    topo = bring_up(root / "run", agent_env={"PARLEY_LLM": "fake",
                                             "PARLEY_FAKE_SCRIPT": str(script)})
    try:
        yield topo
    finally:
        topo.stop()
        shutil.rmtree(root, ignore_errors=True)


def chart_loaded(page: Any, answer: Any) -> str:
    chart = answer.locator("figure.report img").first
    page.wait_for_function("img => img.complete", arg=chart.element_handle())
    assert page.evaluate("img => img.naturalWidth", chart.element_handle()) > 0
    return str(chart.get_attribute("src"))


# Bringing up PostgreSQL, Redis, auth, history and two agent servers takes a while on two
# shared cores; the module's one test carries that wait.
@pytest.mark.timeout(480)
def test_the_chat_page_through_nginx(topology: Topology) -> None:
    url = topology.url
    with chromium() as browser:
        context = browser.new_context()
        page = context.new_page()
        page.set_default_timeout(30_000)
        sign_up(page, url, "ada")
        send(page, "hello through nginx")
        wait_answer(page, "You said: hello through nginx")
        thread = page.url.split("#/t/")[1]
        send(page, "show my report")
        answer = wait_answer(page, "Here is what I found")
        assert answer.locator(".tool-card .tool-name").inner_text() == "usage_report"
        # Each replica is asked in turn: the chart loads whichever one wrote it.
        charts = {chart_loaded(page, answer)}
        for _ in range(3):
            page.reload()
            page.wait_for_selector("body[data-ready=true]")
            charts.add(chart_loaded(page, last_answer(page)))
        assert len(charts) == 1

        # History, through nginx to its own service, has the thread and both turns.
        assert thread_titles(page) == ["hello through nginx"]
        log = page.get_by_role("log")
        assert "You said: hello through nginx" in log.inner_text()
        page.get_by_role("button", name="Rename “hello through nginx”").click()
        title = page.get_by_label("New title for “hello through nginx”")
        title.fill("Through nginx")
        title.press("Enter")
        page.get_by_role("link", name="Through nginx").wait_for()

        page.get_by_role("link", name="Settings").click()
        page.get_by_label("Preferred language").fill("French")
        page.get_by_role("button", name="Save").click()
        page.get_by_text("Saved. The next answer").wait_for()
        page.get_by_role("link", name="Memories").click()
        page.get_by_role("heading", name="Memories", level=1).wait_for()
        page.locator("p[role=status]").filter(has_text="memor").first.wait_for()

        page.get_by_role("button", name="Delete “Through nginx”").click()
        page.get_by_role("dialog").get_by_role("button", name="Delete").click()
        page.get_by_text("No conversations yet.").wait_for()
        me = api_json(page, "/auth/me")
        context.close()
    assert thread
    assert me["username"] == "ada" and me["preferred_language"] == "French"
