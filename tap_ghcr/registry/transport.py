"""HTTP for the registry client: keep-alive connections shared by all threads, redirects left to the caller.

The standard library's `http.client` with a small pool of idle connections per
host, not requests or urllib3: a registry sync is thousands of small GETs, the
tap's CPU per request sets how far above the network floor a sync runs, and
each layer costs (CPU per manifest GET, measured: http.client 0.35 ms,
urllib3 0.6-0.85 ms, requests about three times urllib3; see README).
TLS is always verified; proxies and CA bundles come from the environment, read once.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import ssl
import threading
import typing as t
import urllib.request
from dataclasses import dataclass
from urllib.parse import unquote, urlencode, urlsplit

import certifi
from requests.utils import parse_header_links

from tap_ghcr.registry.errors import RegistryError, RegistryUnreachableError

CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0
# Transient transport failures: retried by `retry`, then reported as unreachable. A certificate that
# does not verify is not transient (see CertificateError).
NETWORK_ERRORS: tuple[type[BaseException], ...] = (http.client.HTTPException, OSError)


class ProxyNotSupportedError(RegistryError):
    """The environment names a proxy this client cannot speak to."""


class CertificateError(RegistryUnreachableError):
    """The server's TLS certificate did not verify: not worth a retry."""


@dataclass
class Response:
    """The parts of an answer the client reads."""

    status_code: int
    headers: http.client.HTTPMessage  # case-insensitive
    content: bytes
    url: str

    @property
    def is_redirect(self) -> bool:
        return self.status_code in (301, 302, 303, 307, 308) and "Location" in self.headers

    @property
    def links(self) -> dict[str, dict[str, str]]:
        header = ", ".join(self.headers.get_all("Link") or [])
        if not header:
            return {}
        return {link.get("rel") or link["url"]: link for link in parse_header_links(header)}

    def json(self) -> t.Any:
        return json.loads(self.content)

    def close(self) -> None:
        """Bodies are read eagerly; nothing to release."""


Origin = tuple[str, str, int]  # scheme, host, port


class Transport:
    """Up to `max_workers` idle keep-alive connections per host, shared by all threads."""

    def __init__(self, max_workers: int, user_agent: str, proxy_for: str | None = None) -> None:
        ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE") or certifi.where()
        self.tls = ssl.create_default_context(cafile=ca_bundle)
        self.user_agent = user_agent
        self.max_idle = max(max_workers, 1)
        proxy = _proxy_for(proxy_for) if proxy_for else None
        self.proxy = urlsplit(proxy) if proxy else None
        if self.proxy and self.proxy.scheme != "http":
            raise ProxyNotSupportedError(
                f"the proxy for {urlsplit(proxy_for or '').hostname} is a {self.proxy.scheme}:// URL; the registry "
                "client reaches proxies over http:// (https:// traffic still goes through a CONNECT tunnel)"
            )
        self._idle: dict[Origin, list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()

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
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url}")
        origin = (parts.scheme, parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if self.proxy and parts.scheme == "http":
            target = url  # a plain-HTTP proxy takes the absolute URL
        all_headers = {"User-Agent": self.user_agent, **(headers or {})}
        if basic_auth:
            pair = f"{basic_auth[0]}:{basic_auth[1]}".encode()
            all_headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        if self.proxy and parts.scheme == "http" and (auth := _proxy_authorization(self.proxy)):
            all_headers["Proxy-Authorization"] = auth

        conn, reused = self._checkout(origin)
        while True:
            try:
                answer, body = _exchange(conn, method, target, all_headers)
                break
            except NETWORK_ERRORS:
                conn.close()
                if not reused:
                    raise
                # The server closed a keep-alive connection while it sat idle: a fresh one, once.
                conn, reused = self._new(origin), False
        if answer.will_close:
            conn.close()
        else:
            self._checkin(origin, conn)
        return Response(answer.status, answer.headers, body, url)

    def close(self) -> None:
        """Close every idle connection (a finished sync leaves no socket behind)."""
        with self._lock:
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()

    def _checkout(self, origin: Origin) -> tuple[http.client.HTTPConnection, bool]:
        with self._lock:
            idle = self._idle.get(origin)
            if idle:
                return idle.pop(), True
        return self._new(origin), False

    def _checkin(self, origin: Origin, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault(origin, [])
            if len(idle) < self.max_idle:
                idle.append(conn)
                return
        conn.close()

    def _new(self, origin: Origin) -> http.client.HTTPConnection:
        scheme, host, port = origin
        conn: http.client.HTTPConnection
        if self.proxy:  # spoken to over plain HTTP: absolute URLs for http, a CONNECT tunnel for https
            proxy_host, proxy_port = self.proxy.hostname or "", self.proxy.port or 80
            if scheme == "https":
                conn = http.client.HTTPSConnection(proxy_host, proxy_port, timeout=CONNECT_TIMEOUT, context=self.tls)
                auth = _proxy_authorization(self.proxy)
                conn.set_tunnel(host, port, headers={"Proxy-Authorization": auth} if auth else None)
            else:
                conn = http.client.HTTPConnection(proxy_host, proxy_port, timeout=CONNECT_TIMEOUT)
        elif scheme == "https":
            conn = http.client.HTTPSConnection(host, port, timeout=CONNECT_TIMEOUT, context=self.tls)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=CONNECT_TIMEOUT)
        try:
            conn.connect()
        except ssl.SSLCertVerificationError as exc:
            conn.close()
            reason = exc.verify_message or exc
            raise CertificateError(f"the TLS certificate of {host} did not verify ({reason})") from None
        if conn.sock is not None:
            conn.sock.settimeout(READ_TIMEOUT)
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn


def _exchange(
    conn: http.client.HTTPConnection, method: str, target: str, headers: dict[str, str]
) -> tuple[http.client.HTTPResponse, bytes]:
    conn.request(method, target, headers=headers)
    answer = conn.getresponse()
    return answer, answer.read()


def _proxy_authorization(proxy: t.Any) -> str | None:
    if not proxy.username:
        return None
    pair = f"{unquote(proxy.username)}:{unquote(proxy.password or '')}".encode()
    return "Basic " + base64.b64encode(pair).decode()


def _proxy_for(url: str) -> str | None:
    """The environment's proxy for `url` (HTTPS_PROXY / HTTP_PROXY / NO_PROXY), read once."""
    parts = urlsplit(url)
    if parts.hostname and urllib.request.proxy_bypass(parts.hostname):
        return None
    return urllib.request.getproxies().get(parts.scheme)
