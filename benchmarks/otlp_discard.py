"""An OTLP/HTTP trace endpoint that accepts and drops every export: the collector's side of
the tracing-overhead scenario, so the service pays for real export without a real collector."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Counts:
    def __init__(self) -> None:
        self.exports = 0
        self.bytes = 0
        self.lock = threading.Lock()


def _handler(counts: _Counts) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            with counts.lock:
                counts.exports += 1
                counts.bytes += length
            # An empty ExportTraceServiceResponse serialises to zero bytes.
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return None

    return Handler


@contextmanager
def otlp_discard() -> Iterator[tuple[str, _Counts]]:
    """Yields (endpoint URL, counts of exports received) while the endpoint serves."""
    counts = _Counts()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(counts))
    thread = threading.Thread(target=server.serve_forever, name="otlp-discard", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}", counts
    finally:
        server.shutdown()
        server.server_close()
