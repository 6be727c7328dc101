"""Run an ASGI app under a real uvicorn server on 127.0.0.1, in a background thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from server.embedded.redis_server import free_port


@contextmanager
def serve_in_thread(app: object, *, ready_timeout: float = 30.0) -> Iterator[str]:
    from sse_starlette.sse import AppStatus

    # sse-starlette keeps one process-wide exit event bound to the first event loop that
    # used it; each test server runs its own loop, so it starts with none.
    AppStatus.should_exit_event = None
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",  # type: ignore[arg-type]
                            lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + ready_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
