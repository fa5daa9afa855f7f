"""The bearer-token dance: ask the challenge's realm for a token, and reuse it.

Tokens are cached per (realm, service, scope) until shortly before
`expires_in` runs out; a token the registry stops accepting is dropped and
fetched anew once.
"""

from __future__ import annotations

import threading
import time
import typing as t
from dataclasses import dataclass

from tap_ghcr.registry.errors import RegistryUnauthorizedError, RegistryUnreachableError, error_for
from tap_ghcr.registry.retry import RETRY_EXCEPTIONS, send_with_retries

if t.TYPE_CHECKING:
    from tap_ghcr.registry.challenge import Challenge
    from tap_ghcr.registry.transport import Transport

DEFAULT_EXPIRES_IN = 60  # the distribution token spec's default
EXPIRY_MARGIN = 10


@dataclass
class _Token:
    value: str
    expires_at: float


class TokenSource:
    """Fetches and caches bearer tokens for one registry."""

    def __init__(
        self,
        transport: Transport,
        credentials: t.Callable[[], tuple[str, str] | None],
    ) -> None:
        self._transport = transport
        self._credentials = credentials
        self._tokens: dict[tuple[str, str, str], _Token] = {}
        self._lock = threading.Lock()
        # One lock per scope: a fetch for one repository must not hold up workers busy with another.
        self._scope_locks: dict[tuple[str, str, str], threading.Lock] = {}
        self.requests_made = 0

    def get(self, challenge: Challenge, scope: str) -> str:
        """A valid token for `scope`, fetched only when none is cached or it expired."""
        key = (challenge.realm or "", challenge.service or "", scope)
        with self._lock:
            cached = self._tokens.get(key)
            if cached and cached.expires_at > time.monotonic():
                return cached.value
            scope_lock = self._scope_locks.setdefault(key, threading.Lock())
        with scope_lock:  # one fetch per scope even when many workers ask at once
            cached = self._tokens.get(key)
            if cached and cached.expires_at > time.monotonic():
                return cached.value
            with self._lock:
                self.requests_made += 1
            token = self._fetch(challenge, scope)
            with self._lock:
                self._tokens[key] = token
            return token.value

    def invalidate(self, challenge: Challenge, scope: str, value: str) -> None:
        """Forget a token the registry rejected (e.g. revoked or expired early)."""
        key = (challenge.realm or "", challenge.service or "", scope)
        with self._lock:
            if (cached := self._tokens.get(key)) and cached.value == value:
                del self._tokens[key]

    def _fetch(self, challenge: Challenge, scope: str) -> _Token:
        if not challenge.realm:
            raise RegistryUnauthorizedError("registry sent a Bearer challenge without a realm")
        params = {"scope": scope}
        if challenge.service:
            params["service"] = challenge.service
        auth = self._credentials()
        try:
            response = send_with_retries(
                lambda: self._transport.request("GET", challenge.realm or "", params=params, basic_auth=auth)
            )
        except RETRY_EXCEPTIONS as exc:
            raise RegistryUnreachableError(
                f"token endpoint {challenge.realm} did not answer ({type(exc).__name__})"
            ) from None
        if response.status_code != 200:
            raise error_for(response, f"token for {scope}")
        try:
            body = response.json()
        except ValueError:
            raise RegistryUnauthorizedError(f"token for {scope}: the token endpoint sent no JSON") from None
        value = body.get("token") or body.get("access_token")
        if not value:
            raise RegistryUnauthorizedError(f"token for {scope}: the token endpoint sent no token")
        try:
            expires_in = int(body.get("expires_in") or DEFAULT_EXPIRES_IN)
        except (TypeError, ValueError):
            expires_in = DEFAULT_EXPIRES_IN
        lifetime = max(expires_in - EXPIRY_MARGIN, expires_in / 2)
        return _Token(value, time.monotonic() + lifetime)
