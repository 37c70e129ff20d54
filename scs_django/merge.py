"""Re-applying one request's changes on top of another's (DESIGN §8)."""

from __future__ import annotations

from typing import Any


def merge(
    read: dict[str, Any], mine: dict[str, Any], theirs: dict[str, Any]
) -> dict[str, Any]:
    """The data another request stored (``theirs``) with this request's
    changes re-applied: keys whose value in ``mine`` differs from what this
    request ``read`` (values mutated in place count too) are set, keys it
    deleted are deleted. Where both changed a key, this request wins."""
    merged = dict(theirs)
    merged.update({k: v for k, v in mine.items() if k not in read or read[k] != v})
    for key in read.keys() - mine.keys():
        merged.pop(key, None)
    return merged
