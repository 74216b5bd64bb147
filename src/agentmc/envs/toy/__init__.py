"""Tiny deterministic environments for tests and documentation.

Example:
    >>> from agentmc.envs.toy import GuessNumberEnv
    >>> env = GuessNumberEnv("0")
    >>> env.step("guess 1").reward
    1.0
"""

from __future__ import annotations

from agentmc.envs.toy.guess_number import GuessNumberEnv, GuessNumberState

__all__ = ["GuessNumberEnv", "GuessNumberState"]
