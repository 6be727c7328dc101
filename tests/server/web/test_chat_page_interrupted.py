"""Turns the chat page sees interrupted, in Debian's Chromium against a real Parley server:
a stream the network cuts, resumed; a tool call that waits for the user's approval."""

from __future__ import annotations

import time
from typing import Any

from tests.server.web.conftest import ChatServer, unique
from tests.server.web.pages import (
    api_json,
    eventually,
    last_answer,
    send,
    sign_up,
    wait_answer,
    wait_ready,
)
from tests.support.cutting_proxy import cutting_proxy


def test_a_dropped_stream_is_resumed_and_the_answer_completes(
        chat_server: ChatServer, new_page: Any) -> None:
    chat_server.gate.reached.clear()
    chat_server.gate.released.clear()
    # The page through a proxy that cuts the first /chat/stream response after its first
    # event (sse-starlette ends events with CR LF CR LF, as it ends the headers).
    with cutting_proxy(chat_server.url, cut_after=2, boundary=b"\r\n\r\n",
                       armed_by=b"POST /chat/stream") as proxy:
        page = new_page()
        user = unique("ria")
        sign_up(page, proxy.url, user)
        send(page, "Think about it slowly")
        assert chat_server.gate.reached.wait(20)
        eventually(lambda: proxy.cuts == 1, "the stream was cut")
        time.sleep(0.5)  # the page asks for the rest while the tool still waits
        chat_server.gate.released.set()
        wait_answer(page, "Done thinking.")
        log = page.get_by_role("log").inner_text()
        assert "The connection dropped" not in log
        assert log.count("Let me think about it slowly.") == 1  # no event shown twice
        thread = eventually(lambda: api_json(page, "/history/threads"), "the thread stored")
        messages = eventually(
            lambda: [m for m in api_json(
                page, f"/history?thread_id={thread[0]['id']}")["messages"]
                     if m["role"] == "assistant" and m["content"] == "Done thinking."],
            "the answer stored")
        assert len(messages) == 1  # one turn, not a second one run by the resume


def test_a_call_that_needs_approval_runs_once_approved_on_its_card(
        chat_server: ChatServer, new_page: Any) -> None:
    page = new_page()
    sign_up(page, chat_server.url, unique("cy"))
    send(page, "Send a postcard please")
    card = last_answer(page).get_by_role("group", name="Approve the call to send_postcard")
    card.wait_for()
    assert '"to": "Bob"' in card.locator("pre").inner_text()
    assert chat_server.probe.posted == []  # it waits: nothing ran
    page.wait_for_selector("article.msg.assistant[aria-busy]", state="detached")
    page.reload()  # the call still waits, from the server's checkpoint
    wait_ready(page)
    card = last_answer(page).get_by_role("group", name="Approve the call to send_postcard")
    card.get_by_role("button", name="Approve").click()
    answer = wait_answer(page, "The tool said: postcard sent to Bob")
    assert card.get_attribute("data-decided") == "approve"
    assert answer.locator(".tool-card").get_attribute("data-status") == "ok"
    assert chat_server.probe.posted == ["Bob: Hi"]

    # An edit the tool's schema refuses stays on the card; a good one runs.
    send(page, "Another postcard")
    card = last_answer(page).get_by_role("group", name="Approve the call to send_postcard")
    card.get_by_role("button", name="Edit").click()
    card.get_by_label("Arguments (JSON)").fill('{"text": "no address"}')
    card.get_by_role("button", name="Run with these").click()
    card.get_by_role("alert").get_by_text("invalid arguments for send_postcard").wait_for()
    card.get_by_label("Arguments (JSON)").fill('{"to": "Cy", "text": "Yo"}')
    card.get_by_role("button", name="Run with these").click()
    wait_answer(page, "The tool said: postcard sent to Cy")
    assert chat_server.probe.posted == ["Bob: Hi", "Cy: Yo"]
