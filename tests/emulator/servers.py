"""A threaded HTTP server on a random loopback port, with a request log."""

from __future__ import annotations

import threading
import typing as t
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LoggedServer(ThreadingHTTPServer):
    """Serves a handler class on (host, random port); keeps every request line seen."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, handler: type[BaseHTTPRequestHandler], host: str = "127.0.0.1") -> None:
        super().__init__((host, 0), handler)
        self.log: list[dict[str, t.Any]] = []
        self.log_lock = threading.Lock()
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def record(self, method: str, path: str, headers: dict[str, str], status: int) -> None:
        with self.log_lock:
            self.log.append({"method": method, "path": path, "headers": headers, "status": status})

    def start(self) -> LoggedServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class QuietHandler(BaseHTTPRequestHandler):
    """No access log on stderr; HTTP/1.1 keep-alive like real servers."""

    protocol_version = "HTTP/1.1"
    # Headers and body leave in separate writes; with Nagle on, the body waits for the client's delayed
    # ACK (40 ms on Linux), which real servers do not impose.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: t.Any) -> None:
        pass

    def send_body(self, status: int, body: bytes, headers: dict[str, str] | None = None,
                  content_type: str = "application/json; charset=utf-8") -> None:
        # Logged before the answer leaves, so a client that got it always finds it in the log.
        self.server.record(self.command, self.path, dict(self.headers.items()), status)  # type: ignore[attr-defined]
        self.send_response(status)
        if body or status not in (204, 304):
            self.send_header("Content-Type", content_type)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)
