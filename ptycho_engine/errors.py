"""Exceptions raised by the engine.

Every message names what was wrong, the value received and what was expected, so a
scientist can act on it without reading code.
"""

from __future__ import annotations


class PtychoError(Exception):
    """Base class of every error the engine raises on purpose."""


class ConfigError(PtychoError, ValueError):
    """A configuration field holds an invalid value."""


class DataError(PtychoError, ValueError):
    """Input data (a file or arrays) is malformed or does not fit the requested settings."""


class ModelError(PtychoError, ValueError):
    """A model cannot be built or loaded with the requested settings."""
