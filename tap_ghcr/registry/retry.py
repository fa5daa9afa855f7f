"""Retrying what a registry may answer differently a moment later.

5xx, 429 (after its `Retry-After`), dropped connections and timeouts are
retried with exponential backoff and jitter; anything else is final.
"""

from __future__ import annotations

import logging
import os
import random
import typing as t

import backoff

from tap_ghcr.registry.transport import NETWORK_ERRORS, Response

RETRY_EXCEPTIONS = NETWORK_ERRORS
logger = logging.getLogger("tap-ghcr.registry")
# First retry wait; TAP_GHCR_RETRY_BASE shortens it in tests.
BASE_SECONDS = float(os.environ.get("TAP_GHCR_RETRY_BASE", "0.25"))


class RetryableAnswer(Exception):
    """An answer worth another try; carries how long the server asked us to wait."""

    def __init__(self, response: Response, wait: float | None) -> None:
        super().__init__(f"registry answered {response.status_code}")
        self.response = response
        self.wait = wait


def retry_after(response: Response) -> float | None:
    """Seconds from a `Retry-After` header given in seconds; None when absent or a date."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None


def _waits(base: float, cap: float) -> t.Generator[float, t.Any, None]:
    exc = yield 0.0
    attempt = 0
    while True:
        attempt += 1
        if isinstance(exc, RetryableAnswer) and exc.wait is not None:
            exc = yield exc.wait
        else:
            # Full jitter: anywhere up to the exponential ceiling.
            exc = yield random.uniform(base / 2, min(cap, base * 2**attempt))


def send_with_retries(
    send: t.Callable[[], Response],
    *,
    max_tries: int = 6,
    max_time: float = 300.0,
    base: float | None = None,
    cap: float = 20.0,
) -> Response:
    """Call `send` until it gives a final answer; the last answer is returned, not raised."""
    base = BASE_SECONDS if base is None else base

    def log_retry(details: t.Mapping[str, t.Any]) -> None:
        exc = details.get("exception")
        reason = f"status {exc.response.status_code}" if isinstance(exc, RetryableAnswer) else type(exc).__name__
        logger.info("registry request failed (%s); retry %d in %.2f s",
                    reason, details.get("tries", 0), details.get("wait", 0.0))

    @backoff.on_exception(
        lambda: _waits(base, cap),
        (RetryableAnswer, *RETRY_EXCEPTIONS),
        max_tries=max_tries,
        max_time=max_time,
        jitter=None,
        on_backoff=log_retry,
        logger=None,
    )
    def attempt() -> Response:
        response = send()
        if response.status_code == 429 or response.status_code >= 500:
            response.close()
            raise RetryableAnswer(response, retry_after(response))
        return response

    try:
        return attempt()
    except RetryableAnswer as exc:
        return exc.response
