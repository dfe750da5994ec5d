"""The project's own error classes.

The command line turns exactly these into one line on stderr and exit code 2: they mean the input
(a config, a cell, a file, a flag) is wrong and the message says how. Anything else is a bug and
keeps its traceback. Free of torch and Ray so every command can import it cheaply.
"""

from __future__ import annotations


def first_line(e: BaseException, limit: int = 160) -> str:
    """An exception's first line (or its type's name), short enough for a one-line message."""
    text = str(e).strip()
    return (text.splitlines()[0] if text else type(e).__name__)[:limit]


class InputError(ValueError):
    """Bad input from the user; the message names what is wrong and where."""


class ConfigError(InputError):
    """A configuration problem; the message names the file and the key."""


class ArchError(InputError):
    """A malformed NAS-Bench-201 cell string or edge choice."""


class DataNotFoundError(InputError, FileNotFoundError):
    """The data set is not on disk and could not be fetched; the message lists every place tried."""


class DataError(InputError):
    """A user data source (``folder:``, ``parquet:``, ``npz:``) that cannot be used as it is; the message
    names the file, column or setting."""


class CheckpointError(InputError):
    """A teacher checkpoint that is truncated, foreign or does not match its config."""


class ProxyError(InputError):
    """A proxy was asked for something it cannot do (unknown name, missing data, batch too small)."""


class LeaderboardError(InputError):
    """A leaderboard that is missing, empty or not ours."""


class TruthError(InputError):
    """A truth table that is missing, empty, incompatible or lacks the columns we need."""


class ClusterError(InputError, ConnectionError):
    """The Ray address given does not answer."""
