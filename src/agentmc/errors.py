"""Errors a user can fix. The CLI prints them as one line and exits non-zero.

Every error the user can cause (bad flag values, unknown ids, unreadable files)
raises a subclass of :class:`AgentmcError` whose message says what was wrong
and how to fix it. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class AgentmcError(Exception):
    """Base class for user-facing errors (one-line message, non-zero exit).

    ``exit_code`` is the status the command line exits with (2 unless a subclass
    says otherwise).
    """

    exit_code = 2


class ConfigError(AgentmcError, ValueError):
    """A configuration value is invalid; the message names the field and the fix."""


class UnknownNameError(AgentmcError, KeyError):
    """A name (environment, task, resampler, method, ...) is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DataError(AgentmcError):
    """A file on disk is missing, corrupt, or from an incompatible version."""


class PolicyError(AgentmcError):
    """A policy call failed after its retries (network, server, budget).

    Attributes:
        attempts: Requests sent for the call that failed (0 when unknown), so that a
            failed call still counts what the provider saw and may bill.
    """

    def __init__(self, message: str = "", *, attempts: int = 0) -> None:
        super().__init__(message)
        self.attempts = int(attempts)


class FatalPolicyError(PolicyError):
    """A policy failure no retry and no other task can fix (bad key, unknown model).

    A run stops at once on it instead of failing every remaining task the same way.
    """


class InfrastructureError(AgentmcError):
    """An environment server or worker failed (not the agent's doing).

    The episode it hit is retried a bounded number of times and then recorded as
    failed-infrastructure (not counted in results, retried on resume).
    """


class IncompleteRunError(AgentmcError):
    """Some units of a run failed for infrastructure reasons; re-running retries them."""

    exit_code = 3


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
