"""What a redirect may carry: `Authorization` never goes to another host, nor from https to http.

ghcr.io sends blob downloads to a storage host that must not see our token;
a downgrade to plain http would send it in clear text (RFC 9110, 15.4 leaves
the choice to the client; `requests` strips it the same way).
"""

from __future__ import annotations

import typing as t
from urllib.parse import urljoin

from tap_ghcr.registry.realm import parse_authority

if t.TYPE_CHECKING:
    from urllib3.util import Url

MAX_REDIRECTS = 5


def _host_port(url: str, parts: Url) -> tuple[str, int] | None:
    """Host and port as urllib3 connects to them; None for a URL with user-info, a backslash or no host."""
    if "\\" in url or parts.auth is not None or not parts.host:
        return None
    return parts.host.lower(), parts.port or (443 if parts.scheme == "https" else 80)


def keeps_credentials(from_url: str, to_url: str) -> bool:
    """True only for a redirect to the same host and port that does not leave https (URLs read as urllib3
    reads them: `https://evil\\@ghcr.io/` is `evil`, and gets nothing)."""
    source, target = parse_authority(from_url), parse_authority(to_url)
    if source is None or target is None:
        return False
    if (source.scheme or "").lower() == "https" and (target.scheme or "").lower() != "https":
        return False
    here = _host_port(from_url, source)
    return here is not None and here == _host_port(to_url, target)


def headers_for(from_url: str, to_url: str, headers: t.Mapping[str, str]) -> dict[str, str]:
    """The headers to send to `to_url`: without `Authorization` unless `keeps_credentials`."""
    if keeps_credentials(from_url, to_url):
        return dict(headers)
    return {k: v for k, v in headers.items() if k.lower() != "authorization"}


def target_of(url: str, location: str, what: str) -> str:
    """Where a redirect from `url` to `location` goes; a Location no URL parser can read is a RegistryError."""
    from tap_ghcr.registry.errors import RegistryError
    from tap_ghcr.registry.realm import shown

    try:
        return urljoin(url, location)
    except ValueError:
        raise RegistryError(f"{what}: a redirect to {shown(location)}, which is not a URL") from None
