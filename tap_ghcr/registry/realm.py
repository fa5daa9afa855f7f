"""Where the GitHub token may go: the configured registry and its token realm on the same host name.

Follows go-containerregistry's `bearer.go` (`validateRealmURL`, and its refusal
to send credentials cross-host): a registry named in `images` other than
`registry_url` is read anonymously, and a realm on another host, or over plain
http when the registry itself is https, gets no credentials. A realm on a
private, loopback or link-local address is accepted only when it is the
registry host itself (a local registry): anything else could be an attacker's
way into the internal network (SSRF).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def same_registry(url: str, credentials_host: str) -> bool:
    """`url` is on the registry the credentials belong to: host AND port (`credentials_host` is `host[:port]`
    or a URL)."""
    return _netloc(url) == _netloc(credentials_host)


def realm_refusal(realm: str, registry_url: str) -> str | None:
    """Why credentials must not go to `realm` for the registry at `registry_url`; None when they may."""
    parts, registry = urlsplit(realm), urlsplit(registry_url)
    host, registry_host = (parts.hostname or "").lower(), (registry.hostname or "").lower()
    if parts.scheme not in ("http", "https"):
        return f"the token realm {realm} is not an http(s) URL"
    if parts.scheme == "http" and registry.scheme != "http":
        return f"the token realm {_origin(realm)} is plain http while the registry is https"
    if host != registry_host:
        if _is_internal(host):
            return f"the token realm {_origin(realm)} is a private or loopback address, not the registry host"
        return f"the token realm {_origin(realm)} is on another host than the registry {registry_host}"
    return None


def _is_internal(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return address.is_private or address.is_loopback or address.is_link_local or address.is_unspecified


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")


def _netloc(url_or_host: str) -> tuple[str, int | None]:
    value = url_or_host if "://" in url_or_host else "//" + url_or_host
    parts = urlsplit(value)
    port = parts.port or {"https": 443, "http": 80}.get(parts.scheme, 443)
    return (parts.hostname or "").lower(), port
