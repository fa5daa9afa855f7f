"""A TCP proxy that adds a fixed latency to every request, for the benchmark.

Byte-level (asyncio), so it costs little CPU and keeps HTTP keep-alive as it is:
each chunk the client sends waits `latency` seconds before it goes upstream,
which for small HTTP requests is one round trip's worth per request.
"""

from __future__ import annotations

import asyncio
import threading

_METHODS = {b"GET /", b"HEAD ", b"POST ", b"PUT /", b"DELET", b"PATCH"}


class LatencyProxy:
    def __init__(self, upstream_host: str, upstream_port: int, latency: float, host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.latency = latency
        self.host = host
        self.port = 0
        self.requests = 0  # chunks that start an HTTP request: one per request for small requests
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self._server = self.loop.run_until_complete(asyncio.start_server(self._handle, self.host, 0, backlog=512))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self.loop.run_forever()

    async def _shutdown(self) -> None:
        self._server.close()
        tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, delay: float) -> None:
            try:
                while chunk := await src.read(65536):
                    if delay:
                        if chunk[:5] in _METHODS:
                            self.requests += 1
                        await asyncio.sleep(delay)
                    dst.write(chunk)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer, self.latency), pipe(up_reader, writer, 0.0))

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
