"""Local stand-ins for ghcr.io and api.github.com, fed by one dataset.

- `dataset`: the declarative dataset and the OCI content builder
- `github`: the GitHub REST emulator
- `token_server`: ghcr.io's `/token` endpoint, signing JWTs the real registry trusts
- `registry`: the real CNCF distribution registry (Debian `docker-registry`) and its blob host
- `proxy`: a fault-injecting HTTP proxy
- `world`: everything started together from one dataset
"""
