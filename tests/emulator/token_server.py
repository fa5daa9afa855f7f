"""ghcr.io's `/token` endpoint, signing JWTs the real distribution registry trusts.

Public repositories get anonymous pull tokens; private ones need basic auth
with a known token (any user name, as on ghcr.io). The push token is what the
fixtures use to seed the registry.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import time
import typing as t
import uuid
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.emulator.servers import LoggedServer, QuietHandler

SERVICE = "ghcr.test"
ISSUER = "tap-ghcr-test-token-server"


def libtrust_kid(public_key: ec.EllipticCurvePublicKey) -> str:
    """The key id distribution expects: base32 of SHA-256(DER SPKI)[:30], in groups of 4."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    b32 = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(b32[i:i + 4] for i in range(0, len(b32), 4))


class TokenAuthority:
    """Decides who may pull what, and signs the answer."""

    def __init__(self, *, tokens: set[str], push_token: str, private: t.Callable[[str], bool],
                 expires_in: int = 300) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ISSUER)])
        now = dt.datetime.now(dt.timezone.utc)
        self.cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
            .sign(self.key, hashes.SHA256())
        )
        self.kid = libtrust_kid(self.key.public_key())
        self.tokens = tokens
        self.push_token = push_token
        self.private = private
        self.expires_in = expires_in
        self.issued = 0

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def grant(self, scope: str, password: str | None) -> list[dict]:
        """The access list for a scope `repository:NAME:ACTIONS` and the caller's password."""
        kind, _, rest = scope.partition(":")
        name, _, actions = rest.rpartition(":")
        if kind != "repository" or not name:
            return []
        wanted = set(actions.split(","))
        if password == self.push_token:
            allowed = wanted & {"pull", "push", "delete"}
        elif password in self.tokens or not self.private(name):
            allowed = wanted & {"pull"}
        else:
            allowed = set()
        return [{"type": "repository", "name": name, "actions": sorted(allowed)}] if allowed else []

    def sign(self, subject: str, access: list[dict]) -> str:
        self.issued += 1
        now = int(time.time())
        claims = {"iss": ISSUER, "sub": subject, "aud": SERVICE, "iat": now, "nbf": now - 5,
                  "exp": now + self.expires_in, "jti": uuid.uuid4().hex, "access": access}
        return jwt.encode(claims, self.key, algorithm="ES256", headers={"kid": self.kid})


def make_handler(authority: TokenAuthority) -> type[QuietHandler]:
    class TokenHandler(QuietHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path != "/token":
                self.send_body(404, b'{"errors":[{"code":"NOT_FOUND","message":"not found"}]}')
                return
            query = parse_qs(url.query)
            password = None
            user = "anonymous"
            header = self.headers.get("Authorization", "")
            if header.startswith("Basic "):
                try:
                    user, _, password = base64.b64decode(header[6:]).decode().partition(":")
                except ValueError:
                    password = ""
                if password not in authority.tokens and password != authority.push_token:
                    body = {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]}
                    self.send_body(401, json.dumps(body).encode())
                    return
            access: list[dict] = []
            for scope in query.get("scope", []):
                access += authority.grant(scope, password)
            token = authority.sign(user, access)
            body = json.dumps({"token": token, "access_token": token, "expires_in": authority.expires_in})
            self.send_body(200, body.encode())

    return TokenHandler


def start_token_server(authority: TokenAuthority) -> LoggedServer:
    return LoggedServer(make_handler(authority)).start()
