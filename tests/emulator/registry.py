"""The real CNCF distribution registry (Debian `docker-registry`), on loopback.

It runs with token auth against `token_server`, and its storage redirects blob
downloads to a second host (127.0.0.2), as ghcr.io sends blobs to a storage
host; that blob host records the headers it receives.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import typing as t
from pathlib import Path

import requests

from tests.emulator.servers import LoggedServer, QuietHandler
from tests.emulator.token_server import ISSUER, SERVICE, TokenAuthority

REGISTRY_BINARY = os.environ.get("TAP_GHCR_REGISTRY_BINARY", "docker-registry")
BLOB_HOST = "127.0.0.2"
# The registry shares a small machine with the tap, and must cost it as little as it can:
# - distribution 2.8 rebuilds its router (compiling ~40 regexes) on every request, and the garbage that
#   leaves made GC a third of its CPU; its live heap is a few MB, so a lazier GC costs little memory;
# - with one OS thread running Go code, its idle threads no longer spin on the core the tap needs
#   (8 concurrent manifest GETs behind 20 ms: 29 ms a request with 2, 25-26 ms with 1).
SERVER_TUNING = {"GOGC": "1000", "GOMAXPROCS": "1"}


def _die_with_this_process() -> list[str]:
    """A prefix that makes the registry get SIGTERM when this process dies, even by SIGKILL (util-linux's
    `setpriv --pdeathsig`; else nothing). Only from the main thread: the signal follows the thread that
    started the child, and a worker thread's end would kill a registry still in use."""
    setpriv = shutil.which("setpriv")
    if setpriv and sys.platform == "linux" and threading.current_thread() is threading.main_thread():
        return [setpriv, "--pdeathsig", "TERM", "--"]
    return []


class RegistryNotInstalledError(RuntimeError):
    """The distribution registry binary is missing."""


def registry_binary() -> str:
    path = shutil.which(REGISTRY_BINARY) or (
        "/usr/bin/docker-registry" if Path("/usr/bin/docker-registry").exists() else None
    )
    if not path:
        raise RegistryNotInstalledError(
            "the CNCF distribution registry is not installed: `apt-get install docker-registry` "
            "(./scripts/setup does it)"
        )
    return path


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def refused_port(host: str = "127.0.0.1") -> t.Iterator[int]:
    """A port that refuses connections while the block runs: bound here and never listening. A port
    `free_port` returned can be taken by any process before the tap connects. (A CI run once read
    "the proxy asked for credentials (407)" here: the port was 4071x, and the tap took any error
    text holding "407" for a proxy's answer; fixed in the tap.)"""
    with socket.socket() as sock:
        sock.bind((host, 0))
        yield sock.getsockname()[1]


def make_blob_handler(root: Path) -> type[QuietHandler]:
    class BlobHandler(QuietHandler):
        def do_GET(self) -> None:
            target = (root / self.path.split("?")[0].lstrip("/")).resolve()
            if not str(target).startswith(str(root.resolve())) or not target.is_file():
                self.send_body(404, b"not found", content_type="text/plain")
                return
            self.send_body(200, target.read_bytes(), content_type="application/octet-stream")

    return BlobHandler


class _PortTaken(Exception):
    """The registry could not bind its port: another process took it after `free_port` picked it."""


