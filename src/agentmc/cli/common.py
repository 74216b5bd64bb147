"""Helpers shared by the subcommands: flag parsing from config dataclasses.

``parse(Config, name, argv)`` turns a frozen dataclass into flags with tyro
(field attribute docstrings become ``--help``). A config whose
``__post_init__`` rejects a value raises :class:`agentmc.errors.ConfigError`,
which the dispatcher prints as one line.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar
from unittest import mock

import tyro

from agentmc.errors import ConfigError, UnknownNameError
from agentmc.smc.sampler import SMCConfig

T = TypeVar("T")


def _one_line(text: str) -> str:
    """Condense tyro's boxed error message into one line."""
    lines: list[str] = []
    for raw in text.splitlines():
        line = " ".join(raw.strip().strip("╭╮╰╯│─ ").split())
        if line.startswith(("Argument helptext", "For full helptext")):
            break
        if line and set(line) != {"-"} and line not in ("Value error", "Got errors:"):
            lines.append(line)
    # drop a heading that a later line repeats ("Unrecognized options" / "...: --x")
    kept = [a for i, a in enumerate(lines) if not any(b.startswith(a) for b in lines[i + 1 :])]
    return "; ".join(dict.fromkeys(kept))


def parse(config_type: type[T], name: str, argv: Sequence[str], description: str = "") -> T:
    """Parse ``argv`` into ``config_type`` for the subcommand ``agentmc NAME``.

    ``--help`` prints as usual. A flag error becomes a one-line
    :class:`~agentmc.errors.ConfigError` instead of tyro's multi-line box.
    """
    out, err = io.StringIO(), io.StringIO()
    try:
        # a wide console: tyro would wrap a long error inside its box, and the pieces
        # would be joined with "; " mid-sentence
        wide = {"COLUMNS": "100000"} if "--help" not in argv and "-h" not in argv else {}
        with (
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
            mock.patch.dict(os.environ, wide),
        ):
            config = tyro.cli(
                config_type,
                args=list(argv),
                prog=f"agentmc {name}",
                description=description or (config_type.__doc__ or "").strip().splitlines()[0],
                config=(tyro.conf.OmitArgPrefixes,),
            )
        check_numbers(config)
        return config
    except SystemExit as stop:
        if stop.code in (0, None):
            sys.stdout.write(out.getvalue())
            sys.stdout.write(err.getvalue())
            raise
        message = _one_line(err.getvalue() + out.getvalue()) or "invalid arguments"
        raise ConfigError(f"{message} (see `agentmc {name} --help`)") from None


#: Float flags that may be infinite (``--beta inf``: no reward tilt).
INFINITE_OK = frozenset({"beta"})


def check_numbers(config: Any) -> None:
    """Checks every command shares, before anything is written.

    No NaN, no stray infinity, no negative seed (seed sequences reject them, and
    late: after the run directory exists).

    Per-command limits (``--workers >= 1``, ...) live in each config's ``__post_init__``.

    Raises:
        ConfigError: Naming the flag.
    """
    for item in dataclasses.fields(config):
        value = getattr(config, item.name)
        flag = "--" + item.name.replace("_", "-")
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            check_numbers(value)
        elif isinstance(value, float) and (
            math.isnan(value) or (math.isinf(value) and item.name not in INFINITE_OK)
        ):
            raise ConfigError(f"{flag} must be a finite number, got {value}")
        elif item.name == "seed" and isinstance(value, int) and not 0 <= value < 2**63:
            raise ConfigError(f"{flag} must be an integer in 0..2**63-1, got {value}")


