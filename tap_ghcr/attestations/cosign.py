"""cosign: what its layer annotations say (signer, transparency log) and its simple-signing payload."""

from __future__ import annotations

import json
import re
import typing as t
from datetime import datetime, timezone

from tap_ghcr.attestations import certificates
from tap_ghcr.attestations.jsonstream import collect
from tap_ghcr.attestations.media import COSIGN_BUNDLE, COSIGN_CERTIFICATE
from tap_ghcr.oci import as_object


def unix_time(value: t.Any) -> str | None:
    """An RFC 3339 UTC time from Unix seconds (int or protobuf-JSON string); None if not a number."""
    seconds = as_int(value)
    if seconds is None:
        return None
    try:
        return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (ValueError, OverflowError, OSError):
        return None


_INT64 = re.compile(r"-?[0-9]{1,19}")


def as_int(value: t.Any) -> int | None:
    """An int64 from a JSON integer or a protobuf-JSON int64 string; None for anything else (a bool, a
    float such as 1e400, a number past int64)."""
    if isinstance(value, str) and _INT64.fullmatch(value):
        value = int(value)
    if type(value) is not int or not -(2**63) <= value < 2**63:
        return None
    return value


def annotation_fields(annotations: dict[str, t.Any], what: str) -> tuple[dict[str, t.Any], list[str]]:
    """Signer, `signed_at` and `tlog_index` from a cosign layer's annotations, and warnings.

    `dev.sigstore.cosign/certificate` is a PEM Fulcio certificate;
    `dev.sigstore.cosign/bundle` is JSON inside the string:
    `{"SignedEntryTimestamp", "Payload": {"body", "integratedTime", "logIndex", "logID"}}`.
    """
    fields: dict[str, t.Any] = {}
    warnings: list[str] = []
    pem = annotations.get(COSIGN_CERTIFICATE)
    if isinstance(pem, str) and pem.strip():
        try:
            fields.update(certificates.signer_from(pem))
        except certificates.CertificateError as exc:
            warnings.append(f"{what}: {COSIGN_CERTIFICATE} annotation: {exc}")
    bundle = annotations.get(COSIGN_BUNDLE)
    if isinstance(bundle, str) and bundle.strip():
        try:
            payload = as_object(as_object(json.loads(bundle)).get("Payload"))
        except (ValueError, RecursionError) as exc:
            warnings.append(f"{what}: {COSIGN_BUNDLE} annotation is not JSON: {exc}")
        else:
            fields["signed_at"] = unix_time(payload.get("integratedTime"))
            fields["tlog_index"] = as_int(payload.get("logIndex"))
    return fields, warnings


def _ci(mapping: t.Any, key: str) -> t.Any:
    """A value by case-insensitive key (the spec example writes `Critical`, real payloads `critical`)."""
    if not isinstance(mapping, dict):
        return None
    for k, v in mapping.items():
        if isinstance(k, str) and k.lower() == key:
            return v
    return None


def normalise_digest(value: t.Any) -> str | None:
    """`alg:hex`; a bare 64-hex value is taken as sha256."""
    if not isinstance(value, str) or not value:
        return None
    if ":" not in value and len(value) == 64:
        return f"sha256:{value}"
    return value


def simple_signing_subject(fileobj: t.BinaryIO, what: str) -> str | None:
    """The `critical.image.docker-manifest-digest` of a simple-signing payload (streamed; `optional` skipped)."""
    trees = collect(fileobj, ("critical", "Critical"), what=what)
    critical = trees.get("critical") or trees.get("Critical")
    return normalise_digest(_ci(_ci(critical, "image"), "docker-manifest-digest"))
