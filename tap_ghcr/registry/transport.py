"""HTTP for the registry client: one thread-safe urllib3 pool, redirects left to the caller.

urllib3 directly, not requests: a registry sync is thousands of small GETs and
requests' per-call work (environment, netrc and proxy look-ups, hooks) cost
about three times the CPU (measured with py-spy --gil, see README).
Proxies and CA bundles from the environment are read once, at start.
"""

from __future__ import annotations

import json
import os
import typing as t
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

import certifi
import urllib3
from requests.utils import parse_header_links

TIMEOUT = urllib3.Timeout(connect=10.0, read=60.0)
# Transient transport failures: retried by `retry`, then reported as unreachable.
NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    urllib3.exceptions.ProtocolError,
    urllib3.exceptions.TimeoutError,
    urllib3.exceptions.NewConnectionError,
    urllib3.exceptions.MaxRetryError,
    urllib3.exceptions.ProxyError,
    ConnectionError,
    TimeoutError,
)


@dataclass
class Response:
    """The parts of an answer the client reads."""

    status_code: int
    headers: t.Mapping[str, str]  # case-insensitive (urllib3's HTTPHeaderDict)
    content: bytes
    url: str

    @property
    def is_redirect(self) -> bool:
        return self.status_code in (301, 302, 303, 307, 308) and "Location" in self.headers

    @property
    def links(self) -> dict[str, dict[str, str]]:
        header = self.headers.get("Link")
        if not header:
            return {}
        return {link.get("rel") or link["url"]: link for link in parse_header_links(header)}

    def json(self) -> t.Any:
        return json.loads(self.content)

    def close(self) -> None:
        """Bodies are read eagerly; nothing to release."""


class Transport:
    """A pool of `max_workers` connections per host, shared by all threads."""

    def __init__(self, max_workers: int, user_agent: str, proxy_for: str | None = None) -> None:
        ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE") or certifi.where()
        options: dict[str, t.Any] = {
            "num_pools": 16, "maxsize": max(max_workers, 1), "block": False,
            "headers": {"User-Agent": user_agent}, "cert_reqs": "CERT_REQUIRED", "ca_certs": ca_bundle,
        }
        proxy = _proxy_for(proxy_for) if proxy_for else None
        self.pool: urllib3.PoolManager = (
            urllib3.ProxyManager(proxy, **options) if proxy else urllib3.PoolManager(**options)
        )

    def request(
        self,
        method: str,
        url: str,
        headers: t.Mapping[str, str] | None = None,
        *,
        params: t.Mapping[str, str] | None = None,
        basic_auth: tuple[str, str] | None = None,
    ) -> Response:
        if params:
            url = f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"
        all_headers = dict(headers or {})
        if basic_auth:
            all_headers.update(urllib3.make_headers(basic_auth=f"{basic_auth[0]}:{basic_auth[1]}"))
        answer = self.pool.request(
            method, url, headers=all_headers, redirect=False, retries=False, timeout=TIMEOUT, preload_content=True
        )
        return Response(answer.status, answer.headers, answer.data, url)


def _proxy_for(url: str) -> str | None:
    """The environment's proxy for `url` (HTTPS_PROXY / HTTP_PROXY / NO_PROXY), read once."""
    parts = urlsplit(url)
    if parts.hostname and urllib.request.proxy_bypass(parts.hostname):
        return None
    return urllib.request.getproxies().get(parts.scheme)
