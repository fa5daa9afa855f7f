"""Errors that end a sync with one clear line instead of a traceback."""

from __future__ import annotations


class TapGHCRError(Exception):
    """A problem the user can fix; printed as one line, exit code 1."""


class ConfigError(TapGHCRError):
    """A malformed or contradictory setting."""


class GitHubAuthError(TapGHCRError):
    """The token is missing, wrong or lacks a scope."""


class GitHubNotFoundError(TapGHCRError):
    """An owner or package does not exist (or the token cannot see it)."""


class RateLimitExceededError(TapGHCRError):
    """The rate limit resets later than `max_rate_limit_wait` allows."""


class RegistryConnectionError(TapGHCRError):
    """`registry_url` (or its token endpoint) did not answer, even after retries."""


class RegistryIncompleteError(TapGHCRError):
    """The registry failed for every package that needed it: an outage is not a success."""


class PackageVanishedError(TapGHCRError):
    """A package's versions list kept answering 404: deleted while the sync ran."""


class GitHubConnectionError(TapGHCRError):
    """`api_url` did not answer (refused, unknown host, TLS failure), even after retries."""


class OutputClosedError(TapGHCRError):
    """stdout's reader closed it (a target that stopped, `| head`): nothing more can be delivered."""


class ListChangingError(TapGHCRError):
    """A versions list changed while it was paged through (rows shift between pages): not yet readable."""
