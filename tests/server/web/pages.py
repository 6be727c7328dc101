"""What a person does on the chat page, as Playwright steps: sign up or in through the
login page, send a message, wait for the answer, open a view."""

from __future__ import annotations

import time
from typing import Any

PASSWORD = "a long enough password"


def sign_up(page: Any, url: str, username: str, *, register: bool = True) -> None:
    """Open the chat page without a session: the server sends the browser to the login
    page, which signs up (or in) and comes back to the ready chat page."""
    page.goto(f"{url}/")
    page.wait_for_url("**/login?next=/")
    sign_in_here(page, username, register=register)


def sign_in_here(page: Any, username: str, *, register: bool = False) -> None:
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click(f"button[value={'register' if register else 'login'}]")
    wait_ready(page)


def wait_ready(page: Any) -> None:
    page.wait_for_selector("body[data-ready=true]")


def send(page: Any, text: str) -> None:
    box = page.get_by_label("Message", exact=True)
    box.fill(text)
    box.press("Enter")


def last_answer(page: Any) -> Any:
    return page.locator("article.msg.assistant").last


def wait_answer(page: Any, text: str) -> Any:
    """The last answer, once its text holds `text` and its turn is over."""
    answer = last_answer(page)
    answer.get_by_text(text).first.wait_for()
    page.wait_for_selector("article.msg.assistant[aria-busy]", state="detached")
    return answer


def thread_titles(page: Any) -> list[str]:
    return [t.strip() for t in page.locator("#thread-list a.thread-link").all_inner_texts()]


def api_json(page: Any, path: str) -> Any:
    """A GET of the API with the page's own session cookie, as its scripts make it."""
    response = page.request.get(path if path.startswith("http") else page.url.split("/#")[0]
                                .rstrip("/") + path)
    assert response.ok, f"{path}: {response.status} {response.text()}"
    return response.json()


def eventually(check: Any, what: str, *, tries: int = 100) -> Any:
    """History applies turns and deletions from the turn stream, a moment after the API
    answered: ask again until it has (bounded; the answer is asserted, not the time)."""
    for _ in range(tries):
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"never happened: {what}")