class Registry:
    """A running registry process plus its blob host; stop() removes its storage."""

    def __init__(self, authority: TokenAuthority, token_url: str, *, storage: Path | None = None,
                 blob_base_url: t.Callable[[str], str] | None = None) -> None:
        """`storage` reuses a pushed registry (kept at stop); `blob_base_url` may wrap the blob host's URL."""
        self.workdir = Path(tempfile.mkdtemp(prefix="tap-ghcr-registry-"))
        self.storage = storage or self.workdir / "storage"
        self.storage.mkdir(parents=True, exist_ok=True)
        (self.workdir / "token.pem").write_bytes(authority.cert_pem)
        self.blob_host = LoggedServer(make_blob_handler(self.storage), host=BLOB_HOST).start()
        blob_url = blob_base_url(self.blob_host.url) if blob_base_url else self.blob_host.url
        self.token_url = token_url
        for attempt in range(5):  # the port is free when picked; another test process may take it first
            self.port = free_port()
            try:
                self._start(blob_url, token_url)
                return
            except _PortTaken:
                if attempt == 4:
                    raise RuntimeError("registry: five ports in a row were taken before it bound them") from None

    def _start(self, blob_url: str, token_url: str) -> None:
        config = f"""
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: {self.storage}
  delete:
    enabled: true
  redirect:
    disable: false
middleware:
  storage:
    - name: redirect
      options:
        baseurl: {blob_url}/
http:
  addr: 127.0.0.1:{self.port}
  secret: tap-ghcr-test-secret
auth:
  token:
    realm: {token_url}/token
    service: {SERVICE}
    issuer: {ISSUER}
    rootcertbundle: {self.workdir / "token.pem"}
"""
        (self.workdir / "config.yml").write_text(config)
        self.log_file = (self.workdir / "registry.log").open("wb")
        self.process = subprocess.Popen(
            [*_die_with_this_process(), registry_binary(), "serve", str(self.workdir / "config.yml")],
            stdout=self.log_file, stderr=subprocess.STDOUT,
            env={**os.environ, **SERVER_TUNING},
        )
        self._wait_ready()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _wait_ready(self, timeout: float = 20.0) -> None:
        """Until this registry answers: a 401 naming this world's token realm (a registry of another
        test process on the same port names its own)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.log_file.close()
                log = (self.workdir / "registry.log").read_text()
                if "address already in use" in log:
                    raise _PortTaken
                raise RuntimeError(f"registry exited: {log[-2000:]}")
            try:
                answer = requests.get(f"{self.url}/v2/", timeout=1)
                challenge = answer.headers.get("WWW-Authenticate", "")
                if answer.status_code == 401 and f'"{self.token_url}/token"' in challenge:
                    return
            except requests.RequestException:  # not listening yet; or another process's listener, silent
                pass
            time.sleep(0.05)
        self.process.kill()
        raise RuntimeError("registry did not start in time")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log_file.close()
        self.blob_host.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


class Pusher:
    """Seeds a registry the way `docker push` does: blobs, then manifests, then tags."""

    def __init__(self, registry_url: str, token_url: str, push_token: str) -> None:
        self.registry_url = registry_url
        self.token_url = token_url
        self.push_token = push_token
        self.session = requests.Session()
        self._tokens: dict[str, str] = {}

    def _auth(self, repository: str) -> dict[str, str]:
        if repository not in self._tokens:
            response = self.session.get(
                f"{self.token_url}/token",
                params={"service": SERVICE, "scope": f"repository:{repository}:pull,push,delete"},
                auth=("pusher", self.push_token), timeout=10,
            )
            response.raise_for_status()
            self._tokens[repository] = response.json()["token"]
        return {"Authorization": f"Bearer {self._tokens[repository]}"}

    def blob(self, repository: str, digest: str, data: bytes) -> None:
        base = f"{self.registry_url}/v2/{repository}"
        if self.session.head(f"{base}/blobs/{digest}", headers=self._auth(repository), timeout=10).status_code == 200:
            return
        started = self.session.post(f"{base}/blobs/uploads/", headers=self._auth(repository), timeout=10)
        started.raise_for_status()
        location = started.headers["Location"]
        if location.startswith("/"):
            location = self.registry_url + location
        sep = "&" if "?" in location else "?"
        done = self.session.put(
            f"{location}{sep}digest={digest}", data=data, timeout=30,
            headers={**self._auth(repository), "Content-Type": "application/octet-stream"},
        )
        if done.status_code != 201:
            raise RuntimeError(f"blob push {repository}@{digest}: {done.status_code} {done.text}")

    def manifest(self, repository: str, reference: str, media_type: str, body: bytes) -> None:
        done = self.session.put(
            f"{self.registry_url}/v2/{repository}/manifests/{reference}", data=body, timeout=30,
            headers={**self._auth(repository), "Content-Type": media_type},
        )
        if done.status_code != 201:
            raise RuntimeError(f"manifest push {repository}:{reference}: {done.status_code} {done.text}")

    def delete_manifest(self, repository: str, digest: str) -> None:
        done = self.session.delete(
            f"{self.registry_url}/v2/{repository}/manifests/{digest}", headers=self._auth(repository), timeout=10,
        )
        if done.status_code not in (202, 404):
            raise RuntimeError(f"manifest delete {repository}@{digest}: {done.status_code} {done.text}")


def push_all(pusher: Pusher, repository: str, blobs: t.Mapping[str, bytes],
             manifests: t.Sequence[tuple[str, str, bytes]], tags: t.Mapping[str, str]) -> None:
    """Push blobs, manifests (children before indexes, as given) and tags."""
    for digest, data in blobs.items():
        pusher.blob(repository, digest, data)
    bodies = {}
    for digest, media_type, body in manifests:
        pusher.manifest(repository, digest, media_type, body)
        bodies[digest] = (media_type, body)
    for tag, digest in tags.items():
        media_type, body = bodies[digest]
        pusher.manifest(repository, tag, media_type, body)
