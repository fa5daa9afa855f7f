"""A TCP proxy that adds a fixed latency to every request, for the benchmark.

Byte-level, so HTTP keep-alive stays as it is: each chunk the client sends is
held `latency` seconds before it goes upstream, which for small HTTP requests
is one round trip's worth per request. Answers pass straight back.

All proxies share one event loop thread and use asyncio protocols rather than
streams: on a 2-core machine the proxies' own CPU and GIL hand-offs would
otherwise show up in the tap's figures. The loop's timers wake late (epoll
counts whole milliseconds), so each proxy measures how late and holds chunks
that much less; `injected` reports the delay that was actually added.

Each proxy also times its server: from a request's release upstream to the
first chunk of its answer (`server_times`). On the benchmark's two cores the
servers share the CPU with the tap, and their time is in every request's.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import time

_METHODS = {b"GET /", b"HEAD ", b"POST ", b"PUT /", b"DELET", b"PATCH"}


class _Loop:
    """The one event loop thread the proxies run on."""

    _lock = threading.Lock()
    _loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def get(cls) -> asyncio.AbstractEventLoop:
        with cls._lock:
            if cls._loop is None:
                cls._loop = asyncio.new_event_loop()
                threading.Thread(target=cls._loop.run_forever, daemon=True, name="latency-proxies").start()
            return cls._loop


class _Downstream(asyncio.Protocol):
    """The client's side of one proxied connection."""

    def __init__(self, proxy: LatencyProxy) -> None:
        self.proxy = proxy
        self.transport: asyncio.Transport | None = None
        self.upstream: asyncio.Transport | None = None
        self.held: collections.deque[tuple[float, bytes]] = collections.deque()
        self.timer: asyncio.TimerHandle | None = None
        self.released: collections.deque[float] = collections.deque()  # requests sent upstream, unanswered

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.pause_reading()
        self.connecting = asyncio.ensure_future(self._connect())  # held: the loop keeps only a weak reference

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            upstream, _ = await loop.create_connection(lambda: _Upstream(self), *self.proxy.upstream)
        except OSError:
            self.transport.close()
            return
        self.upstream = upstream
        if not self.transport.is_closing():
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        if data[:5] in _METHODS:
            self.proxy.requests += 1
        self.held.append((now, data))
        if self.timer is None:
            self._schedule()

    def _schedule(self) -> None:
        arrived = self.held[0][0]
        when = arrived + self.proxy.hold
        self.timer = asyncio.get_running_loop().call_at(when, self._release)

    def _release(self) -> None:
        self.timer = None
        now = time.monotonic()
        while self.held and now - self.held[0][0] >= self.proxy.hold - 1e-4:
            arrived, data = self.held.popleft()
            self.proxy.record_delay(now - arrived)
            if self.upstream is not None and not self.upstream.is_closing():
                self.upstream.write(data)
                if data[:5] in _METHODS:
                    self.released.append(now)
        if self.held:
            self._schedule()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if self.upstream is not None:
            self.upstream.close()


class _Upstream(asyncio.Protocol):
    def __init__(self, downstream: _Downstream) -> None:
        self.downstream = downstream

    def data_received(self, data: bytes) -> None:
        if data[:5] == b"HTTP/" and self.downstream.released:  # an answer's first chunk (keep-alive: in order)
            self.downstream.proxy.server_times.append(time.monotonic() - self.downstream.released.popleft())
        if self.downstream.transport is not None and not self.downstream.transport.is_closing():
            self.downstream.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.downstream.transport is not None:
            self.downstream.transport.close()


class LatencyProxy:
    def __init__(self, upstream_host: str, upstream_port: int, latency: float, host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.latency = latency
        self.host = host
        self.requests = 0  # chunks that start an HTTP request: one per request for small requests
        self.lateness = 0.0  # how late the loop's timers fire, on average (calibrated as chunks pass)
        self.delays = 0
        self.delay_total = 0.0
        self.server_times: list[float] = []  # seconds from a request's release to its answer's first chunk
        self.loop = _Loop.get()
        self._server = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _start(self) -> asyncio.Server:
        return await asyncio.get_running_loop().create_server(
            lambda: _Downstream(self), self.host, 0, backlog=512
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def hold(self) -> float:
        """How long a chunk is held: the latency, less how late the timers have been firing."""
        return max(self.latency - self.lateness, 0.0)

    @property
    def injected(self) -> float:
        """The mean delay actually added to a chunk so far, in seconds."""
        return self.delay_total / self.delays if self.delays else 0.0

    def record_delay(self, delay: float) -> None:
        self.delays += 1
        self.delay_total += delay
        if self.latency:
            # Exponential average of how far past the target the timer fired.
            self.lateness += 0.05 * ((delay - self.hold) - self.lateness)

    def stop(self) -> None:
        async def close() -> None:
            self._server.close()

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)

