"""Where the GitHub token may go: the configured registry and its token realm on the same host name.

Follows go-containerregistry's `bearer.go` (`validateRealmURL`, and its refusal
to send credentials cross-host): a registry named in `images` other than
`registry_url` is read anonymously, and a realm on another host, or over plain
http when the registry itself is https, gets no credentials. A realm on a
private, loopback or link-local address is accepted only when it is the
registry host itself (a local registry): anything else could be an attacker's
way into the internal network (SSRF).

URLs are read with the parser that connects (urllib3's `parse_url`), never with
`urlsplit`: the two disagree on odd netlocs (`http://evil\\@ghcr.io/` connects to
`evil`, while `urlsplit` names `ghcr.io`). A realm with a backslash, user-info,
no host or a bad port is refused outright.
"""

from __future__ import annotations

import functools
import ipaddress
import re

from urllib3.exceptions import LocationParseError
from urllib3.util import Url, parse_url


def same_registry(url: str, credentials_host: str) -> bool:
    """`url` is on the registry the credentials belong to: host AND port (`credentials_host` is `host[:port]`
    or a URL)."""
    return _netloc(url) == _netloc(credentials_host)


def realm_refusal(realm: str, registry_url: str) -> str | None:
    """Why credentials must not go to `realm` for the registry at `registry_url`; None when they may."""
    parts = parse_or_none(realm)
    registry = parse_or_none(registry_url)
    if parts is None or "\\" in realm or parts.auth is not None or not parts.host:
        return (f"the token realm {shown(realm)} is not a plain http(s) URL"
                " (user-info, a backslash, no host or a bad port)")
    if (parts.scheme or "").lower() not in ("http", "https"):
        return f"the token realm {shown(realm)} is not an http(s) URL"
    host = parts.host.lower()
    registry_host = ((registry.host if registry else "") or "").lower()
    registry_scheme = ((registry.scheme if registry else "") or "").lower()
    if parts.scheme == "http" and registry_scheme != "http":
        return f"the token realm {_origin(parts)} is plain http while the registry is https"
    if host != registry_host:
        if _is_internal(host):
            return f"the token realm {_origin(parts)} is a private or loopback address, not the registry host"
        return f"the token realm {_origin(parts)} is on another host than the registry {registry_host}"
    return None


def parse_or_none(url: str) -> Url | None:
    """`url` as urllib3 will connect to it; None when urllib3 cannot (a bad port, a broken IPv6 literal...)."""
    try:
        return parse_url(url)
    except (LocationParseError, ValueError):
        return None


_AUTHORITY_END = re.compile(r"[\\/?#]")  # where urllib3's authority ends (`_URI_RE`)


def parse_authority(url: str) -> Url | None:
    """`parse_or_none(url)` where only its scheme, user-info, host and port are read (path and query are not).

    For an http(s) URL those depend on the text up to the authority's end alone, so that prefix is
    parsed, once per distinct prefix: a blob redirect's signed URL is new every time, and parsing
    all of it four times per redirect cost 0.1 ms. A cut later than the authority's end would do
    too (urllib3 splits the prefix again); an earlier one would not. Other URLs, and authorities longer
    than any real host's, are parsed whole and not kept (a hostile Location must not fill memory)."""
    if url[:8].lower().startswith(("http://", "https://")):
        start = url.index("//") + 2
        end = _AUTHORITY_END.search(url, start)
        prefix = url[:end.start()] if end else url
        if len(prefix) <= 300:
            return _parse_prefix(prefix)
        url = prefix
    return parse_or_none(url)


@functools.lru_cache(maxsize=256)
def _parse_prefix(url: str) -> Url | None:
    return parse_or_none(url)


def shown(url: str) -> str:
    """An untrusted URL for a log line: its text up to the path, user-info hidden, at most 100 characters."""
    text = url.split("?")[0][:100]
    head, sep, rest = text.partition("://")
    if sep and "@" in rest:
        rest = "***@" + rest.rsplit("@", 1)[1]
    return repr(head + sep + rest)


def _is_internal(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return address.is_private or address.is_loopback or address.is_link_local or address.is_unspecified


def _origin(parts: Url) -> str:
    return f"{parts.scheme}://{parts.host}" + (f":{parts.port}" if parts.port else "")


def _netloc(url_or_host: str) -> tuple[str, int | None]:
    value = url_or_host if "://" in url_or_host else "//" + url_or_host
    parts = parse_or_none(value)
    if parts is None:
        return "", None
    port = parts.port or {"https": 443, "http": 80}.get((parts.scheme or "").lower(), 443)
    return (parts.host or "").lower(), port
