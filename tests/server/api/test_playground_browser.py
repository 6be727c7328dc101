"""The LangServe chat playground in a real browser: a multi-turn conversation."""

from __future__ import annotations

from pathlib import Path

from agents.fake import call, say
from tests.support.browser import browser_page


def test_playground_holds_a_multi_turn_conversation(make_app, live, tmp_path: Path) -> None:
    app = make_app([say("Hello, I am Parley."), call("add", a=2, b=5),
                    say("The sum is 7."), say("You first said hello.")], cycle=False,
                   auth_enabled=True)
    with live(app) as url, browser_page() as page:
        # Behind auth: the playground sends the browser to the login page and back.
        page.goto(f"{url}/agents/assistant/playground/")
        page.wait_for_url("**/login?next=/agents/assistant/playground/")
        page.fill("input[name=username]", "playground-user")
        page.fill("input[name=password]", "a long enough password")
        page.click("button[value=register]")
        page.wait_for_url("**/agents/assistant/playground/")
        box = page.get_by_placeholder("Send a message...")
        for text, answer in [("hello", "Hello, I am Parley."), ("what is 2+5?", "The sum is 7."),
                             ("what did I say first?", "You first said hello.")]:
            box.fill(text)
            box.press("Enter")
            page.wait_for_function("t => document.body.innerText.includes(t)", arg=answer,
                                   timeout=15_000)
        page.screenshot(path=str(tmp_path / "playground.png"))
        body = page.inner_text("body")
    assert "🛠 add" in body  # the tool call shows in the conversation
    for text in ("hello", "what is 2+5?", "Hello, I am Parley.", "The sum is 7."):
        assert text in body
    # The third turn carried the whole conversation to the model, tool notes stripped.
    last = [m.content for m in app.state.model.calls[-1]][1:]
    assert last == ["hello", "Hello, I am Parley.", "what is 2+5?", "The sum is 7.",
                    "what did I say first?"]
