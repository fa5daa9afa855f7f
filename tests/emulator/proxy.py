"""A fault-injecting HTTP reverse proxy for the emulator and the registry.

Faults are drawn from a seeded RNG so a failing run can be replayed:
`502`s, dropped connections, slow answers, one primary and one secondary
rate limit, and byte-level tampering of chosen responses.
"""

from __future__ import annotations

import random
import threading
import time
import typing as t
from dataclasses import dataclass, field

import requests

from tests.emulator.servers import LoggedServer, QuietHandler

HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"}


@dataclass
class Faults:
    error_rate: float = 0.0  # share of requests answered `error_status`
    error_status: str = "502"
    drop_rate: float = 0.0  # share of requests whose connection is closed with no answer
    slow_rate: float = 0.0  # share of requests delayed by `slow_seconds`
    slow_seconds: float = 0.2
    primary_limit_once: bool = False  # one 403 with x-ratelimit-remaining: 0
    secondary_limit_once: bool = False  # one 403 with retry-after
    limit_wait: int = 1
    tamper: t.Callable[[str, bytes], bytes] | None = None  # (path, body) -> body
    scripted: list[str] = field(default_factory=list)  # faults forced on the next requests, in order
    seed: int = 1
    only_paths: t.Callable[[str], bool] = lambda path: True
    injected: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.lock = threading.Lock()

    def draw(self, path: str) -> str | None:
        if not self.only_paths(path):
            return None
        with self.lock:
            if self.primary_limit_once:
                self.primary_limit_once = False
                return self._count("primary")
            if self.secondary_limit_once:
                self.secondary_limit_once = False
                return self._count("secondary")
            if self.scripted:
                return self._count(self.scripted.pop(0))
            roll = self.rng.random()
            if roll < self.error_rate:
                return self._count(self.error_status)
            if roll < self.error_rate + self.drop_rate:
                return self._count("drop")
            if roll < self.error_rate + self.drop_rate + self.slow_rate:
                return self._count("slow")
        return None

    def _count(self, kind: str) -> str:
        self.injected[kind] = self.injected.get(kind, 0) + 1
        return kind


def make_handler(target: str, faults: Faults) -> type[QuietHandler]:
    session = requests.Session()

    class ProxyHandler(QuietHandler):
        def _forward(self) -> None:
            fault = faults.draw(self.path)
            if fault == "drop":
                self.server.record(self.command, self.path, dict(self.headers.items()), 0)  # type: ignore[attr-defined]
                self.close_connection = True
                self.connection.shutdown(2)
                return
            if fault == "502":
                self.send_body(502, b"<html>502 Bad Gateway</html>", content_type="text/html")
                return
            if fault is not None and fault.isdigit():  # any other status, with GitHub's error body
                self.send_body(int(fault), b'{"message":"Not Found","status":"%s"}' % fault.encode())
                return
            if fault == "primary":
                reset = str(int(time.time()) + faults.limit_wait)
                self.send_body(403, b'{"message":"API rate limit exceeded"}',
                               {"x-ratelimit-remaining": "0", "x-ratelimit-reset": reset, "x-ratelimit-limit": "5000"})
                return
            if fault == "secondary":
                self.send_body(403, b'{"message":"You have exceeded a secondary rate limit."}',
                               {"retry-after": str(faults.limit_wait)})
                return
            if fault == "slow":
                time.sleep(faults.slow_seconds)
            length = int(self.headers.get("Content-Length") or 0)
            data = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS | {"host"}}
            upstream = session.request(self.command, target + self.path, headers=headers, data=data,
                                       allow_redirects=False, timeout=60)
            body = upstream.content
            if faults.tamper is not None and self.command == "GET":
                body = faults.tamper(self.path, body)
            out = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_HEADERS | {"content-type"}}
            # Links and redirects name the upstream: rewrite them to the proxy.
            for key in ("Link", "Location"):
                if key in out:
                    out[key] = out[key].replace(target, self.server.url)  # type: ignore[attr-defined]
            self.send_body(upstream.status_code, body, out,
                           content_type=upstream.headers.get("Content-Type", "application/octet-stream"))

        do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _forward

    return ProxyHandler


def start_proxy(target: str, faults: Faults | None = None) -> tuple[LoggedServer, Faults]:
    faults = faults or Faults()
    return LoggedServer(make_handler(target.rstrip("/"), faults)).start(), faults
