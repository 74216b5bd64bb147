"""The ``agentmc`` command line.

Each subcommand lives in its own module under ``agentmc.cli`` and exposes a
frozen ``Config`` dataclass (its fields and attribute docstrings become the
flags and ``--help``) and ``run(config) -> int``. Modules are imported only
when their command runs, so ``agentmc --help`` is instant and a missing extra
only affects the commands that need it.

User errors (:class:`agentmc.errors.AgentmcError`) are printed as one line on
stderr with exit code 2 (3 when a run finished with units that failed for
infrastructure reasons; re-running retries them); so are operating-system
errors (permissions, a directory where a file belongs, a full disk). Ctrl-C
exits with 130 after the command has flushed what it wrote.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from agentmc.errors import AgentmcError

#: command name -> (module, one-line description). Multi-word names are nested commands.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("agentmc.cli.demo", "End-to-end demo on the embedded local model (offline)."),
    "tasks": ("agentmc.cli.tasks", "List an environment's tasks per split."),
    "rollout": ("agentmc.cli.rollout", "Run a policy on tasks and record trajectories."),
    "collect": ("agentmc.cli.collect", "Collect prior trajectories on the training split."),
    "critic train": ("agentmc.cli.critic", "Train a critic on collected trajectories."),
    "critic eval": ("agentmc.cli.critic", "Evaluate a critic on held-out tasks."),
    "critic refresh": (
        "agentmc.cli.critic",
        "Warm-start a new critic version from new run/eval data.",
    ),
    "run": ("agentmc.cli.run", "Run single / Best-of-N / SMC / AMC on a task split."),
    "tune": ("agentmc.cli.tune", "Choose AMC's beta, schedule and selection on validation tasks."),
    "eval": ("agentmc.cli.eval", "Compare several methods at equal budget."),
    "report": ("agentmc.cli.report", "Write Markdown and HTML reports for a run directory."),
    "export": ("agentmc.cli.export", "Export a run's records as Parquet or CSV tables."),
    "train": ("agentmc.cli.train", "Train a small policy with GRPO / RLOO / G2PO / GiGPO."),
    "sft": ("agentmc.cli.sft", "Fine-tune the embedded model on an environment's expert."),
    "serve": ("agentmc.cli.serve", "Serve an environment over the AgentGym HTTP protocol."),
}


def _usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = ["usage: agentmc COMMAND [--help] [options]", "", "commands:"]
    lines += [f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()]
    return "\n".join(lines)


def _lookup(argv: Sequence[str]) -> tuple[str, list[str]] | None:
    for words in (2, 1):
        name = " ".join(argv[:words])
        if len(argv) >= words and name in COMMANDS:
            return name, list(argv[words:])
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``agentmc`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if argv[0] == "--version":
        from agentmc import __version__

        print(f"agentmc {__version__}")
        return 0
    found = _lookup(argv)
    if found is None:
        known = [n for n in COMMANDS if n.startswith(argv[0] + " ")]
        if known:
            message = f"agentmc {argv[0]}: error: say which: {' | '.join(known)}"
        else:
            message = f"agentmc: error: unknown command {argv[0]!r} (see agentmc --help)"
        print(message, file=sys.stderr)
        return 2
    name, rest = found
    try:
        module = importlib.import_module(COMMANDS[name][0])
        return int(module.main(name, rest) or 0)
    except AgentmcError as error:
        print(f"agentmc {name}: error: {error}", file=sys.stderr)
        return error.exit_code
    except OSError as error:
        # The file system refused something no command anticipated (permissions, a
        # directory where a file belongs, a full disk): the user can fix it, so one line.
        where = f": {error.filename}" if error.filename else ""
        print(f"agentmc {name}: error: {error.strerror or error}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"agentmc {name}: interrupted; records written so far are kept.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
