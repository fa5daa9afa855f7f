"""The GitHub REST base stream: auth, Link paging, rate limits and error mapping.

Streams built on it stay short declarations (the MeltanoLabs tap-github layout).
GitHub asks for serial REST requests, so nothing here is concurrent.
"""

from __future__ import annotations

import time
import typing as t
from dataclasses import dataclass

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.utils import get_environ_proxies, select_proxy
from singer_sdk.authenticators import BearerTokenAuthenticator, SimpleAuthenticator
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError
from singer_sdk.pagination import HeaderLinkPaginator
from singer_sdk.streams import RESTStream

from tap_ghcr.errors import (
    ConfigError,
    GitHubAuthError,
    GitHubConnectionError,
    GitHubNotFoundError,
    PackageVanishedError,
    RateLimitExceededError,
)
from tap_ghcr.redact import redact
from tap_ghcr.registry.retry import GITHUB_POLICY, RetryPolicy, retry_after_seconds
from tap_ghcr.registry.transport import (
    BODY_DEADLINE,
    CONNECT_TIMEOUT,
    READ_TIMEOUT,
    ca_bundle,
    ca_problem,
    network_reason,
    never_connected,
    proxy_wants_credentials,
    safe_proxy,
)
from tap_ghcr.settings import refused_token_note

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

API_VERSION = "2022-11-28"
SECONDARY_DEFAULT_WAIT = 60.0
# Below this many requests left, requests are spaced out until the reset.
LOW_BUDGET = 50


class RateLimitedError(RetriableAPIError):
    """A rate-limit answer: retried after `wait` seconds, not after a blind backoff."""

    def __init__(self, message: str, response: requests.Response, wait: float) -> None:
        super().__init__(message, response)
        self.wait = wait
        self.retry_after = wait  # what the retry policy waits instead of its backoff


def rate_limit_wait(response: requests.Response, now: float | None = None) -> tuple[str, float] | None:
    """Classify a 403/429 as (kind, seconds to wait), or None if it is no rate limit."""
    if response.status_code not in (403, 429):
        return None
    now = time.time() if now is None else now
    headers = response.headers
    if headers.get("retry-after") is not None:
        seconds = retry_after_seconds(headers["retry-after"], now)
        return "secondary", SECONDARY_DEFAULT_WAIT if seconds is None else seconds
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
    def timeout(self) -> tuple[float, float]:  # type: ignore[override]
        """10 s to connect, 60 s between bytes: the registry side's timeouts."""
        return (CONNECT_TIMEOUT, READ_TIMEOUT)

    @property
    def requests_session(self) -> requests.Session:
        """The SDK's session, set up once: CA bundle from the environment (the SDK's `session.send` skips
        requests' environment merging for `verify`), and the bounded adapter for both schemes."""
        session = super().requests_session
        if not isinstance(session.get_adapter("https://x"), BoundedAdapter):
            problem = ca_problem()
            if problem:
                raise ConfigError(problem)
            session.verify = ca_bundle()
            adapter = BoundedAdapter()
            session.mount("https://", adapter)
            session.mount("http://", adapter)
        return session

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
        _answered(self._tap).add("/".join(str(response.url).split("/")[:3]))  # any answer: the host is there
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
        if status == 407:
            origin = "/".join(str(response.url).split("/")[:3])
            raise GitHubConnectionError(
                f"could not connect to {origin} (api_url): the proxy asked for credentials (407): "
                "put user and password in the proxy URL"
            )
        message = redact(_github_message(response))
        note = refused_token_note(self._tap.token) if status in (401, 403) else None  # type: ignore[attr-defined]
        if status == 401:
            raise GitHubAuthError(f"GitHub rejected the token (401 {message}): " + (
                note or "set a valid `token` (or GITHUB_TOKEN) with the read:packages scope"))
        if status == 403:
            raise GitHubAuthError(f"GitHub refused access to {path} (403 {message}): " + (
                note or "the token needs the read:packages scope (a classic PAT; fine-grained tokens cannot read "
                        "packages)"))
        if status == 404:
            raise GitHubNotFoundError(
                f"{self.not_found_hint} not found at {path} (404): check the name, "
                "and that the token can see it"
            )
        if status >= 500 or status in self.extra_retry_statuses:
            raise RetriableAPIError(f"GitHub answered {status} for {path}", response)
        raise FatalAPIError(f"GitHub answered {status} for {path}: {message}")

    # Retries: the tap's one RetryPolicy (tap_ghcr.registry.retry), shared with the registry client ----

    RETRY_ON: t.ClassVar[tuple[type[BaseException], ...]] = (
        ConnectionResetError,
        RetriableAPIError,
        requests.exceptions.Timeout,
        requests.exceptions.ConnectionError,
        requests.exceptions.ChunkedEncodingError,
        requests.exceptions.ContentDecodingError,
    )

    @property
    def retry_policy(self) -> RetryPolicy:
        return getattr(self._tap, "retry_policy", GITHUB_POLICY)

    def backoff_max_tries(self) -> int:
        return self.retry_policy.max_tries

    def request_decorator(self, func: t.Callable) -> t.Callable:
        """The policy's retries, bounded in time too; a host that never answered fails in seconds,
        as one `could not connect to ... (api_url)` error."""
        retrying = self.retry_policy.wrap(
            func,
            self.RETRY_ON,
            on_retry=self._log_retry,
            first_contact=self._first_contact,
            max_time=float(self.config.get("max_rate_limit_wait", 900)) + 300.0,
            giveup=_final,
        )

        def call(*args: t.Any, **kwargs: t.Any) -> t.Any:
            try:
                return retrying(*args, **kwargs)
            except requests.exceptions.ConnectionError as exc:
                url = getattr(exc.request, "url", None) or self.url_base
                origin = "/".join(str(url).split("/")[:3])
                raise GitHubConnectionError(
                    f"could not connect to {origin} (api_url): {network_reason(exc, proxy_for(str(url)))}"
                ) from None

        return call

    def _first_contact(self, exc: BaseException) -> bool:
        """A connection error from a host that has not answered once in this run."""
        if not isinstance(exc, requests.exceptions.ConnectionError) or not never_connected(exc):
            return False
        url = getattr(exc.request, "url", None) or self.url_base
        return "/".join(str(url).split("/")[:3]) not in _answered(self._tap)

    def _log_retry(self, exc: BaseException, tries: int, wait: float) -> None:
        if isinstance(exc, RateLimitedError):
            return  # already logged with its reason
        status = getattr(getattr(exc, "response", None), "status_code", None)
        reason = status or (network_reason(exc) if isinstance(exc, requests.RequestException) else type(exc).__name__)
        self.logger.warning("GitHub request failed (%s); retry %d in %.1f s", reason, tries, wait)


