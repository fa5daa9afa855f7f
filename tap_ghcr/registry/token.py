"""The bearer-token dance: ask the challenge's realm for a token, and reuse it.

Tokens are cached per (realm, service, scope) until shortly before
`expires_in` runs out; a token the registry stops accepting is dropped and
fetched anew once. Credentials go only where `realm.realm_refusal` allows
(the registry's own host name); elsewhere the token is asked for anonymously,
with one warning per realm. Every token received is registered for redaction.
"""

from __future__ import annotations

import logging
import threading
import time
import typing as t
from dataclasses import dataclass

from tap_ghcr.redact import register_secret
from tap_ghcr.registry import redirect
from tap_ghcr.registry.errors import RegistryUnauthorizedError, RegistryUnreachableError, error_for
from tap_ghcr.registry.realm import realm_refusal
from tap_ghcr.registry.retry import REGISTRY_POLICY, RetryPolicy
from tap_ghcr.registry.transport import NETWORK_ERRORS, NetworkError, Response, origin_of

if t.TYPE_CHECKING:
    from tap_ghcr.registry.challenge import Challenge
    from tap_ghcr.registry.transport import Transport

DEFAULT_EXPIRES_IN = 60  # the distribution token spec's default
EXPIRY_MARGIN = 10
MAX_EXPIRES_IN = 24 * 3600  # a token is asked for again at least daily, whatever the answer claimed
logger = logging.getLogger("tap-ghcr.registry")


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
        *,
        registry_url: str = "",
        policy: RetryPolicy = REGISTRY_POLICY,
        send: t.Callable[[t.Callable[[], Response]], Response] | None = None,
    ) -> None:
        """`registry_url` is the registry the credentials belong to (realms are checked against it);
        `send` retries one exchange (the client's retrying sender), else `policy` is used directly."""
        self._transport = transport
        self._credentials = credentials
        self._registry_url = registry_url
        self._policy = policy
        self._send = send
        self._tokens: dict[tuple[str, str, str], _Token] = {}
        self._lock = threading.Lock()
        # One lock per scope: a fetch for one repository must not hold up workers busy with another.
        self._scope_locks: dict[tuple[str, str, str], threading.Lock] = {}
        self._warned: set[str] = set()
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

    def credentials_for(self, url: str) -> tuple[str, str] | None:
        """The credentials, if `url` may receive them; a refused realm is warned about once."""
        auth = self._credentials()
        if auth is None:
            return None
        refusal = realm_refusal(url, self._registry_url) if self._registry_url else None
        if refusal is None:
            return auth
        with self._lock:
            first = refusal not in self._warned
            self._warned.add(refusal)
        if first:
            logger.warning("%s: asking it for a token without credentials", refusal)
        return None

    def _fetch(self, challenge: Challenge, scope: str) -> _Token:
        if not challenge.realm:
            raise RegistryUnauthorizedError("registry sent a Bearer challenge without a realm")
        params = {"scope": scope}
        if challenge.service:
            params["service"] = challenge.service
        what = f"token for {scope}"
        url = challenge.realm
        auth = self.credentials_for(url)
        with self._lock:
            self.requests_made += 1
        try:
            response = self._exchange(url, params, auth, what)
            for _ in range(redirect.MAX_REDIRECTS):
                if not response.is_redirect:
                    break
                target = redirect.target_of(response.url, response.headers["Location"], what)
                if auth is not None and not redirect.keeps_credentials(response.url, target):
                    auth = None  # a token request sent elsewhere goes without the GitHub token
                    logger.warning("the token endpoint redirected to %s: asking it without credentials",
                                   origin_of(target))
                if auth is not None:
                    auth = self.credentials_for(target)
                response = self._exchange(target, None, auth, what)
        except NETWORK_ERRORS as exc:
            assert isinstance(exc, NetworkError)
            raise RegistryUnreachableError(f"token endpoint {exc.origin} did not answer: {exc.reason}",
                                           origin=exc.origin, reason=exc.reason) from None
        if response.status_code != 200:
            raise error_for(response, what)
        try:
            body = response.json()
        except ValueError:
            raise RegistryUnauthorizedError(f"{what}: the token endpoint sent no JSON") from None
        value = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
        if not value or not isinstance(value, str):
            raise RegistryUnauthorizedError(f"{what}: the token endpoint sent no token")
        register_secret(value)
        try:
            expires_in = min(int(body.get("expires_in") or DEFAULT_EXPIRES_IN), MAX_EXPIRES_IN)
        except (TypeError, ValueError, OverflowError):  # OverflowError: 1e400 reads as infinity
            expires_in = DEFAULT_EXPIRES_IN
        lifetime = max(expires_in - EXPIRY_MARGIN, expires_in / 2)
        return _Token(value, time.monotonic() + lifetime)

    def _exchange(self, url: str, params: t.Mapping[str, str] | None, auth: tuple[str, str] | None,
                  what: str) -> Response:
        def once() -> Response:
            return self._transport.request("GET", url, params=params, basic_auth=auth, what=what)

        if self._send is not None:
            return self._send(once)
        return once()
