"""Checking content against the digest it was asked for."""

from __future__ import annotations

import hashlib
import re

from tap_ghcr.registry.errors import DigestMismatchError

_ALGORITHMS = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}
#: The OCI image-spec's digest grammar (`algorithm ":" encoded`).
_DIGEST = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")


def compute(data: bytes, algorithm: str = "sha256") -> str:
    """`algorithm:hex` of the exact bytes."""
    return f"{algorithm}:{_ALGORITHMS[algorithm](data).hexdigest()}"


def verify(data: bytes, expected: str, what: str) -> None:
    """Raise DigestMismatchError unless `data` hashes to `expected`."""
    algorithm, _, _ = expected.partition(":")
    if algorithm not in _ALGORITHMS:
        raise DigestMismatchError(f"{what}: unsupported digest algorithm in {expected!r}")
    actual = compute(data, algorithm)
    if actual != expected:
        raise DigestMismatchError(f"{what}: content hashes to {actual}, not {expected}")


def is_digest(reference: str) -> bool:
    """A reference is a digest when it names an algorithm; anything else is a tag."""
    return ":" in reference


def well_formed(value: object) -> bool:
    """`value` is a digest by the OCI grammar: what a manifest's descriptor must hold (a tag name in its
    place would be fetched as a tag, and its record would carry a tag for a digest)."""
    return isinstance(value, str) and _DIGEST.fullmatch(value) is not None
