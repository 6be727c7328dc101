"""`python -m tests.server.web.screenshots [FOLDER]`: the README's pictures of the chat
page (docs/screenshots by default), taken in Debian's Chromium from a real server with the
browser tests' scripted model, and kept small (a palette of 96 colours)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from PIL import Image

from server.embedded.redis_server import start_redis
from tests.server.web.conftest import serve_chat
from tests.server.web.pages import send, sign_up, wait_answer
from tests.support.browser import chromium

ROOT = Path(__file__).resolve().parents[3]


def shrink(path: Path) -> None:
    Image.open(path).convert("RGB").quantize(colors=96).save(path, optimize=True)


def take(page: Any, folder: Path, name: str) -> None:
    path = folder / f"{name}.png"
    page.screenshot(path=str(path))
    shrink(path)
    print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: "
          f"{path.stat().st_size // 1024} KiB")


def main(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="parley-shots-") as tmp:
        redis = start_redis(Path(tmp) / "redis")
        try:
            with serve_chat(redis.url, Path(tmp) / "data") as server, chromium() as browser:
                page = browser.new_page(viewport={"width": 1100, "height": 720})
                sign_up(page, server.url, "ada")
                for text, answer in [("My sister Alice lives in Lyon.", "You said"),
                                     ("I am learning to play the cello.", "You said")]:
                    send(page, text)
                    wait_answer(page, answer)
                page.get_by_role("button", name="New chat").click()
                send(page, "What is the sum of 2 and 5?")
                wait_answer(page, "The sum is 7.")
                send(page, "Show my usage report for the week")
                answer = wait_answer(page, "Your report is ready.")
                page.wait_for_function("img => img.complete && img.naturalWidth > 0",
                                       arg=answer.locator("figure img").element_handle())
                answer.locator("figure.report").evaluate(
                    "figure => figure.scrollIntoView({ block: 'end' })")
                take(page, folder, "chat")
                page.get_by_role("link", name="Memories").click()
                page.locator("li.memory").first.wait_for()
                take(page, folder, "memories")
                page.get_by_role("link", name="Settings").click()
                page.get_by_label("Display name").fill("Ada")
                page.get_by_label("Preferred language").fill("French")
                page.get_by_label("Custom instructions").fill("Keep answers short.")
                page.get_by_role("button", name="Save").click()
                page.get_by_text("Saved. The next answer").wait_for()
                take(page, folder, "settings")
                phone = browser.new_page(viewport={"width": 390, "height": 760},
                                         is_mobile=True)
                phone.context.add_cookies(page.context.cookies())
                phone.goto(f"{server.url}/")
                phone.wait_for_selector("body[data-ready=true]")
                send(phone, "Show me some markdown")
                wait_answer(phone, "A heading")
                take(phone, folder, "phone")
        finally:
            redis.stop()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots")
