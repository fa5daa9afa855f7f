"""The one retry policy of the tap, on `backoff`: the registry client and the GitHub streams both use it.

What is retried is decided by the caller (the exception types it passes, and
whether an exception carries a server-given wait); how often and how long is
decided here, by a `RetryPolicy` that is passed in, never read from the
environment. Like go-containerregistry's `retry.go`, the policy is a value:
tests build one with an injected `sleep` and count attempts without waiting.

A host that never answered (connection refused, DNS or TLS failure on the first
request) gets `first_contact_tries` short tries, so a wrong URL is reported in
seconds; a host that answered before keeps the full policy for dropped
connections.
"""

from __future__ import annotations

import email.utils
import math
import random
import threading
import time
import typing as t
from dataclasses import dataclass, field

import backoff

F = t.TypeVar("F", bound=t.Callable[..., t.Any])
T = t.TypeVar("T")


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` value: delta-seconds or an HTTP-date (RFC 9110, 10.2.3).

    None when absent or unreadable; never negative.
    """
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    now = time.time() if now is None else now
    return max(when.timestamp() - now, 0.0)


def _full_jitter(value: float) -> float:
    """Anywhere between half the ceiling and the ceiling: spread, but never a zero wait."""
    return random.uniform(value / 2, value)


@dataclass(frozen=True)
class RetryPolicy:
    """How many tries, how long between them, and how to wait (`sleep` is injectable)."""

    base: float = 0.5  # the first backoff ceiling; doubled each try
    cap: float = 30.0  # longest backoff wait (a server-given wait is not capped here)
    max_tries: int = 8
    max_time: float = 300.0
    first_contact_tries: int = 3  # tries for a host that has never answered
    first_contact_cap: float = 2.0
    sleep: t.Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)
    jitter: t.Callable[[float], float] = field(default=_full_jitter, repr=False, compare=False)

    def scaled(self, base: float) -> RetryPolicy:
        """The same policy with another first wait (tests shorten it through a hidden setting)."""
        factor = base / self.base if self.base else 0.0
        return RetryPolicy(base, self.cap * factor, self.max_tries, self.max_time, self.first_contact_tries,
                           self.first_contact_cap * factor, self.sleep, self.jitter)

    def wait_for(self, attempt: int, exc: BaseException, first_contact: bool) -> float | None:
        """Seconds before try `attempt + 1`, or None to give up (first-contact tries used up)."""
        if first_contact:
            if attempt >= self.first_contact_tries:
                return None
            return self.jitter(min(self.first_contact_cap, self.base * 2 ** (attempt - 1)))
        server_wait = getattr(exc, "retry_after", None)
        if server_wait is not None:
            return float(server_wait)
        return self.jitter(min(self.cap, self.base * 2 ** (attempt - 1)))

    def wrap(
        self,
        func: F,
        retry_on: tuple[type[BaseException], ...],
        *,
        on_retry: t.Callable[[BaseException, int, float], None] | None = None,
        first_contact: t.Callable[[BaseException], bool] = lambda exc: False,
        stop: threading.Event | None = None,
        max_time: float | None = None,
        giveup: t.Callable[[BaseException], bool] = lambda exc: False,
    ) -> F:
        """`func` retried on `retry_on` by this policy; the last exception is raised when it gives up.

        `on_retry(exc, tries, wait)` runs before each wait (to log it); `stop`, once set, ends
        retrying (a sync that already failed must not keep logging retries after its error line).
        """
        policy = self
        sleep = stop.wait if stop is not None and self.sleep is time.sleep else self.sleep  # stop cuts a wait short
        limit = self.max_time if max_time is None else max_time
        planned = threading.local()

        def waits() -> t.Generator[float, BaseException, None]:
            exc = yield 0.0  # primed by backoff
            attempt = 0
            while True:
                attempt += 1
                wait = policy.wait_for(attempt, exc, first_contact(exc))
                if wait is None or (stop is not None and stop.is_set()):
                    return  # backoff raises the last exception
                planned.wait = wait
                exc = yield 0.0  # the policy sleeps itself (in `before_wait`), so the sleep is injectable

        def before_wait(details: t.Mapping[str, t.Any]) -> None:
            wait = min(planned.wait, max(limit - details.get("elapsed", 0.0), 0.0))
            if on_retry is not None:
                on_retry(details["exception"], details.get("tries", 0), wait)
            sleep(wait)

        return t.cast(F, backoff.on_exception(
            waits,
            retry_on,
            max_tries=self.max_tries,
            max_time=limit,
            jitter=None,
            on_backoff=before_wait,
            giveup=giveup,
            logger=None,
        )(func))


    def call(
        self,
        func: t.Callable[[], T],
        retry_on: tuple[type[BaseException], ...],
        **options: t.Any,
    ) -> T:
        """`func()` under this policy (options as for `wrap`). The first try runs bare: the retry
        machinery is built only once something failed, which keeps thousands of small GETs cheap."""
        try:
            return func()
        except retry_on as exc:
            failed = [exc]

        def again() -> T:
            if failed:
                raise failed.pop()  # the first try's failure, counted as try 1
            return func()

        return self.wrap(again, retry_on, **options)()


#: The registry's policy: shorter first waits (a sync is thousands of small GETs), six tries.
REGISTRY_POLICY = RetryPolicy(base=0.25, cap=20.0, max_tries=6, max_time=300.0)
#: GitHub's: eight tries up to 30 s apart; rate-limit waits come from the answer itself.
GITHUB_POLICY = RetryPolicy(base=0.5, cap=30.0, max_tries=8, max_time=1200.0)
