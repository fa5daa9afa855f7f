"""What a redirect may carry: `Authorization` never goes to another host, nor from https to http.

ghcr.io sends blob downloads to a storage host that must not see our token;
a downgrade to plain http would send it in clear text (RFC 9110, 15.4 leaves
the choice to the client; `requests` strips it the same way).
"""

from __future__ import annotations

import typing as t
from urllib.parse import urlsplit

MAX_REDIRECTS = 5


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return (parts.hostname or "").lower(), parts.port or (443 if parts.scheme == "https" else 80)


def keeps_credentials(from_url: str, to_url: str) -> bool:
    """True only for a redirect to the same host and port that does not leave https."""
    if urlsplit(from_url).scheme == "https" and urlsplit(to_url).scheme != "https":
        return False
    return _host_port(from_url) == _host_port(to_url)


def headers_for(from_url: str, to_url: str, headers: t.Mapping[str, str]) -> dict[str, str]:
    """The headers to send to `to_url`: without `Authorization` unless `keeps_credentials`."""
    if keeps_credentials(from_url, to_url):
        return dict(headers)
    return {k: v for k, v in headers.items() if k.lower() != "authorization"}
