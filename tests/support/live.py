"""Run an ASGI app under a real uvicorn server on 127.0.0.1, in a background thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from server.embedded.redis_server import free_port


def reset_sse_state() -> None:
    """sse-starlette keeps one process-wide exit event, bound to the first event loop that
    used it; tests run apps on several loops, so each app starts with none."""
    from sse_starlette.sse import AppStatus

    AppStatus.should_exit_event = None


@contextmanager
def serve_in_thread(app: object, *, ready_timeout: float = 30.0,
                    proxy_headers: bool = True) -> Iterator[str]:
    """`proxy_headers=False`: a server browsers reach directly, believing no
    X-Forwarded-For (uvicorn's default trusts it from 127.0.0.1, where tests connect)."""
    reset_sse_state()
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",  # type: ignore[arg-type]
                            lifespan="on", proxy_headers=proxy_headers)
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
