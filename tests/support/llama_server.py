"""llama.cpp's own OpenAI-compatible HTTP server on a GGUF file, from the xllamacpp wheel,
as a real server for the `openai-compatible` provider's tests:
`python -m tests.support.llama_server MODEL PORT` serves until it is terminated."""

from __future__ import annotations

import os
import signal
import sys
import threading


def main(model: str, port: int) -> None:
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = model
    params.n_ctx = 2048
    params.n_predict = 256  # a request that names no max_tokens still ends
    params.hostnames = ["127.0.0.1"]
    params.port = port
    params.verbosity = -1
    params.warmup = False
    server = xllamacpp.Server(params)  # listens while it exists
    # Terminated: exit at once, not after the request in flight finishes.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    threading.Event().wait()
    del server


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
