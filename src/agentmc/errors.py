"""Errors a user can fix. The CLI prints them as one line and exits non-zero.

Every error the user can cause (bad flag values, unknown ids, unreadable files)
raises a subclass of :class:`AgentmcError` whose message says what was wrong
and how to fix it. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class AgentmcError(Exception):
    """Base class for user-facing errors (one-line message, non-zero exit)."""


class ConfigError(AgentmcError, ValueError):
    """A configuration value is invalid; the message names the field and the fix."""


class UnknownNameError(AgentmcError, KeyError):
    """A name (environment, task, resampler, method, ...) is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DataError(AgentmcError):
    """A file on disk is missing, corrupt, or from an incompatible version."""


class PolicyError(AgentmcError):
    """A policy call failed after its retries (network, server, budget)."""


class MissingExtraError(AgentmcError, ImportError):
    """An optional dependency is not installed; the message names the extra."""


def require(module: str, extra: str):
    """Import an optional dependency or raise an error naming the extra to install.

    Args:
        module: Module to import, e.g. ``"sklearn"``.
        extra: The agentmc extra that provides it, e.g. ``"critic"``.

    Returns:
        The imported module.

    Raises:
        MissingExtraError: If the module cannot be imported.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingExtraError(
            f"{module!r} is not installed: pip install 'agentmc[{extra}]' ({error})"
        ) from None
