"""Exceptions the command line reports as one line; kept free of torch so `gtnnas` starts fast."""

from __future__ import annotations


class DataNotFoundError(FileNotFoundError):
    """The data set is not on disk; the message lists every place looked and how to get it."""


class CheckpointError(ValueError):
    """A teacher checkpoint that is truncated, foreign or does not match its config."""
