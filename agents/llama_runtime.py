"""llama.cpp in process, from a prebuilt wheel: xllamacpp runs llama.cpp's own server
engine (chat templates, JSON-schema constrained output, the samplers) behind a Python call,
so `make install` downloads it instead of compiling llama.cpp for minutes.

The engine is thread-safe and queues requests on its one slot; a stream's chunks arrive in
a callback, which this module turns into an iterator whose closing stops the generation
(a client that goes away frees the model at the next token).
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Generator
from pathlib import Path
from typing import Any

_DONE = object()


class LlamaRuntime:
    """One GGUF file loaded by llama.cpp. Requests and answers are OpenAI chat completions
    as llama.cpp's server takes them (with its sampling fields: `repeat_penalty`,
    `dry_multiplier`, `stop`, `json_schema`, ...)."""

    def __init__(self, path: Path, *, n_ctx: int, n_threads: int | None = None) -> None:
        import xllamacpp

        threads = n_threads or max(1, os.cpu_count() or 2)
        params = xllamacpp.CommonParams()
        params.model.path = str(path)
        params.n_ctx = n_ctx
        params.n_parallel = 1  # one slot: the whole context for one request at a time
        params.cpuparams.n_threads = threads
        params.cpuparams_batch.n_threads = threads
        params.verbosity = -1  # llama.cpp's own log lines: none (errors come as exceptions)
        params.warmup = False  # the first request warms it; start-up stays short
        self.path = path
        self.n_ctx = n_ctx
        self.n_threads = threads
        self._server = xllamacpp.Server(params)

    def chat(self, request: dict[str, Any]) -> dict[str, Any]:
        """One whole completion: `choices`, `usage`, `timings`."""
        answer = self._server.handle_chat_completions({**request, "stream": False})
        return dict(answer)

    def stream_chat(self, request: dict[str, Any]) -> Generator[dict[str, Any], None, None]:
        """The completion's chunks, the last one carrying `usage`. Closing the iterator
        early stops the generation."""
        chunks: queue.Queue[Any] = queue.Queue()
        stop = threading.Event()

        def on_chunk(chunk: Any) -> bool:
            chunks.put(chunk)
            return stop.is_set()  # True asks the engine to stop

        def run() -> None:
            try:
                self._server.handle_chat_completions(
                    {**request, "stream": True, "stream_options": {"include_usage": True}},
                    on_chunk)
            except Exception as exc:  # reaches the caller from the iterator
                chunks.put(exc)
            finally:
                chunks.put(_DONE)

        worker = threading.Thread(target=run, name="llama-stream", daemon=True)
        worker.start()
        try:
            while (item := chunks.get()) is not _DONE:
                if isinstance(item, Exception):
                    raise item
                if isinstance(item, dict) and "error" in item:
                    raise RuntimeError(f"llama.cpp: {item['error']}")
                yield item
        finally:
            stop.set()
            worker.join()
