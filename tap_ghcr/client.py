"""The GitHub REST base stream: auth, Link paging, rate limits and error mapping.

Streams built on it stay short declarations (the MeltanoLabs tap-github layout).
GitHub asks for serial REST requests, so nothing here is concurrent.
"""

from __future__ import annotations

import os
import time
import typing as t
from dataclasses import dataclass

import backoff
import requests
from singer_sdk.authenticators import BearerTokenAuthenticator, SimpleAuthenticator
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError
from singer_sdk.pagination import HeaderLinkPaginator
from singer_sdk.streams import RESTStream

from tap_ghcr.errors import (
    GitHubAuthError,
    GitHubNotFoundError,
    PackageVanishedError,
    RateLimitExceededError,
)
from tap_ghcr.redact import redact

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

API_VERSION = "2022-11-28"
SECONDARY_DEFAULT_WAIT = 60.0
# First retry wait; doubled each try. TAP_GHCR_RETRY_BASE shortens it in tests.
RETRY_BASE_SECONDS = float(os.environ.get("TAP_GHCR_RETRY_BASE", "0.5"))
# Below this many requests left, requests are spaced out until the reset.
LOW_BUDGET = 50


class RateLimitedError(RetriableAPIError):
    """A rate-limit answer: retried after `wait` seconds, not after a blind backoff."""

    def __init__(self, message: str, response: requests.Response, wait: float) -> None:
        super().__init__(message, response)
        self.wait = wait


def rate_limit_wait(response: requests.Response, now: float | None = None) -> tuple[str, float] | None:
    """Classify a 403/429 as (kind, seconds to wait), or None if it is no rate limit."""
    if response.status_code not in (403, 429):
        return None
    now = time.time() if now is None else now
    headers = response.headers
    retry_after = headers.get("retry-after")
    if retry_after is not None:
        try:
            return "secondary", max(float(retry_after), 0.0)
        except ValueError:
            return "secondary", SECONDARY_DEFAULT_WAIT
    if headers.get("x-ratelimit-remaining") == "0":
        reset = headers.get("x-ratelimit-reset")
        try:
            return "primary", max(float(reset) - now, 0.0) + 1.0
        except (TypeError, ValueError):
            return "primary", SECONDARY_DEFAULT_WAIT
    body = response.text[:2000].lower()
    if "secondary rate limit" in body or "abuse" in body:
        return "secondary", SECONDARY_DEFAULT_WAIT
    if response.status_code == 429:
        return "secondary", SECONDARY_DEFAULT_WAIT
    return None


def _github_message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.reason or ""
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"]
    return response.reason or ""


