"""A small OCI distribution client, independent of the Singer SDK.

Modelled on go-containerregistry's `remote/transport`: one concern per file.
- `challenge`: reading `WWW-Authenticate`
- `token`: the bearer-token dance and its cache
- `retry`: retrying 5xx, 429 and dropped connections
- `errors`: the OCI error body and the exceptions callers see
- `digest`: checking content against its digest
- `media_types`: the manifest types asked for and recognised
- `transport`: HTTP keep-alive connections (http.client) shared by all threads
- `client`: manifests, blobs and tags
"""

from tap_ghcr.registry.client import Manifest, RegistryClient
from tap_ghcr.registry.errors import (
    DigestMismatchError,
    ManifestUnknownError,
    RegistryError,
    RegistryUnauthorizedError,
    RegistryUnreachableError,
)

__all__ = [
    "DigestMismatchError",
    "Manifest",
    "ManifestUnknownError",
    "RegistryClient",
    "RegistryError",
    "RegistryUnauthorizedError",
    "RegistryUnreachableError",
]