@dataclass(frozen=True)
class TaskOptions:
    """Which environment and which of its tasks a command runs on."""

    env: str = "textcraft"
    """Environment id (see ``agentmc tasks``)."""
    split: Literal["train", "validation", "test", "all"] = "test"
    """Task split."""
    n_tasks: int | None = None
    """Use only the first N tasks of the split (default: all)."""
    task_ids: tuple[str, ...] = ()
    """Explicit task ids (overrides --split and --n-tasks)."""
    goals_csv: Path | None = None
    """TextCraft: id -> goal table (tab-separated `item<TAB>depth`, row i = task i)."""
    split_csv: Path | None = None
    """TextCraft: file with the ids of --split, one per line (with --goals-csv)."""
    split_json: Path | None = None
    """ScienceWorld, WebShop, AgentGym: JSON list of the ids of --split, over AgentGym's
    numbering (the format of the AMC paper's `sciworld_idx_*.json`, `webshop_idx_*.json`)."""
    data_dir: Path | None = None
    """WebShop: directory with WebShop's data files (default: $AGENTMC_WEBSHOP_DATA, else
    agentmc's synthetic sample catalogue)."""
    env_url: str | None = None
    """AgentGym: the environment server's URL (default http://127.0.0.1:36001). Not
    --base-url, which is the policy server's."""
    env_name: str | None = None
    """AgentGym: which server it is (textcraft, sciworld, webshop, alfworld, babyai,
    agentmc): sets its protocol fields and, where known, its task range."""
    task_range: str | None = None
    """AgentGym: the server's task indices, START-END inclusive (e.g. 0-543) or a count;
    train/validation/test are our deterministic split of it unless --split-json is given."""
    max_steps: int | None = None
    """Step cap per episode (default: the environment's own, 20 for TextCraft)."""
    reward: Literal["sparse", "dense"] = "sparse"
    """Reward: 1 on success only, or shaped progress reward (where supported)."""

    def __post_init__(self) -> None:
        if self.n_tasks is not None and self.n_tasks < 1:
            raise ConfigError(f"--n-tasks must be at least 1, got {self.n_tasks}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"--max-steps must be at least 1, got {self.max_steps}")
        if self.split_csv is not None and self.goals_csv is None:
            raise ConfigError("--split-csv needs --goals-csv (the table its ids refer to)")
        if self.env != "textcraft" and self.goals_csv is not None:
            raise ConfigError(f"--goals-csv is a TextCraft option; --env is {self.env}")
        if self.env not in ("sciworld", "webshop", "agentgym") and self.split_json is not None:
            raise ConfigError(
                f"--split-json is a ScienceWorld option (and webshop, agentgym); "
                f"--env is {self.env}"
            )
        if self.env != "webshop" and self.data_dir is not None:
            raise ConfigError(f"--data-dir is a WebShop option; --env is {self.env}")
        for flag, value in (
            ("--env-url", self.env_url),
            ("--env-name", self.env_name),
            ("--task-range", self.task_range),
        ):
            if self.env != "agentgym" and value is not None:
                raise ConfigError(
                    f"{flag} is an AgentGym option (--env agentgym); --env is {self.env}"
                )
        if self.split_json is not None and self.split == "all":
            raise ConfigError("--split-json needs one --split (train, validation or test)")

    @functools.cached_property
    def _env_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        if self.goals_csv is not None:
            from agentmc.envs.textcraft import TaskTable

            splits: dict[str, Path] = {}
            if self.split_csv is not None:
                splits[self.split] = self.split_csv
            kwargs["tasks"] = TaskTable.from_csv(self.goals_csv, split_files=splits)
        if self.split_json is not None and self.env == "sciworld":
            from agentmc.envs.sciworld.tasks import SciWorldTasks

            kwargs["tasks"] = SciWorldTasks.agentgym().with_split_files(
                {self.split: self.split_json}
            )
        elif self.split_json is not None:
            kwargs["split_files"] = {self.split: str(self.split_json)}
        if self.data_dir is not None:
            kwargs["data_dir"] = str(self.data_dir)
        for name in ("env_url", "env_name", "task_range"):
            value = getattr(self, name)
            if value is not None:
                kwargs["base_url" if name == "env_url" else name] = value
        return kwargs

    def env_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``agentmc.envs.make`` / ``task_ids`` (files read once)."""
        return dict(self._env_kwargs)

    def select(self) -> list[str]:
        """The task ids to run, in order."""
        from agentmc.envs import task_ids

        if self.task_ids:
            ids = list(self.task_ids)
            known = set(task_ids(self.env, "all", **self.env_kwargs()))
            unknown = [t for t in ids if t not in known]
            if unknown:
                from agentmc.errors import UnknownNameError

                raise UnknownNameError(
                    f"unknown {self.env} task id(s) {', '.join(unknown)}; "
                    f"see `agentmc tasks --env {self.env} --show ids`"
                )
            return ids
        ids = task_ids(self.env, self.split, **self.env_kwargs())
        return ids if self.n_tasks is None else ids[: self.n_tasks]

    def make(self, task_id: str, executor: Any = None):
        """A fresh environment for one task: here, or from ``executor`` (e.g. in a Ray actor)."""
        kwargs = self.env_kwargs()
        if self.max_steps is not None:
            kwargs["max_steps"] = self.max_steps
        if self.reward != "sparse":
            kwargs["reward"] = self.reward
        if executor is not None:
            return executor.make_env(self.env, task_id=task_id, **kwargs)
        from agentmc.envs import make

        return make(self.env, task_id=task_id, **kwargs)

    def describe(self) -> dict[str, Any]:
        """JSON-safe settings recorded with a run."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in values.items()}


@dataclass(frozen=True)
class ExecutorOptions:
    """Where environments run. The policy always runs here, its calls concurrent."""

    executor: Literal["local", "ray"] = "local"
    """`local`: in this process. `ray`: in Ray actors, one CPU each (needs agentmc[ray]);
    results are the same for the same seeds."""
    ray_workers: int = 2
    """Ray: number of environment actors."""
    ray_address: str | None = None
    """Ray: cluster address (default: start a local Ray instance with --ray-workers CPUs)."""

    def __post_init__(self) -> None:
        if self.ray_workers < 1:
            raise ConfigError(f"--ray-workers must be at least 1, got {self.ray_workers}")
        if self.executor == "local" and self.ray_address is not None:
            raise ConfigError("--ray-address needs --executor ray")

    def make(self):
        """Build the executor (close it when done; it is a context manager)."""
        from agentmc.executors import make_executor

        if self.executor == "local":
            return make_executor("local")
        return make_executor("ray", n_workers=self.ray_workers, address=self.ray_address)


def check_smc_flags(**settings: Any) -> None:
    """Check SMC settings given as flags with :class:`~agentmc.smc.SMCConfig`'s own checks.

    One setting at a time, so its one message comes out behind the flag that set it:
    ``--beta: beta must be > 0 ...``. Keyword names are SMCConfig fields
    (``n_particles`` is the ``--particles`` flag).

    Raises:
        ConfigError: The first invalid setting (UnknownNameError for an unknown name).
    """
    for name, value in settings.items():
        try:
            SMCConfig(**{name: value}, max_steps=None)
        except (ConfigError, UnknownNameError) as error:
            flag = "--" + ("particles" if name == "n_particles" else name).replace("_", "-")
            raise type(error)(f"{flag}: {error}") from None


@dataclass(frozen=True)
class SamplerOptions:
    """SMC settings (defaults and checks from agentmc.smc.SMCConfig).

    `agentmc run` builds its method from them; `agentmc eval` and `agentmc demo` apply
    them to every SMC/AMC method whose string does not name the setting itself.
    """

    beta: float = SMCConfig.beta
    """Temperature of the target p(tau) exp(R / beta): > 0 (small: greedier), inf: no tilt."""
    schedule: str = SMCConfig.schedule
    """Resampling schedule of SMC / AMC: none, every, steps:4,12, ess:0.5, budget:0.8:INNER."""
    resampler: str = SMCConfig.resampler
    """Resampling scheme of SMC / AMC: systematic, stratified, residual or multinomial."""

    def __post_init__(self) -> None:
        check_smc_flags(beta=self.beta, schedule=self.schedule, resampler=self.resampler)


@dataclass(frozen=True)
class BudgetOptions:
    """Per-task spending caps (agentmc.smc.Budget), the same flags for every command.

    `--budget calls:160` is the one form; `--max-calls`, `--max-tokens` and
    `--max-cost` are aliases of its parts.
    """

    budget: str | None = None
    """Per-task cap for every method: `calls:N`, `tokens:N` or `cost:USD`, several
    joined by commas (`calls:160,cost:0.5`)."""
    max_calls: int | None = None
    """Alias of `--budget calls:N`: per-task cap on policy calls (all particles together)."""
    max_tokens: int | None = None
    """Alias of `--budget tokens:N`: per-task cap on policy tokens."""
    max_cost: float | None = None
    """Alias of `--budget cost:USD`: per-task cap on US dollars."""
    budget_counts: Literal["attempts", "answers"] = "attempts"
    """What a calls cap counts: every request sent, retries included (what providers
    bill), or only requests that returned an answer."""

    def __post_init__(self) -> None:
        self.make()  # one-line errors before anything runs

    def make(self):
        """The :class:`~agentmc.smc.Budget` these flags ask for (no caps when none is given).

        Raises:
            ConfigError: A malformed ``--budget``, a cap <= 0, or one cap given twice.
        """
        from agentmc.smc.budget import UNITS, Budget

        budget = Budget(count=self.budget_counts)
        if self.budget is not None:
            budget = Budget.parse(self.budget, count=self.budget_counts, name="--budget")
        for unit, cap in UNITS.items():
            value = getattr(self, cap)
            if value is None:
                continue
            flag = "--" + cap.replace("_", "-")
            if getattr(budget, cap) is not None:
                raise ConfigError(f"{flag} and --budget {unit}:... both cap {unit}; give one")
            try:
                budget = dataclasses.replace(budget, **{cap: value})
            except ConfigError as error:
                raise ConfigError(f"{flag}: {error}") from None
        return budget


@dataclass(frozen=True)
class PolicyOptions:
    """Which agent acts. API keys are read from the environment, never from flags."""

    policy: str = "noisy-expert"
    """Policy spec: `noisy-expert` or `noisy-expert:eps=0.3` (synthetic; eps: per-step chance
    of a uniformly random valid action), `local` (the embedded agent: SmolLM2-135M with the
    adapter shipped for the environment, if any) / `local:sample` / `local:choose` /
    `local:generate` (the bare model), `openai:MODEL` (any OpenAI-compatible server)."""
    base_url: str | None = None
    """Server URL for `openai:` policies (vLLM, llama.cpp, Ollama, ...)."""
    api_key_env: str = "OPENAI_API_KEY"
    """Environment variable holding the API key for `openai:` policies."""
    temperature: float = 1.0
    """Sampling temperature."""
    concurrency: int = 256
    """Maximum policy requests in flight (identical prompts at a step share one request)."""
    timeout: float = 120.0
    """`openai:` policies: seconds one policy call may spend at the server, retries and
    their waits included; time queued behind --concurrency is not counted. One attempt
    may take half of it (at least 60 s, at most all of it)."""
    max_attempts: int = 8
    """`openai:` policies: attempts per request before the call fails (retries + 1)."""
    max_reply_chars: int = 8192
    """Longest policy reply kept (the rest is cut, and the cut recorded)."""
    max_action_chars: int = 1024
    """Longest action sent to the environment."""
    cache: bool = True
    """`openai:` policies: keep answered requests in RUN_DIR/cache, so a resumed run does
    not pay again for the calls of units that were cut off (keyed by model, prompt,
    sampling settings and seed)."""

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ConfigError(f"--temperature must be >= 0, got {self.temperature}")
        if self.concurrency < 1:
            raise ConfigError(f"--concurrency must be at least 1, got {self.concurrency}")
        if not (math.isfinite(self.timeout) and self.timeout > 0):
            raise ConfigError(f"--timeout must be a positive number of seconds, got {self.timeout}")
        if self.max_attempts < 1:
            raise ConfigError(f"--max-attempts must be at least 1, got {self.max_attempts}")
        self.limits()  # noqa: B018 - validates the reply caps

    def limits(self):
        """The reply caps (:class:`agentmc.rollout.ReplyLimits`)."""
        from agentmc.rollout import ReplyLimits

        return ReplyLimits(self.max_reply_chars, self.max_action_chars)

    def make(
        self, spec: str | None = None, *, run_dir: Path | None = None, env_id: str = "textcraft"
    ):
        """Build the policy object (``spec``: another policy spec with these settings).

        Args:
            spec: Policy spec to build instead of ``--policy`` (e.g. one method's own).
            run_dir: The run directory; its ``cache`` subdirectory holds the request
                cache unless ``--no-cache``.
            env_id: The environment the policy plays: LLM policies frame their prompt
                with its instructions and worked examples.
        """
        from agentmc.policies import make_policy

        cache_dir = None if run_dir is None or not self.cache else Path(run_dir) / "cache"
        return make_policy(
            self.policy if spec is None else spec,
            base_url=self.base_url,
            api_key_env=self.api_key_env,
            concurrency=self.concurrency,
            timeout_s=self.timeout,
            max_attempts=self.max_attempts,
            cache_dir=cache_dir,
            env_id=env_id,
        )

    def describe(self) -> dict[str, Any]:
        """JSON-safe settings recorded with a run (the key's *variable name* only).

        ``cache`` and ``concurrency`` change no result and are left out; so are the
        reply caps and the call limits at their defaults, which keeps run directories
        of earlier versions resumable.
        """
        defaults = {
            "max_reply_chars": 8192,
            "max_action_chars": 1024,
            "timeout": 120.0,
            "max_attempts": 8,
        }
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in ("cache", "concurrency")
            and defaults.get(f.name, object()) != getattr(self, f.name)
        }


def success_summary(records: Sequence[dict[str, Any]]) -> str:
    """Running summary for progress bars: solved / finished."""
    solved = sum(bool(r.get("success")) for r in records)
    return f"solved {solved}/{len(records)}"
