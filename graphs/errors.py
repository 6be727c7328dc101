"""Failures the graph names at their source, so whoever runs it can tell the user which
part failed without guessing from exception types."""

from __future__ import annotations


class ModelCallFailed(Exception):
    """The chat model's call raised; the original error is the `__cause__`."""
