"""The OCI error body and the exceptions the client raises.

Each error says whether it is `temporary` (worth another try later: 5xx, 429,
network failures) or final (404, 401/403, 407, digest mismatch, too large), as
go-containerregistry's `transport.Error.Temporary()` does, so callers can decide
"do not commit this package" without matching on status codes.
"""

from __future__ import annotations

import json
import typing as t

if t.TYPE_CHECKING:
    from tap_ghcr.registry.transport import Response

# OCI error codes a registry uses for conditions that pass (distribution-spec, "Error Codes").
TEMPORARY_CODES = frozenset({"TOOMANYREQUESTS", "UNAVAILABLE"})


class RegistryError(Exception):
    """A registry answer the caller cannot use; the text is safe to log."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code

    @property
    def temporary(self) -> bool:
        """True when the same request may well succeed later (5xx, 429, a temporary OCI code)."""
        if self.status is not None and (self.status == 429 or self.status >= 500):
            return True
        return self.code in TEMPORARY_CODES


class RegistryUnauthorizedError(RegistryError):
    """401/403: no token, a token without access, or a private image read anonymously."""

    temporary = False  # type: ignore[assignment]


class ManifestUnknownError(RegistryError):
    """404: the manifest, blob or repository is not (or no longer) there."""

    temporary = False  # type: ignore[assignment]


class DigestMismatchError(RegistryError):
    """Content does not hash to the digest it was fetched by."""

    temporary = False  # type: ignore[assignment]


class ResponseTooLargeError(RegistryError):
    """A body longer than the bound set for its kind (token, error, manifest, blob): refused, not retried."""

    temporary = False  # type: ignore[assignment]


class RedirectNotFollowedError(RegistryError):
    """A 3xx the client does not follow (a manifest redirect, a redirect chain too long): temporary, so the
    package is tried again next sync rather than recorded as broken."""

    temporary = True  # type: ignore[assignment]


class RegistryUnreachableError(RegistryError):
    """The registry (or its token endpoint) did not answer at all, even after retries.

    `origin` is `scheme://host:port` and `reason` a short cause (`connection refused`...).
    """

    temporary = True  # type: ignore[assignment]

    def __init__(self, message: str, *, origin: str = "", reason: str = "") -> None:
        super().__init__(message)
        self.origin = origin
        self.reason = reason


class ProxyAuthenticationError(RegistryUnreachableError):
    """407: the proxy wants credentials it was not given (or refused them); retrying will not help.

    An unreachable registry to callers (the sync cannot go on), but final: never retried."""

    temporary = False  # type: ignore[assignment]


def describe_errors(body: bytes | str) -> tuple[str | None, str]:
    """First error `code` and a readable message from `{"errors":[{code,message,detail}]}`."""
    try:
        data = json.loads(body)
    except (ValueError, TypeError):
        return None, ""
    errors = data.get("errors") if isinstance(data, dict) else None
    if not isinstance(errors, list) or not errors:
        return None, ""
    parts = []
    for item in errors:
        if not isinstance(item, dict):
            continue
        text = str(item.get("code") or "UNKNOWN")
        if item.get("message"):
            text += f": {item['message']}"
        detail = item.get("detail")
        if detail and not isinstance(detail, (dict, list)):
            text += f" ({detail})"
        parts.append(text)
    first = errors[0].get("code") if isinstance(errors[0], dict) else None
    return first, "; ".join(parts)


def error_for(response: Response, what: str) -> RegistryError:
    """Map a failed answer to the exception callers handle."""
    code, detail = describe_errors(response.content)
    status = response.status_code
    message = f"{what}: registry answered {status}" + (f" {detail}" if detail else "")
    if getattr(response, "note", ""):
        message += f"; {response.note}"
    if status in (401, 403):
        return RegistryUnauthorizedError(message, status, code)
    if status == 404:
        return ManifestUnknownError(message, status, code)
    return RegistryError(message, status, code)
