"""Helpers shared by the subcommands: flag parsing from config dataclasses.

``parse(Config, name, argv)`` turns a frozen dataclass into flags with tyro
(field attribute docstrings become ``--help``). A config whose
``__post_init__`` rejects a value raises :class:`agentmc.errors.ConfigError`,
which the dispatcher prints as one line.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import tyro

T = TypeVar("T")


def parse(config_type: type[T], name: str, argv: Sequence[str], description: str = "") -> T:
    """Parse ``argv`` into ``config_type`` for the subcommand ``agentmc NAME``."""
    return tyro.cli(
        config_type,
        args=list(argv),
        prog=f"agentmc {name}",
        description=description or (config_type.__doc__ or "").strip().splitlines()[0],
        config=(tyro.conf.FlagConversionOff,),
    )
