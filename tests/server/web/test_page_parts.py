"""Parts of the chat page in Chromium: the Markdown renderer against hostile text, the
approval card's decisions, and axe-core's accessibility check of every view."""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.server.web.conftest import AXE, ChatServer, unique
from tests.server.web.pages import send, sign_up, wait_answer

HOSTILE = [
    "<img src=x onerror=\"window.pwned = 'img'\">",
    "<script>window.pwned = 'script'</script>",
    "[a](javascript:window.pwned='a')",
    "[b](JaVaScRiPt:window.pwned='b')",
    "[c](java\tscript:window.pwned='c')",
    "[d](  javascript:window.pwned='d')",
    "[e](<javascript:window.pwned='e'>)",
    "[f](data:text/html,<script>window.pwned='f'</script>)",
    "[g](vbscript:msgbox)",
    "![h](javascript:window.pwned='h')",
    "![i](https://tracker.example/pixel.png)",
    "<a href=\"javascript:window.pwned='j'\">j</a>",
    "**<svg onload=\"window.pwned='k'\">**",
    "```html\n<img src=x onerror=\"window.pwned='l'\">\n```",
    "| m |\n|---|\n| <iframe src=\"javascript:window.pwned='m'\"></iframe> |",
    "> <style>body { display: none }</style>",
    "- <details open ontoggle=\"window.pwned='n'\">",
    "`<b>code</b>` and &lt;script&gt;",
    "[[[[[[[ ((((((( ***** _____ ````` ~~~~~",
]
TAGS = {"p", "br", "strong", "em", "del", "code", "pre", "a", "img", "ul", "ol", "li",
        "blockquote", "h3", "h4", "h5", "h6", "hr", "table", "thead", "tbody", "tr", "th",
        "td", "div", "span", "button"}
ATTRIBUTES = {"href", "target", "rel", "download", "src", "alt", "loading", "class",
              "tabindex", "type", "aria-label", "data-lang", "start", "scope"}

RENDER = """async (texts) => {
  const { renderMarkdown } = await import("/web/js/markdown.js");
  const results = texts.map((text) => {
    const box = document.createElement("div");
    box.append(renderMarkdown(text));
    document.querySelector("main").append(box);  // in the page, where handlers could run
    const elements = [...box.querySelectorAll("*")];
    return {
      tags: elements.map((e) => e.localName),
      attributes: elements.flatMap((e) => [...e.attributes].map((a) => [a.name, a.value])),
      text: box.textContent,
    };
  });
  await new Promise((done) => setTimeout(done, 100));  // let any load or error event fire
  return { results, pwned: window.pwned ?? null };
}"""


@pytest.fixture
def page(chat_server: ChatServer, new_page: Any) -> Any:
    page = new_page()
    sign_up(page, chat_server.url, unique("kim"))
    return page


def test_no_markup_from_the_text_reaches_the_page(page: Any) -> None:
    rendered = page.evaluate(RENDER, HOSTILE)
    assert rendered["pwned"] is None
    origin = page.url.split("/#")[0].rstrip("/")
    for text, result in zip(HOSTILE, rendered["results"], strict=True):
        assert set(result["tags"]) <= TAGS, text
        for name, value in result["attributes"]:
            assert name in ATTRIBUTES, (text, name)
            if name == "href":
                assert value.startswith(("https:", "http:", "mailto:")), (text, value)
            if name == "src":
                assert value.startswith(origin), (text, value)
    by_text = dict(zip(HOSTILE, rendered["results"], strict=True))
    # Markup is shown as the characters it was written with.
    assert "<img src=x onerror=" in by_text[HOSTILE[0]]["text"]
    assert "<script>" in by_text[HOSTILE[1]]["text"]
    assert "&lt;script&gt;" in by_text[HOSTILE[17]]["text"]
    assert by_text[HOSTILE[10]]["tags"] == ["p", "a"]  # a foreign image: a link, not loaded


def test_markdown_that_answers_use(page: Any) -> None:
    text = ("# Title\n\n1. one\n2. two\n   - nested\n\n3) three\n\n| a | b |\n|:--|--:|\n"
            "| `x|y` | **2** |\n\n```js\nlet a = 1;\n```\n\nsnake_case_name and "
            "~~gone~~ https://example.org/a_(b). Chart: /reports/" + "a" * 32 + ".png")
    html = page.evaluate("""async (text) => {
      const { renderMarkdown } = await import("/web/js/markdown.js");
      const found = new Set();
      const box = document.createElement("div");
      box.append(renderMarkdown(text, found));
      return { html: box.innerHTML, found: [...found] };
    }""", text)
    out = html["html"]
    assert "<h3>Title</h3>" in out
    assert "<ol><li>one</li><li>two<ul><li>nested</li></ul></li></ol>" in out
    assert '<ol start="3"><li>three</li></ol>' in out
    assert '<th class="align-left" scope="col">a</th>' in out
    assert '<td class="align-left"><code>x|y</code></td>' in out
    assert '<td class="align-right"><strong>2</strong></td>' in out
    assert '<code data-lang="js">let a = 1;</code>' in out
    assert "snake_case_name" in out and "<del>gone</del>" in out
    assert '<a href="https://example.org/a_(b)" target="_blank"' in out
    assert html["found"] == ["/reports/" + "a" * 32 + ".png"]