#: A GitHub list page is 100 small objects; a body past this is no GitHub answer (an endless body once
#: grew the tap to 3 GB).
MAX_PAGE_BYTES = 16 * 1024 * 1024


def proxy_for(url: str) -> str | None:
    """The proxy the environment names for `url` (the same rule on both sides), or None."""
    try:
        return select_proxy(url, get_environ_proxies(url))
    except ValueError:
        return None


class BoundedAdapter(HTTPAdapter):
    """Reads each GitHub answer itself: at most MAX_PAGE_BYTES, within BODY_DEADLINE, and says which proxy
    it cannot use (a proxy URL without a scheme is taken as http://, as on the registry side)."""

    def send(self, request: requests.PreparedRequest, stream: bool = False, **kwargs: t.Any) -> requests.Response:
        proxies = {key: value if not value or "://" in value else "http://" + value
                   for key, value in (kwargs.pop("proxies", None) or {}).items()}
        proxy = select_proxy(request.url or "", proxies)
        if proxy and proxy.lower().startswith("socks"):
            try:
                import socks  # type: ignore[import-untyped]  # noqa: F401
            except ImportError:
                raise GitHubConnectionError(
                    f"the proxy {safe_proxy(proxy)} is a SOCKS proxy: install PySocks (pip install 'requests[socks]')"
                ) from None
        response = super().send(request, stream=True, proxies=proxies, **kwargs)
        if stream:
            return response
        origin = "/".join(str(request.url).split("/")[:3])
        ends = time.monotonic() + BODY_DEADLINE
        chunks: list[bytes] = []
        total = 0
        try:
            while chunk := response.raw.read1(64 * 1024, decode_content=True):
                total += len(chunk)
                if total > MAX_PAGE_BYTES:
                    raise GitHubConnectionError(
                        f"{origin} (api_url) sent an answer over {MAX_PAGE_BYTES} bytes for "
                        f"{redact(request.path_url.split('?')[0])}: is api_url a GitHub API?")
                if time.monotonic() > ends:
                    raise GitHubConnectionError(
                        f"{origin} (api_url) took over {BODY_DEADLINE:.0f} s to send "
                        f"{redact(request.path_url.split('?')[0])}; giving up")
                chunks.append(chunk)
        except GitHubConnectionError:
            response.close()
            raise
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            response.close()
            raise requests.exceptions.ChunkedEncodingError(exc, request=request) from None
        response._content = b"".join(chunks)  # what requests does when it reads the body itself
        response._content_consumed = True
        response.raw.release_conn()
        return response


def _final(exc: BaseException) -> bool:
    """Not worth another try: a proxy's 407, a certificate that does not verify."""
    if isinstance(exc, requests.exceptions.ProxyError) and proxy_wants_credentials(str(exc)):
        return True
    return isinstance(exc, requests.exceptions.SSLError) and "CERTIFICATE_VERIFY_FAILED" in str(exc)


def _answered(tap: t.Any) -> set[str]:
    """Origins (`scheme://host:port`) that have answered this tap at least once."""
    found = tap.__dict__.get("answered_origins")
    if found is None:
        found = tap.__dict__.setdefault("answered_origins", set())
    return found


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

    def iter_pages(self: t.Any, context: Context | None, cached: list[list], *,
                   max_pages: int | None = None) -> t.Iterator[Page]:
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
                    policy = self.retry_policy
                    policy.sleep(min(policy.cap, policy.base * 2**attempt))
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
            if not more or number == max_pages:
                return
            number += 1


def remember_pages(pages: list[Page], cached: list[list]) -> list[list]:
    """The `[etag, count]` list to store after a complete walk."""
    out = []
    for page in pages[:MAX_ETAG_PAGES]:
        count = len(page.rows) if page.rows is not None else cached[page.number - 1][1]
        out.append([page.etag, count])
    return out