class GitHubStream(RESTStream):
    """Base for GitHub REST list endpoints."""

    records_jsonpath = "$[*]"
    extra_retry_statuses: t.ClassVar = [429]
    #: Subclasses name what a 404 means for them (an owner, a package...).
    not_found_hint = "the resource"

    @property
    def url_base(self) -> str:
        return str(self.config.get("api_url") or "https://api.github.com").rstrip("/")

    @property
    def authenticator(self) -> BearerTokenAuthenticator | SimpleAuthenticator:
        token = self._tap.token  # type: ignore[attr-defined]
        if token:
            return BearerTokenAuthenticator(token=token)
        return SimpleAuthenticator()

    @property
    def http_headers(self) -> dict:
        return {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": "tap-ghcr",
        }

    @property
    def timeout(self) -> int:
        return 60

    def get_new_paginator(self) -> HeaderLinkPaginator:
        """Required by the SDK; the streams page with `iter_pages` instead, to send ETags."""
        return HeaderLinkPaginator()

    def base_params(self, context: Context | None) -> dict[str, t.Any]:
        """Query parameters of every page of the list (paging ones are added per page)."""
        return {}

    def get_url(self, context: Context | None) -> str:
        return self.url_base + self.get_path(context)

    def get_path(self, context: Context | None) -> str:
        """The endpoint path; contexts decide it, so streams override this."""
        return self.path or ""

    # Errors and rate limits -------------------------------------------------

    def _request(self, prepared_request: requests.PreparedRequest, context: Context | None) -> requests.Response:
        response = super()._request(prepared_request, context)
        self._tap.progress.rest(response.status_code, response.headers.get("x-ratelimit-remaining"))  # type: ignore[attr-defined]
        self._pace(response)
        return response

    def _pace(self, response: requests.Response) -> None:
        """Spread the last requests of the hour so GitHub never has to say no."""
        remaining = response.headers.get("x-ratelimit-remaining")
        reset = response.headers.get("x-ratelimit-reset")
        if remaining is None or reset is None:
            return
        try:
            left, reset_at = int(remaining), float(reset)
        except ValueError:
            return
        if 0 < left < LOW_BUDGET:
            delay = min(max(reset_at - time.time(), 0.0) / left, float(self.config.get("max_rate_limit_wait", 900)))
            if delay > 0:
                self.logger.info(
                    "GitHub rate limit low (%d requests left): pausing %.1f s", left, delay
                )
                self._tap.progress.wait(delay)  # type: ignore[attr-defined]
                time.sleep(delay)

    def validate_response(self, response: requests.Response) -> None:
        status = response.status_code
        if status < 400:
            return
        limited = rate_limit_wait(response)
        if limited is not None:
            kind, wait = limited
            max_wait = float(self.config.get("max_rate_limit_wait", 900))
            if wait > max_wait:
                raise RateLimitExceededError(
                    f"GitHub {kind} rate limit reached; it resets in {wait:.0f} s, longer than "
                    f"max_rate_limit_wait ({max_wait:.0f} s). Run later or raise the setting."
                )
            self.logger.info("GitHub %s rate limit: waiting %.1f s before retrying", kind, wait)
            self._tap.progress.wait(wait)  # type: ignore[attr-defined]
            raise RateLimitedError(f"{kind} rate limit", response, wait)
        path = redact(response.request.path_url.split("?")[0]) if response.request else ""
        message = redact(_github_message(response))
        if status == 401:
            raise GitHubAuthError(
                f"GitHub rejected the token (401 {message}): set a valid `token` "
                "(or GITHUB_TOKEN) with the read:packages scope"
            )
        if status == 403:
            raise GitHubAuthError(
                f"GitHub refused access to {path} (403 {message}): the token needs the "
                "read:packages scope (a classic PAT; fine-grained tokens cannot read packages)"
            )
        if status == 404:
            raise GitHubNotFoundError(
                f"{self.not_found_hint} not found at {path} (404): check the name, "
                "and that the token can see it"
            )
        if status >= 500 or status in self.extra_retry_statuses:
            raise RetriableAPIError(f"GitHub answered {status} for {path}", response)
        raise FatalAPIError(f"GitHub answered {status} for {path}: {message}")

    def backoff_wait_generator(self) -> t.Generator[float, t.Any, None]:
        """Wait what a rate limit asks; otherwise exponential (jitter added by backoff)."""
        def waits() -> t.Generator[float, t.Any, None]:
            exc = yield 0.0  # primed by backoff with send(None)
            attempt = 0
            while True:
                if isinstance(exc, RateLimitedError):
                    exc = yield exc.wait
                else:
                    attempt += 1
                    exc = yield min(RETRY_BASE_SECONDS * 2**attempt, 30.0)
        return waits()

    def backoff_max_tries(self) -> int:
        return 8

    def request_decorator(self, func: t.Callable) -> t.Callable:
        """The SDK's retry policy, bounded in time as well as in tries."""
        return backoff.on_exception(
            self.backoff_wait_generator,
            (
                ConnectionResetError,
                RetriableAPIError,
                requests.exceptions.Timeout,
                requests.exceptions.ConnectionError,
                requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError,
            ),
            max_tries=self.backoff_max_tries,
            max_time=float(self.config.get("max_rate_limit_wait", 900)) + 300.0,
            on_backoff=self.backoff_handler,
            jitter=self.backoff_jitter,
            logger=None,
        )(func)

    def backoff_jitter(self, value: float) -> float:
        import random

        return value + random.uniform(0, min(1.0, value / 4 + 0.05))

    def backoff_handler(self, details: t.Mapping[str, t.Any]) -> None:
        exc = details.get("exception")
        if isinstance(exc, RateLimitedError):
            return  # already logged with its reason
        status = getattr(getattr(exc, "response", None), "status_code", None)
        self.logger.warning(
            "GitHub request failed (%s); retry %d in %.1f s",
            status or type(exc).__name__,
            details.get("tries", 0),
            details.get("wait", 0.0),
        )


@dataclass
class Page:
    """One list page: `rows` is None when GitHub answered 304 (nothing changed)."""

    number: int
    rows: list[dict] | None
    etag: str | None


# ETags are kept for at most this many pages per list (100 items each): state stays bounded.
MAX_ETAG_PAGES = 50
PER_PAGE = 100


class ConditionalPagesMixin:
    """Walks a list page by page number with `If-None-Match`, so unchanged pages cost a 304.

    GitHub does not count a 304 against the rate limit. A 304 carries no `Link`,
    so pages are addressed by number; `cached` holds `[etag, row count]` per page
    from the last complete sync.
    """

    #: A list that answers 404 this many times in a row has vanished (None: a 404 is the user's error).
    #: GitHub's listings are eventually consistent, so one 404 mid-listing is not yet proof.
    vanished_after_404s: int | None = None

    def iter_pages(self: t.Any, context: Context | None, cached: list[list]) -> t.Iterator[Page]:
        decorated = self.request_decorator(self._request)

        def call(request: t.Any, context: Context | None) -> t.Any:
            tries = self.vanished_after_404s
            for attempt in range(1, (tries or 1) + 1):
                try:
                    return decorated(request, context)
                except GitHubNotFoundError as exc:
                    if tries is None:
                        raise
                    if attempt == tries:
                        raise PackageVanishedError(str(exc)) from None
                    time.sleep(RETRY_BASE_SECONDS * 2**attempt)
            raise AssertionError("unreachable")

        number = 1
        while True:
            params = {**self.base_params(context), "per_page": PER_PAGE, "page": number}
            known = cached[number - 1] if number <= len(cached) else None
            headers = {**self.http_headers}
            if known and known[0]:
                headers["If-None-Match"] = known[0]
            request = self.build_prepared_request(
                method="GET", url=self.get_url(context), params=params, headers=headers
            )
            response = call(request, context)
            if response.status_code == 304:
                # Unchanged. Go on while older pages are known; one past a full last page too.
                assert known is not None
                more = number < len(cached) or known[1] >= PER_PAGE
                yield Page(number, None, known[0])
            else:
                rows = response.json()
                more = "next" in response.links
                yield Page(number, rows, response.headers.get("ETag"))
            if not more:
                return
            number += 1


def remember_pages(pages: list[Page], cached: list[list]) -> list[list]:
    """The `[etag, count]` list to store after a complete walk."""
    out = []
    for page in pages[:MAX_ETAG_PAGES]:
        count = len(page.rows) if page.rows is not None else cached[page.number - 1][1]
        out.append([page.etag, count])
    return out
