"""The chat page in Debian's Chromium against a real Parley server (auth, history, memory,
Redis; a scripted model): what a person does there, and what the server then holds."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx

from tests.server.web.conftest import ChatServer, unique
from tests.server.web.pages import (
    api_json,
    eventually,
    last_answer,
    send,
    sign_in_here,
    sign_up,
    thread_titles,
    wait_answer,
    wait_ready,
)


def test_a_conversation_with_a_tool_then_threads_switched_renamed_deleted(
        chat_server: ChatServer, new_page: Any) -> None:
    page = new_page()
    sign_up(page, chat_server.url, unique("ada"))
    assert page.url == f"{chat_server.url}/"  # the login page came back to the chat page

    send(page, "What is the sum of 2 and 5?")
    answer = wait_answer(page, "The sum is 7.")
    card = answer.locator(".tool-card")
    assert card.get_attribute("data-status") == "ok"
    assert card.locator(".tool-name").inner_text() == "add"
    assert '"a": 2' in card.locator(".tool-args").inner_text()
    assert re.fullmatch(r"done in \d+ ms", card.locator(".tool-status").inner_text())
    assert not card.locator(".tool-output-body").is_visible()  # the output is folded
    card.get_by_text("Output").click()
    assert card.locator(".tool-output-body").inner_text().strip() == "7"
    first = page.url.split("#/t/")[1]  # the new chat became its thread

    page.get_by_role("button", name="New chat").click()
    send(page, "Hello there")
    wait_answer(page, "You said: Hello there")
    second = page.url.split("#/t/")[1]
    assert thread_titles(page) == ["Hello there", "What is the sum of 2 and 5?"]

    # Each thread shows its own messages, from history.
    page.get_by_role("link", name="What is the sum of 2 and 5?").click()
    page.wait_for_url(f"**/#/t/{first}")
    last_answer(page).get_by_text("The sum is 7.").wait_for()
    log = page.get_by_role("log")
    assert "Hello there" not in log.inner_text()
    assert log.locator(".tool-card .tool-name").inner_text() == "add"  # the call, rebuilt
    page.get_by_role("link", name="Hello there").click()
    last_answer(page).get_by_text("You said: Hello there").wait_for()
    assert "sum" not in page.get_by_role("log").inner_text()

    # Rename: the sidebar, the heading and history agree.
    page.get_by_role("button", name="Rename “What is the sum of 2 and 5?”").click()
    title = page.get_by_label("New title for “What is the sum of 2 and 5?”")
    title.fill("Arithmetic")
    title.press("Enter")
    page.get_by_role("link", name="Arithmetic").wait_for()
    assert {t["id"]: t["title"] for t in api_json(page, "/history/threads")}[first] \
        == "Arithmetic"

    # Delete: confirmed in a dialog, forgotten by the server.
    page.get_by_role("button", name="Delete “Hello there”").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    page.wait_for_url("**/#/")  # the open thread is gone: a new chat
    assert thread_titles(page) == ["Arithmetic"]
    eventually(lambda: second not in {t["id"] for t in api_json(page, "/history/threads")},
               "the deleted thread left history")
    page.reload()
    wait_ready(page)
    page.get_by_role("link", name="Arithmetic").wait_for()
    assert thread_titles(page) == ["Arithmetic"]


def test_tokens_show_before_the_turn_ends_and_stop_cancels_a_turn(
        chat_server: ChatServer, new_page: Any) -> None:
    page = new_page()
    sign_up(page, chat_server.url, unique("bea"))
    send(page, "Think about it slowly")
    answer = last_answer(page)
    answer.get_by_text("Let me think about it slowly.").wait_for()
    # The words are on the page while the turn still waits in its tool: they came as
    # tokens, not with the end of the turn (which waits for the gate's release below). The
    # tool may start a moment after the page shows the words that came before its call.
    assert chat_server.gate.reached.wait(20) and not chat_server.gate.released.is_set()
    assert page.get_by_role("button", name="Stop").is_visible()
    assert answer.get_attribute("aria-busy") == "true"
    assert answer.locator(".tool-card").get_attribute("data-status") == "running"
    chat_server.gate.released.set()
    wait_answer(page, "Done thinking.")
    assert page.get_by_role("button", name="Send").is_visible()

    send(page, "Run the long job")
    answer = last_answer(page)
    answer.get_by_text("Starting the long job.").wait_for()
    assert chat_server.probe.started.wait(20)
    page.get_by_role("button", name="Stop").click()
    answer.get_by_text("Stopped. Nothing of this turn was kept.").wait_for()
    # The server cancelled the turn, the running tool included.
    eventually(lambda: chat_server.probe.cancelled == ["wait_long"], "the tool was cancelled")
    assert answer.locator(".tool-card").get_attribute("data-status") == "error"
    assert "The long job finished." not in page.get_by_role("log").inner_text()
    # "Send it again" puts the words back in the box.
    answer.get_by_role("button", name="Send it again").click()
    assert page.get_by_label("Message", exact=True).input_value() == "Run the long job"


def test_a_report_chart_is_shown_and_its_csv_downloadable(
        chat_server: ChatServer, new_page: Any) -> None:
    page = new_page()
    sign_up(page, chat_server.url, unique("cai"))
    send(page, "Show my usage report for the week")
    answer = wait_answer(page, "Your report is ready.")
    assert answer.locator(".tool-card .tool-name").inner_text() == "usage_report"
    chart = answer.locator("figure.report img")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0",
                           arg=chart.element_handle())
    assert re.fullmatch(r"/reports/[0-9a-f]{32}\.png", chart.get_attribute("src") or "")
    csv = answer.get_by_role("link", name="Download the data (CSV)")
    with page.expect_download() as download:
        csv.click()
    assert download.value.suggested_filename.endswith(".csv")
    assert Path(download.value.path()).read_text().splitlines()[0] \
        == "date,your_messages,answers"


def test_markup_from_the_user_or_the_model_is_shown_as_text(
        chat_server: ChatServer, new_page: Any) -> None:
    page = new_page()
    dialogs: list[str] = []

    def on_dialog(dialog: Any) -> None:  # an alert() would be script run from the text
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    sign_up(page, chat_server.url, unique("dov"))
    hostile = "<img src=x onerror=alert(1)>"
    send(page, hostile)
    answer = wait_answer(page, f"You said: {hostile}")
    user = page.locator("article.msg.user .user-text").last
    assert user.inner_text().strip() == hostile
    assert page.locator("img[src=x], img[onerror]").count() == 0
    send(page, "Show me some markdown")
    answer = wait_answer(page, "A heading")
    body = answer.locator(".markdown")
    assert body.locator("h4").inner_text() == "A heading"
    assert body.locator("strong").first.inner_text() == "bold"
    assert body.get_by_role("link", name="safe link").get_attribute("href") \
        == "https://example.org/docs"
    assert body.get_by_role("link", name="unsafe one").count() == 0  # javascript: dropped
    assert "<b>markup</b>" in body.inner_text()
    assert body.locator("b, i, script").count() == 0
    assert body.locator("table td").first.inner_text() == "<i>add</i>"
    code = body.locator(".code-block")
    assert code.locator("code").inner_text() == 'print("<script>alert(1)</script>")'
    assert code.get_by_role("button", name="Copy the python code").is_visible()
    page.reload()  # and the same from history
    wait_ready(page)
    last_answer(page).get_by_text("A heading").wait_for()
    assert page.locator("article.msg.user .user-text").first.inner_text().strip() == hostile
    assert page.locator("img[src=x], script:not([src])").count() == 0
    assert dialogs == []


def test_a_memory_is_listed_found_and_deleted(chat_server: ChatServer, new_page: Any) -> None:
    page = new_page()
    sign_up(page, chat_server.url, unique("eve"))
    for fact in ("My dog is called Rex.", "I work as a nurse."):
        send(page, fact)
        wait_answer(page, f"You said: {fact}")
    page.get_by_role("link", name="Memories").click()
    page.get_by_role("heading", name="Memories", level=1).wait_for()
    fact = page.locator("li.memory", has_text="My dog is called Rex.")
    fact.wait_for()
    page.get_by_label("Search your memories").fill("pet name")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("status").filter(has_text="found for “pet name”").wait_for()
    assert page.locator("li.memory").first.locator(".memory-text").inner_text() \
        == "My dog is called Rex."
    page.get_by_role("button", name="Delete the memory “My dog is called Rex.”").click()
    fact.wait_for(state="detached")
    assert [m["text"] for m in api_json(page, "/memories")] == ["I work as a nurse."]
    page.get_by_role("button", name="Show all").click()
    page.get_by_role("button", name="Forget everything").click()
    page.get_by_role("dialog").get_by_role("button", name="Forget everything").click()
    page.get_by_text("Forgot 1 memory.").wait_for()
    assert api_json(page, "/memories") == []


def test_the_preferred_language_reaches_the_next_answer(
        chat_server: ChatServer, new_page: Any) -> None:
    page = new_page()
    sign_up(page, chat_server.url, unique("fay"))
    send(page, "Hello")
    wait_answer(page, "You said: Hello")
    assert "preferred language" not in chat_server.system_prompt()
    page.get_by_role("link", name="Settings").click()
    page.get_by_label("Preferred language").fill("French")
    page.get_by_label("Display name").fill("Fay")
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Saved. The next answer").wait_for()
    assert api_json(page, "/auth/me")["preferred_language"] == "French"
    assert page.locator("#whoami").inner_text() == "Fay"
    page.get_by_label("Preferred language").fill("Klingon 2")
    page.get_by_role("button", name="Save").click()
    page.get_by_role("alert").filter(has_text="preferred_language").wait_for()

    page.go_back()  # to the conversation
    last_answer(page).get_by_text("You said: Hello").wait_for()
    send(page, "And now?")
    wait_answer(page, "You said: And now?")
    prompt = chat_server.system_prompt()
    assert "Answer in the user's preferred language: French." in prompt
    assert "The user's name is Fay." in prompt


def test_another_user_sees_none_of_the_first_users_threads(
        chat_server: ChatServer, new_page: Any) -> None:
    page = new_page()
    sign_up(page, chat_server.url, unique("gus"))
    send(page, "A secret plan")
    wait_answer(page, "You said: A secret plan")
    thread = page.url.split("#/t/")[1]
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login")
    # Another person on the same browser.
    sign_in_here(page, unique("hal"), register=True)
    page.get_by_text("No conversations yet.").wait_for()
    assert thread_titles(page) == []
    page.goto(f"{chat_server.url}/#/t/{thread}")
    wait_ready(page)
    page.get_by_text("There is no such conversation").wait_for()
    assert "secret" not in page.inner_text("body")
    assert api_json(page, "/history/threads") == []


def test_an_expired_session_signs_in_again_and_keeps_the_draft(
        chat_server: ChatServer, new_page: Any) -> None:
    page = new_page()
    name = unique("ivy")
    sign_up(page, chat_server.url, name)
    send(page, "First message")
    wait_answer(page, "You said: First message")
    thread = page.url.split("#/t/")[1]
    box = page.get_by_label("Message", exact=True)
    box.fill("A long thought I do not want to lose")
    # The session ends: the browser drops the cookie when the token's time is up.
    page.context.clear_cookies()
    box.press("Enter")
    page.wait_for_url("**/login?next=/")
    sign_in_here(page, name)
    # Back where they were, with what they typed.
    page.wait_for_url(f"**/#/t/{thread}")
    assert page.get_by_label("Message", exact=True).input_value() \
        == "A long thought I do not want to lose"
    last_answer(page).get_by_text("You said: First message").wait_for()
    assert len(chat_server.model.calls) > 0
    page.get_by_label("Message", exact=True).press("Enter")
    wait_answer(page, "You said: A long thought I do not want to lose")


def test_the_keyboard_and_a_phone_sized_screen(chat_server: ChatServer, new_page: Any) -> None:
    page = new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    sign_up(page, chat_server.url, unique("jon"))
    # The page opens with the message box focused; Tab goes on to Send.
    assert page.evaluate("document.activeElement.id") == "message"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Send"
    # The first stop of the focus order is the skip link, which leads to the message box.
    assert page.evaluate("document.querySelector('a[href], button, textarea').textContent") \
        == "Skip to the message box"
    opened = page.url
    page.locator(".skip-link").focus()
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "message"
    # Only the focus moved: "#message" in the address would route to a new chat, whose
    # fresh box dropped the first letters typed next.
    assert page.url == opened
    # Shift+Enter breaks the line; Enter sends.
    page.keyboard.type("first line")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("second line")
    assert page.get_by_label("Message", exact=True).input_value() == "first line\nsecond line"
    page.keyboard.press("Enter")
    wait_answer(page, "You said: first line")
    assert page.locator("article.msg.user .user-text").last.inner_text().strip() \
        == "first line\nsecond line"
    # The conversations are a menu on a phone, closed by Escape.
    sidebar = page.get_by_role("navigation", name="Conversations")
    assert not sidebar.is_visible()
    menu = page.get_by_role("button", name="Conversations")
    menu.click()
    assert sidebar.is_visible() and menu.get_attribute("aria-expanded") == "true"
    assert page.evaluate("document.activeElement.textContent") == "New chat"
    page.keyboard.press("Escape")
    assert not sidebar.is_visible()
    assert page.evaluate("document.activeElement.id") == "menu-button"
    # Nothing is wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_remember_this_keeps_a_note_the_memories_api_then_lists(
        chat_server: ChatServer, new_page: Any) -> None:
    page = new_page()
    sign_up(page, chat_server.url, unique("noa"))
    page.get_by_role("link", name="Memories").click()
    page.get_by_role("heading", name="Memories", level=1).wait_for()
    page.get_by_label("Remember this").fill("My locker code is 4471.")
    page.get_by_role("button", name="Remember", exact=True).click()
    page.locator("li.memory", has_text="My locker code is 4471.").wait_for()
    page.get_by_role("status").filter(has_text="Remembered.").wait_for()
    assert page.get_by_label("Remember this").input_value() == ""
    kept = api_json(page, "/memories")
    assert [(m["text"], m["metadata"]["kind"]) for m in kept] == [
        ("My locker code is 4471.", "note")]
    page.get_by_label("Search your memories").fill("locker")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("status").filter(has_text="found for “locker”").wait_for()
    assert page.locator("li.memory .memory-text").first.inner_text() \
        == "My locker code is 4471."


def test_an_api_key_is_made_shown_once_works_and_is_revoked(
        chat_server: ChatServer, new_page: Any) -> None:
    page = new_page()
    sign_up(page, chat_server.url, unique("kai"))
    page.get_by_role("link", name="Settings").click()
    page.get_by_text("No API keys yet.").wait_for()
    page.get_by_label("Key name").fill("my script")
    page.get_by_role("button", name="Create key").click()
    secret = page.get_by_role("textbox", name="The key “my script”").input_value()
    assert page.locator("li.key", has_text="my script").count() == 1
    # The key works for a program, in place of the password.
    agents = httpx.get(f"{chat_server.url}/agents", headers={"x-api-key": secret})
    assert agents.status_code == 200
    page.get_by_role("button", name="Revoke the key “my script”").click()
    page.get_by_role("dialog").get_by_role("button", name="Revoke").click()
    page.get_by_text("Key revoked.").wait_for()
    assert httpx.get(f"{chat_server.url}/agents",
                     headers={"x-api-key": secret}).status_code == 401
    page.reload()
    page.locator("li.key", has_text="revoked").wait_for()
    # The secret is never shown again.
    assert secret not in page.content()
