"""Checking content against the digest it was asked for."""

from __future__ import annotations

import hashlib

from tap_ghcr.registry.errors import DigestMismatchError

_ALGORITHMS = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}


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
