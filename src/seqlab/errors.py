"""User-facing errors: each carries a one-line message that says what was expected.

The CLI prints ``error: <message>`` for any :class:`SeqlabError` and exits non-zero without a
traceback (``--debug`` shows it). The subclasses also derive from the matching builtin so
``except ValueError`` / ``except KeyError`` keep working for library users.
"""

from __future__ import annotations


class SeqlabError(Exception):
    """Base class of every error seqlab raises on bad input."""


class ConfigError(SeqlabError, ValueError):
    """A config key is unknown, a value has the wrong type, or a value is out of range."""


class UnknownNameError(SeqlabError, KeyError):
    """A registry lookup failed; the message lists the available names."""

    def __str__(self) -> str:  # KeyError would otherwise wrap the message in quotes
        return str(self.args[0]) if self.args else ""


class ShapeError(SeqlabError, ValueError):
    """A tensor has the wrong rank, size or dtype for the module it was given to."""


class RunDirError(SeqlabError, FileNotFoundError):
    """A run directory or one of its files is missing or unreadable."""


class InvalidInputError(SeqlabError, ValueError):
    """A tensor holds values the module cannot use: NaN or infinity, out-of-range ids."""
