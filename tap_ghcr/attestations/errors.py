"""The one error the readers raise."""

from __future__ import annotations


class MalformedDocument(ValueError):
    """A supply-chain document that cannot be read; the message names what is wrong.

    The caller warns (naming the document) and emits what the registry says.
    """
