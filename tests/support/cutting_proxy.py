"""A TCP proxy on 127.0.0.1 that cuts one connection after the server has sent it a given
number of Server-Sent Events: a client losing its stream mid-run, for real."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress


class CuttingProxy:
    def __init__(self, upstream: str, *, cut_after: int, boundary: bytes = b"\n\n",
                 armed_by: bytes | None = None) -> None:
        host, port = upstream.removeprefix("http://").split(":")
        self.upstream = (host, int(port))
        self.cut_after = cut_after  # events (blank-line ends) before the cut
        self.boundary = boundary  # an event's end on the wire (with \r\n, the headers')
        # With `armed_by`, only a response to a request containing it (and no
        # Last-Event-ID) is counted: a browser loads pages on the same connections.
        self.armed_by = armed_by
        self.cuts = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._lock = threading.Lock()

    def serve(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            armed = threading.Event()
            if self.armed_by is None:
                armed.set()
            threading.Thread(target=self._pipe, args=(client, server, False, armed),
                             daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, True, armed),
                             daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, answers: bool,
              armed: threading.Event) -> None:
        seen = 0
        with suppress(OSError):
            while data := source.recv(65536):
                if not answers:
                    if self.armed_by is not None and self.armed_by in data \
                            and b"last-event-id" not in data.lower():
                        armed.set()
                    sink.sendall(data)
                    continue
                if not armed.is_set():
                    sink.sendall(data)
                    continue
                if self._should_cut(seen, data):
                    end = _nth_end(data, self.cut_after - seen, self.boundary)
                    sink.sendall(data[:end])
                    break  # both ends close below, mid-response

                seen += data.count(self.boundary)
                sink.sendall(data)
        for side in (source, sink):  # shutdown wakes the other pipe blocked reading
            with suppress(OSError):
                side.shutdown(socket.SHUT_RDWR)
            side.close()

    def _should_cut(self, seen: int, data: bytes) -> bool:
        with self._lock:
            if self.cuts == 0 and seen + data.count(self.boundary) >= self.cut_after:
                self.cuts += 1
                return True
            return False

    def close(self) -> None:
        self._listener.close()


def _nth_end(data: bytes, n: int, boundary: bytes) -> int:
    at = -len(boundary)
    for _ in range(max(1, n)):
        at = data.index(boundary, at + len(boundary))
    return at + len(boundary)


@contextmanager
def cutting_proxy(upstream: str, *, cut_after: int, boundary: bytes = b"\n\n",
                  armed_by: bytes | None = None) -> Iterator[CuttingProxy]:
    proxy = CuttingProxy(upstream, cut_after=cut_after, boundary=boundary, armed_by=armed_by)
    threading.Thread(target=proxy.serve, daemon=True).start()
    try:
        yield proxy
    finally:
        proxy.close()
