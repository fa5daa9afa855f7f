"""tap-ghcr: a Singer tap for GitHub Container Registry inventories."""

__version__ = "0.1.0"