def test_an_approval_card_approves_edits_and_rejects(page: Any) -> None:
    page.evaluate("""async () => {
      const { ApprovalCard } = await import("/web/js/cards.js");
      window.decisions = [];
      for (const id of ["one", "two", "three"]) {
        const card = new ApprovalCard(
          { id, tool: `send_${id}`, call_id: `call-${id}`, args: { to: "ada" } },
          async (decision) => { window.decisions.push(decision); });
        document.querySelector("main").append(card.el);
      }
    }""")
    one = page.get_by_role("group", name="Approve the call to send_one")
    one.get_by_role("button", name="Approve").click()
    one.get_by_text("Approved.").wait_for()
    two = page.get_by_role("group", name="Approve the call to send_two")
    two.get_by_role("button", name="Edit").click()
    args = two.get_by_label("Arguments (JSON)")
    args.fill("{not json")
    two.get_by_role("button", name="Run with these").click()
    two.get_by_role("alert").filter(has_text="not valid JSON").wait_for()
    args.fill('{"to": "bob"}')
    two.get_by_role("button", name="Run with these").click()
    two.get_by_text("Approved with new arguments.").wait_for()
    three = page.get_by_role("group", name="Approve the call to send_three")
    three.get_by_role("button", name="Reject…").click()
    three.get_by_label("Why not (the agent reads this)").fill("not today")
    three.get_by_role("button", name="Reject", exact=True).click()
    three.get_by_text("Rejected.").wait_for()
    assert page.evaluate("window.decisions") == [
        {"id": "one", "call_id": "call-one", "decision": "approve"},
        {"id": "two", "call_id": "call-two", "decision": "edit", "args": {"to": "bob"}},
        {"id": "three", "call_id": "call-three", "decision": "reject", "reason": "not today"},
    ]


def test_the_cards_of_one_approval_label_their_own_fields(page: Any) -> None:
    """Two calls of one approval share its id: each card's labels still name its own
    fields (a label naming the first card's field would focus it from the second)."""
    own = page.evaluate("""async () => {
      const { ApprovalCard } = await import("/web/js/cards.js");
      const cards = ["c1", "c2"].map((call_id) => new ApprovalCard(
        { id: "same", tool: `send_${call_id}`, call_id, args: {} }, async () => {}));
      cards.forEach((card) => document.querySelector("main").append(card.el));
      return cards.map((card) => [...card.el.querySelectorAll("label")].map(
        (label) => label.control !== null && card.el.contains(label.control)));
    }""")
    assert own == [[True, True], [True, True]]


def serious_violations(page: Any) -> list[str]:
    """axe-core's serious and critical findings on the page as it is now. axe is served
    to the page from the npm package on disk, through its own origin (the page's CSP
    admits no other script)."""
    page.route("**/__axe__/axe.min.js", lambda route: route.fulfill(
        path=str(AXE), content_type="text/javascript"))
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(url="/__axe__/axe.min.js")
    found = page.evaluate("""async () => {
      const result = await axe.run(document, { resultTypes: ["violations"] });
      return result.violations.map((v) => ({ id: v.id, impact: v.impact,
        nodes: v.nodes.map((n) => n.target.join(" ")) }));
    }""")
    return [f"{v['id']} ({v['impact']}): {v['nodes']}" for v in found
            if v["impact"] in ("serious", "critical")]


def test_every_view_passes_axe(chat_server: ChatServer, new_page: Any) -> None:
    if not AXE.exists():
        message = "axe-core is not installed (make install runs npm ci in tests/server/web)"
        if os.environ.get("PARLEY_CI"):
            pytest.fail(message)
        pytest.skip(message)
    page = new_page()
    sign_up(page, chat_server.url, unique("lou"))
    found = {"new chat": serious_violations(page)}
    send(page, "What is the sum of 2 and 5?")
    wait_answer(page, "The sum is 7.")
    send(page, "Show my usage report")
    wait_answer(page, "Your report is ready.")
    send(page, "Show me some markdown")
    wait_answer(page, "A heading")
    send(page, "I like green tea.")
    wait_answer(page, "You said: I like green tea.")
    page.locator(".tool-card .tool-output summary").first.click()
    found["conversation"] = serious_violations(page)
    page.get_by_role("button", name="Delete “What is the sum of 2 and 5?”").click()
    found["confirm dialog"] = serious_violations(page)
    page.keyboard.press("Escape")
    page.get_by_role("link", name="Memories").click()
    page.locator("li.memory").first.wait_for()
    found["memories"] = serious_violations(page)
    page.get_by_role("link", name="Settings").click()
    page.get_by_label("Preferred language").wait_for()
    found["settings"] = serious_violations(page)
    page.set_viewport_size({"width": 390, "height": 844})
    page.get_by_role("button", name="Conversations").click()
    found["phone menu"] = serious_violations(page)
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login")
    found["sign in"] = serious_violations(page)
    assert found == {view: [] for view in found}
