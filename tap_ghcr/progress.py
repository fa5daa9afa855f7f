"""Progress lines on long syncs: records per stream, requests, rate-limit budget, waits."""

from __future__ import annotations

import logging
import threading
import time
import typing as t
from collections import Counter

INTERVAL_SECONDS = 15.0


class Progress:
    """Counts what a sync did; logs a line every INTERVAL_SECONDS and a summary at the end."""

    def __init__(self, logger: logging.Logger, registry_requests: t.Callable[[], int]) -> None:
        self.logger = logger
        self.registry_requests = registry_requests
        self.records: Counter[str] = Counter()
        self.rest_requests = 0
        self.rest_not_modified = 0
        self.rate_limit_remaining: str | None = None
        self.waits = 0
        self.waited_seconds = 0.0
        self.started = time.monotonic()
        self._last = self.started
        self._lock = threading.Lock()

    def record(self, stream: str, count: int = 1) -> None:
        with self._lock:
            self.records[stream] += count
        self._maybe_log()

    def rest(self, status: int, remaining: str | None) -> None:
        with self._lock:
            self.rest_requests += 1
            self.rest_not_modified += status == 304
            if remaining is not None:
                self.rate_limit_remaining = remaining
        self._maybe_log()

    def wait(self, seconds: float) -> None:
        with self._lock:
            self.waits += 1
            self.waited_seconds += seconds

    def line(self) -> str:
        records = ", ".join(f"{name} {count}" for name, count in sorted(self.records.items())) or "none"
        return (
            f"records: {records}; GitHub requests {self.rest_requests} ({self.rest_not_modified} not modified), "
            f"rate limit left {self.rate_limit_remaining or 'unknown'}; registry requests "
            f"{self.registry_requests()}; rate-limit waits {self.waits} ({self.waited_seconds:.0f} s); "
            f"elapsed {time.monotonic() - self.started:.1f} s"
        )

    def _maybe_log(self) -> None:
        now = time.monotonic()
        if now - self._last >= INTERVAL_SECONDS:
            self._last = now
            self.logger.info("progress: %s", self.line())

    def summary(self) -> None:
        self.logger.info("sync complete: %s", self.line())
