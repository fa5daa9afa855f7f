"""A small OCI distribution client, independent of the Singer SDK.

Modelled on go-containerregistry's `remote/transport`: one concern per file.
- `challenge`: reading `WWW-Authenticate`
- `token`: the bearer-token dance and its cache
- `realm`: where the GitHub token may go (the configured registry and its realm only)
- `redirect`: what a redirect may carry
- `retry`: the retry policy (shared with the GitHub streams), on `backoff`
- `errors`: the OCI error body and the exceptions callers see (`temporary` or final)
- `digest`: checking content against its digest
- `media_types`: the manifest types asked for and recognised
- `transport`: urllib3 pools, per-URL proxies from the environment, bounded reads
- `client`: manifests, blobs and tags
"""

from tap_ghcr.registry.client import Manifest, RegistryClient
from tap_ghcr.registry.errors import (
    DigestMismatchError,
    ManifestUnknownError,
    ProxyAuthenticationError,
    RegistryError,
    RegistryUnauthorizedError,
    RegistryUnreachableError,
    ResponseTooLargeError,
)

__all__ = [
    "DigestMismatchError",
    "Manifest",
    "ManifestUnknownError",
    "ProxyAuthenticationError",
    "RegistryClient",
    "RegistryError",
    "RegistryUnauthorizedError",
    "RegistryUnreachableError",
    "ResponseTooLargeError",
]
