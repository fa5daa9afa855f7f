"""The OCI error body and the exceptions the client raises."""

from __future__ import annotations

import json
import typing as t

if t.TYPE_CHECKING:
    from tap_ghcr.registry.transport import Response


class RegistryError(Exception):
    """A registry answer the caller cannot use; the text is safe to log."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class RegistryUnauthorizedError(RegistryError):
    """401/403: no token, a token without access, or a private image read anonymously."""


class ManifestUnknownError(RegistryError):
    """404: the manifest, blob or repository is not (or no longer) there."""


class DigestMismatchError(RegistryError):
    """Content does not hash to the digest it was fetched by."""


class RegistryUnreachableError(RegistryError):
    """The registry did not answer at all, even after retries."""


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
    if status in (401, 403):
        return RegistryUnauthorizedError(message, status, code)
    if status == 404:
        return ManifestUnknownError(message, status, code)
    return RegistryError(message, status, code)
