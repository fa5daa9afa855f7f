"""HTTP for the registry client, on urllib3: one keep-alive pool shared by all threads, bounded reads.

Proxies follow the same environment rules as `requests` on the GitHub side
(HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, NO_PROXY with CIDR blocks and ports),
decided per request URL: the registry, its token realm and the blob storage
host each get the proxy the environment names for them. `requests.utils`
makes that decision, so both sides cannot drift apart. http:// and https://
proxies are supported; socks5:// / socks5h:// / socks4:// need PySocks.
TLS is always verified, against REQUESTS_CA_BUNDLE, SSL_CERT_FILE or CURL_CA_BUNDLE, else certifi
(the GitHub side uses the same file).
Redirects are left to the caller (see `redirect`).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import ssl
import threading
import time
import typing as t
import warnings
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

import certifi
import urllib3
from requests.utils import get_auth_from_url, get_environ_proxies, parse_header_links, select_proxy
from urllib3 import exceptions as u3

from tap_ghcr.redact import register_secret
from tap_ghcr.registry.errors import (
    ProxyAuthenticationError,
    RegistryError,
    RegistryUnreachableError,
    ResponseTooLargeError,
)
from tap_ghcr.registry.realm import shown

CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0
#: Token answers and error bodies are small; a larger one is refused (as go-containerregistry bounds them).
SMALL_BODY_LIMIT = 64 * 1024
#: No body may take longer than this to arrive, however steadily it trickles in (READ_TIMEOUT is per read):
#: a server sending one byte a second is given up on, as a temporary error (the package is tried next sync).
BODY_DEADLINE = 300.0
#: The same for a streamed blob, which may be large.
BLOB_DEADLINE = 1800.0
_CHUNK = 64 * 1024
#: A stale keep-alive connection (closed by the server while idle) is replaced at once, for idempotent methods.
_STALE_RETRY = urllib3.Retry(total=1, connect=0, read=1, status=0, other=0, redirect=0,
                             raise_on_redirect=False, raise_on_status=False, allowed_methods={"GET", "HEAD"})


class _NoRetryNoise(logging.Filter):
    """urllib3 logs its own stale-connection retry ("Retrying (Retry(total=0...") as a WARNING: that retry is
    an implementation detail (the policy's retries are logged by the client), so its line is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Retrying")


logging.getLogger("urllib3.connectionpool").addFilter(_NoRetryNoise())


class ProxyNotSupportedError(RegistryError):
    """The environment names a proxy this client cannot speak to (a SOCKS proxy without PySocks)."""


class SlowAnswerError(RegistryError):
    """A body still arriving after its deadline: temporary (tried again next sync), not retried now."""

    temporary = True  # type: ignore[assignment]


class CertificateError(RegistryUnreachableError):
    """The server's TLS certificate did not verify: not worth a retry."""

    temporary = False  # type: ignore[assignment]


class NetworkError(Exception):
    """No answer from `origin`: retried by the policy, then reported as unreachable.

    `first_contact` is True when this origin has never answered in this run: a wrong
    URL, a refused connection or an unknown host is then reported quickly.
    """

    def __init__(self, origin: str, reason: str, *, first_contact: bool) -> None:
        super().__init__(f"{origin}: {reason}")
        self.origin = origin
        self.reason = reason
        self.first_contact = first_contact


NETWORK_ERRORS: tuple[type[BaseException], ...] = (NetworkError,)


@dataclass
class Response:
    """The parts of an answer the client reads; `raw` is the unread body of a streamed answer."""

    status_code: int
    headers: t.Any  # urllib3.HTTPHeaderDict: case-insensitive
    content: bytes
    url: str
    raw: urllib3.BaseHTTPResponse | None = field(default=None, repr=False)
    note: str = ""  # said after the status in an error (e.g. a Retry-After too long to wait)

    @property
    def is_redirect(self) -> bool:
        return self.status_code in (301, 302, 303, 307, 308) and "Location" in self.headers

    @property
    def links(self) -> dict[str, dict[str, str]]:
        header = ", ".join(self.headers.getlist("Link") or [])
        if not header:
            return {}
        return {link.get("rel") or link["url"]: link for link in parse_header_links(header)}

    def json(self) -> t.Any:
        return json.loads(self.content)

    def close(self) -> None:
        """Release a streamed body's connection (without reading the rest)."""
        if self.raw is not None:
            self.raw.close()
            self.raw.release_conn()


CA_VARIABLES = ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE")


def ca_bundle() -> str:
    """The CA file for both sides: REQUESTS_CA_BUNDLE, SSL_CERT_FILE, CURL_CA_BUNDLE, else certifi's."""
    return next((os.environ[v] for v in CA_VARIABLES if os.environ.get(v)), None) or certifi.where()


def ca_problem() -> str | None:
    """Why the CA bundle the environment names cannot be used (missing, unreadable, no certificate); None if fine."""
    for variable in CA_VARIABLES:
        path = os.environ.get(variable)
        if not path:
            continue
        if os.path.isdir(path):
            return None  # a directory of hashed certificates: left to the TLS library
        try:
            ssl.create_default_context(cafile=path)
        except FileNotFoundError:
            return f"the CA bundle {path} ({variable}) does not exist"
        except (OSError, ssl.SSLError, ValueError) as exc:
            return f"the CA bundle {path} ({variable}) holds no usable certificate ({type(exc).__name__})"
        return None
    return None


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class Transport:
    """A PoolManager (direct) and one ProxyManager per distinct proxy, each with `max_workers` connections a host."""

    def __init__(self, max_workers: int, user_agent: str) -> None:
        problem = ca_problem()
        if problem:  # named now, once, not as a TLS failure on every request
            raise CertificateError(problem, reason=problem)
        self.user_agent = user_agent
        self._pool_kw: dict[str, t.Any] = {
            "num_pools": 32,
            "maxsize": max(max_workers, 1),
            "cert_reqs": ssl.CERT_REQUIRED,
            "ca_certs": ca_bundle(),
            "timeout": urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT),
            "retries": _STALE_RETRY,
        }
        self._direct = urllib3.PoolManager(**self._pool_kw)
        self._proxied: dict[str, urllib3.PoolManager] = {}
        self._routes: dict[str, tuple[urllib3.PoolManager, str | None, t.Any]] = {}  # origin -> manager, proxy, pool
        self._answered: set[str] = set()
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close every pooled connection."""
        with self._lock:
            managers = [self._direct, *self._proxied.values()]
        for manager in managers:
            manager.clear()

    def route(self, url: str) -> tuple[urllib3.PoolManager, str | None]:
        """The manager (and proxy URL, if any) for `url`, decided once per origin from the environment."""
        manager, proxy, _ = self._route(origin_of(url), url)
        return manager, proxy

    def _route(self, origin: str, url: str) -> tuple[urllib3.PoolManager, str | None, t.Any]:
        found = self._routes.get(origin)
        if found is not None:
            return found
        proxy = select_proxy(url, get_environ_proxies(url))
        with self._lock:
            if proxy is None:
                # Direct: the host's connection pool itself, so a request skips PoolManager's URL parsing.
                found = (self._direct, None, self._direct.connection_from_url(url))
            else:
                if proxy not in self._proxied:
                    self._proxied[proxy] = self._proxy_manager(proxy)
                found = (self._proxied[proxy], proxy, None)
            self._routes[origin] = found
        return found

    def _proxy_manager(self, proxy: str) -> urllib3.PoolManager:
        if "://" not in proxy:
            proxy = "http://" + proxy
        scheme = urlsplit(proxy).scheme.lower()
        username, password = get_auth_from_url(proxy)
        if scheme.startswith("socks"):
            try:
                with warnings.catch_warnings():  # urllib3 warns, then raises, without PySocks: one clear error
                    warnings.simplefilter("ignore")
                    from urllib3.contrib.socks import SOCKSProxyManager
            except ImportError:
                raise ProxyNotSupportedError(
                    f"the proxy {safe_proxy(proxy)} is a SOCKS proxy: install PySocks (pip install 'requests[socks]')"
                ) from None
            return SOCKSProxyManager(proxy, username=username or None, password=password or None, **self._pool_kw)
        if scheme not in ("http", "https"):
            raise ProxyNotSupportedError(
                f"the proxy {safe_proxy(proxy)} is a {scheme}:// URL, not http, https or socks")
        headers = None
        if username:
            pair = f"{username}:{password}".encode()
            headers = {"Proxy-Authorization": "Basic " + base64.b64encode(pair).decode()}
        return urllib3.ProxyManager(proxy, proxy_headers=headers, proxy_ssl_context=None, **self._pool_kw)

    def request(
        self,
        method: str,
        url: str,
        headers: t.Mapping[str, str] | None = None,
        *,
        params: t.Mapping[str, str] | None = None,
        basic_auth: tuple[str, str] | None = None,
        limit: int = SMALL_BODY_LIMIT,
        what: str = "",
        stream: bool = False,
    ) -> Response:
        """One exchange, no redirects followed. A body over `limit` bytes is refused (ResponseTooLargeError);
        error answers are bounded by SMALL_BODY_LIMIT. `stream` leaves a 2xx body unread in `raw`."""
        if params:
            url = f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"
        try:
            parts = urlsplit(url)
            origin = f"{parts.scheme}://{parts.netloc}"
            manager, proxy, pool = self._route(origin, url)
        except ValueError:  # a bad port, a broken IPv6 literal, an ftp:// redirect (urllib3's errors are ValueErrors)
            raise RegistryError(f"{what or 'request'}: {shown(url)} is not an http(s) URL this client can use") \
                from None
        all_headers = {"User-Agent": self.user_agent, **(headers or {})}
        if basic_auth:
            pair = f"{basic_auth[0]}:{basic_auth[1]}".encode()
            encoded = base64.b64encode(pair).decode()
            register_secret(encoded)  # an error body that echoes the header back must not print user:token
            all_headers["Authorization"] = "Basic " + encoded
        try:
            if pool is not None:
                try:
                    raw = pool.urlopen(method, url[len(origin):] or "/", headers=all_headers, redirect=False,
                                       assert_same_host=False, preload_content=False)
                except u3.ClosedPoolError:  # evicted from the manager: ask it again
                    self._routes.pop(origin, None)
                    raw = manager.urlopen(method, url, headers=all_headers, redirect=False, preload_content=False)
            else:
                raw = manager.urlopen(method, url, headers=all_headers, redirect=False, preload_content=False)
        except u3.HTTPError as exc:
            raise self._failure(url, proxy, exc) from None
        if origin not in self._answered:
            self._answered.add(origin)
        status = raw.status
        if status == 407 and proxy:
            raw.close()
            raw.release_conn()
            raise _proxy_auth(proxy, origin)
        if stream and 200 <= status < 300:
            return Response(status, raw.headers, b"", url, raw)
        if method == "HEAD":  # no body; its Content-Length is the resource's, not to be bounded here
            raw.drain_conn()
            raw.release_conn()
            return Response(status, raw.headers, b"", url)
        if status >= 300:  # an error page: its first SMALL_BODY_LIMIT bytes are enough, its status decides
            return Response(status, raw.headers, read_bounded(raw, SMALL_BODY_LIMIT, what or url, truncate=True,
                                                              origin=origin), url)
        return Response(status, raw.headers, read_bounded(raw, limit, what or url, origin=origin), url)

    def _failure(self, url: str, proxy: str | None, exc: BaseException) -> Exception:
        """A urllib3 failure as the error the client reports (final) or the policy retries (NetworkError)."""
        reason = exc.reason if isinstance(exc, u3.MaxRetryError) and exc.reason is not None else exc
        origin = origin_of(url)
        text = str(reason)
        if isinstance(reason, u3.ProxyError) and proxy_wants_credentials(text):
            return _proxy_auth(proxy or "", origin)
        if isinstance(reason, u3.SSLError) and "CERTIFICATE_VERIFY_FAILED" in text:
            detail = text.split("certificate verify failed:")[-1].split("(")[0].strip(" )'\"") or "not trusted"
            host = urlsplit(url).hostname
            return CertificateError(f"the TLS certificate of {host} did not verify ({detail})",
                                    origin=origin, reason="TLS certificate did not verify")
        first = origin not in self._answered and never_connected(reason)
        return NetworkError(origin, network_reason(reason, proxy), first_contact=first)


def proxy_wants_credentials(text: str) -> bool:
    """A tunnel refused with 407 (http.client: `Tunnel connection failed: 407 ...`): not any error text
    holding "407", which a port or a host name may (a refused connection to port 40712 was once read
    as a proxy asking for credentials)."""
    return "tunnel connection failed: 407" in text.lower()


def _proxy_auth(proxy: str, origin: str) -> ProxyAuthenticationError:
    reason = f"the proxy {safe_proxy(proxy)} asked for credentials (407): put user and password in the proxy URL"
    return ProxyAuthenticationError(f"{origin}: {reason}", origin=origin, reason=reason)


def read_bounded(raw: urllib3.BaseHTTPResponse, limit: int, what: str, *, truncate: bool = False,
                 origin: str = "", deadline: float | None = None) -> bytes:
    """The whole body, or ResponseTooLargeError once it passes `limit` bytes (the connection is dropped).

    `truncate` keeps the first `limit` bytes of a longer body instead (an error page, judged by its status).
    A body still arriving after `deadline` seconds (default BODY_DEADLINE) is SlowAnswerError."""
    length = raw.headers.get("Content-Length")
    where = origin or origin_of(getattr(raw, "url", "") or "")
    seconds = BODY_DEADLINE if deadline is None else deadline
    ends = time.monotonic() + seconds
    chunks: list[bytes] = []
    total = 0
    try:
        if not truncate and length is not None and int(length) > limit:
            _drop(raw)
            raise ResponseTooLargeError(f"{what}: the answer is {int(length)} bytes, over the {limit}-byte bound")
        while True:
            if time.monotonic() > ends:
                _drop(raw)
                raise SlowAnswerError(f"{what}: the answer from {where} took over {seconds:.0f} s to arrive; "
                                      "giving up on it for now")
            chunk = raw.read1(min(_CHUNK, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                _drop(raw)
                if truncate:
                    return b"".join(chunks)[:limit]
                raise ResponseTooLargeError(f"{what}: the answer is over the {limit}-byte bound")
    except ValueError:
        _drop(raw)
        raise ResponseTooLargeError(f"{what}: the answer has a bad Content-Length ({length!r})") from None
    except (u3.HTTPError, OSError) as exc:
        _drop(raw)
        reason = f"the answer broke off ({network_reason(exc)})"
        raise NetworkError(where, reason, first_contact=False) from None
    raw.release_conn()
    return b"".join(chunks)


def _drop(raw: urllib3.BaseHTTPResponse) -> None:
    raw.close()
    raw.release_conn()


def _innermost(exc: BaseException) -> BaseException:
    """urllib3's own error inside requests' wrapper and urllib3's MaxRetryError."""
    while exc.args and isinstance(exc.args[0], BaseException):
        exc = exc.args[0]
    if isinstance(exc, u3.MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    return exc


def never_connected(exc: BaseException) -> bool:
    """No connection was made at all: refused, unknown host, connect timeout or a failed TLS handshake.

    (A connection that was made and then dropped is another matter: that host is there.)"""
    inner = _innermost(exc)
    return isinstance(inner, (u3.NewConnectionError, u3.ConnectTimeoutError, u3.SSLError, ssl.SSLError)) or (
        isinstance(inner, u3.ProxyError) and isinstance(inner.original_error, u3.NewConnectionError))


def network_reason(exc: BaseException, proxy: str | None = None) -> str:
    """A few words for a log line: `connection refused`, `name not resolved`... (urllib3 or requests errors)."""
    exc = _innermost(exc)
    text = str(exc).lower()
    if proxy_wants_credentials(text):
        return "the proxy asked for credentials (407): put user and password in the proxy URL"
    via = f" (via proxy {safe_proxy(proxy)})" if proxy else ""
    if isinstance(exc, u3.NameResolutionError) or "name or service not known" in text or "nodename" in text:
        return "name not resolved" + via
    if "refused" in text:
        return "connection refused" + via
    if isinstance(exc, u3.ConnectTimeoutError):
        return "connect timed out" + via
    if isinstance(exc, u3.ReadTimeoutError) or "read timed out" in text:
        return "read timed out" + via
    if "certificate verify failed" in text:
        return "TLS certificate did not verify" + via
    if isinstance(exc, u3.SSLError) or "ssl" in text:
        return "TLS handshake failed" + via
    if isinstance(exc, u3.ProxyError):
        return f"the proxy failed{via}"
    return f"connection failed ({type(exc).__name__}){via}"


def safe_proxy(url: str) -> str:
    """A proxy URL without its user-info."""
    parts = urlsplit(url if "://" in url else "http://" + url)
    return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
