"""A real HTTP server on 127.0.0.1 that replays recorded answers, for tools that call
outside APIs: per path, a queue of answers (status, body, delay); the last one repeats."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse


@dataclass
class Answer:
    body: bytes
    status: int = 200
    delay: float = 0.0
    content_type: str = "application/json"

    @classmethod
    def file(cls, path: Path, **kwargs: object) -> Answer:
        return cls(body=path.read_bytes(), **kwargs)  # type: ignore[arg-type]

    @classmethod
    def json(cls, value: object, **kwargs: object) -> Answer:
        return cls(body=json.dumps(value).encode(), **kwargs)  # type: ignore[arg-type]


@dataclass
class Replay:
    url: str
    routes: dict[str, list[Answer]] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, list[str]]]] = field(default_factory=list)
    posted: list[tuple[str, bytes]] = field(default_factory=list)  # (path, body) of POSTs

    def on(self, path: str, *answers: Answer) -> None:
        self.routes[path] = list(answers)

    def count(self, path: str) -> int:
        return sum(1 for p, _ in self.requests if p == path)


@contextmanager
def replay_server() -> Iterator[Replay]:
    replay = Replay(url="")
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            with lock:
                replay.posted.append((urlparse(self.path).path, body))
            self.do_GET()

        def do_GET(self) -> None:
            parsed = urlparse(self.path)
            with lock:
                replay.requests.append((parsed.path, parse_qs(parsed.query)))
                queue = replay.routes.get(parsed.path)
                answer = (queue.pop(0) if len(queue) > 1 else queue[0]) if queue else \
                    Answer.json({"error": True, "reason": "no recording"}, status=404)
            if answer.delay:
                time.sleep(answer.delay)
            try:
                self.send_response(answer.status)
                self.send_header("content-type", answer.content_type)
                self.send_header("content-length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting: that is what a timeout test wants

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    replay.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield replay
    finally:
        server.shutdown()
        server.server_close()
