"""The Ray executor (extra ``agentmc[ray]``): environments in Ray actors.

Each of ``n_workers`` actors (:class:`EnvWorker`, one CPU each) holds
environments made with :func:`agentmc.envs.make`; the caller gets a
:class:`RemoteEnv` proxy. The episode loop and the policy stay in the calling
process: :func:`agentmc.rollout.arollout` awaits the proxy's ``areset`` /
``astep``, so while one episode's environment steps in an actor, the other
episodes' policy calls and environment steps go on. Jobs go to workers round
robin by job order, and environments are deterministic, so trajectories equal
the local executor's for the same jobs.

The proxy also has the synchronous protocol (``reset``, ``step``,
``snapshot``, ``restore``), one Ray round trip each (~1 ms locally), so AMC's
particle model can use remote environments unchanged; snapshots travel by
value (small for TextCraft, a move history for ScienceWorld). Valid actions
come back with every reset/step/restore, so ``valid_actions()`` costs no round
trip. For AMC, ``aadvance`` moves many particles in one round trip: for each
``(snapshot, action)`` the actor restores, steps and snapshots, and returns
all results together, so a step of K particles costs one hop instead of 3K.

Actors import :mod:`agentmc.envs` and see the built-in environments; a custom
environment must be registered by a module the workers import too.

Example (``jobs`` and ``policy`` as for the local executor)::

    with RayExecutor(n_workers=2) as executor:
        trajectories = asyncio.run(executor.rollouts(jobs, policy))
"""

from __future__ import annotations

import itertools
import socket
from collections.abc import Callable, Sequence
from typing import Any

from agentmc.data.trajectory import Trajectory
from agentmc.envs.core import Moved, StepResult, advance_env
from agentmc.errors import AgentmcError, ConfigError, require
from agentmc.executors.core import EpisodeJob, run_rollouts
from agentmc.policies.core import Policy

__all__ = ["EnvWorker", "RayExecutor", "RemoteEnv"]


class EnvWorker:
    """Holds environments inside one Ray actor, addressed by integer handles.

    Errors the user can cause (:class:`~agentmc.errors.AgentmcError`) are
    returned as ``("error", class name, message)`` and re-raised by the proxy
    as the same class, so they read as one line, not a remote traceback.
    """

    def __init__(self) -> None:
        self._envs: dict[int, Any] = {}
        self._next = 0

    def _guard(self, function: Callable[[], Any]) -> Any:
        try:
            return ("ok", function())
        except AgentmcError as error:
            return ("error", type(error).__name__, type(error).__module__, str(error))

    def open(self, env_id: str, task_id: str, kwargs: dict[str, Any]) -> Any:
        from agentmc.envs import make

        def run() -> tuple[int, str, str]:
            env = make(env_id, task_id=task_id, **kwargs)
            handle = self._next
            self._next += 1
            self._envs[handle] = env
            return handle, env.env_id, env.task_id

        return self._guard(run)

    def _with_actions(self, handle: int, value: Any) -> tuple[Any, list[str] | None]:
        from agentmc.envs.core import valid_actions

        return value, valid_actions(self._envs[handle])

    def reset(self, handle: int, seed: int | None, options: dict[str, Any] | None) -> Any:
        env = self._envs[handle]
        return self._guard(
            lambda: self._with_actions(handle, env.reset(seed=seed, options=options))
        )

    def step(self, handle: int, action: str) -> Any:
        env = self._envs[handle]
        return self._guard(lambda: self._with_actions(handle, tuple(env.step(action))))

    def snapshot(self, handle: int) -> Any:
        return self._guard(self._envs[handle].snapshot)

    def advance(self, handle: int, moves: list[tuple[Any, str]]) -> Any:
        """Restore, step and snapshot once per ``(snapshot, action)`` (:func:`advance_env`)."""
        env = self._envs[handle]
        return self._guard(
            lambda: [(tuple(result), *rest) for result, *rest in advance_env(env, moves)]
        )

    def restore(self, handle: int, snapshot: Any) -> Any:
        env = self._envs[handle]
        return self._guard(lambda: self._with_actions(handle, env.restore(snapshot)))

    def close(self, handle: int) -> None:
        env = self._envs.pop(handle, None)
        if env is not None:
            env.close()

    def count(self) -> int:
        """Environments open in this worker."""
        return len(self._envs)


def _unwrap(reply: Any) -> Any:
    if reply[0] == "ok":
        return reply[1]
    _, name, module, message = reply
    import importlib

    cls = getattr(importlib.import_module(module), name, None)
    if not (isinstance(cls, type) and issubclass(cls, AgentmcError)):
        cls = AgentmcError
    try:
        raise cls(message)
    except TypeError:  # a subclass with another constructor signature
        raise AgentmcError(message) from None


class RemoteEnv:
    """A :class:`~agentmc.envs.core.TextEnv` proxy to an environment in an :class:`EnvWorker`.

    Attributes:
        env_id: The remote environment's name.
        task_id: Its task.
    """

    def __init__(self, ray: Any, actor: Any, env_id: str, task_id: str, kwargs: dict[str, Any]):
        self._ray = ray
        self._actor = actor
        handle, self.env_id, self.task_id = _unwrap(
            ray.get(actor.open.remote(env_id, str(task_id), kwargs))
        )
        self._handle: int | None = handle
        self._actions: list[str] | None = None

    def _call(self, method: str, *args: Any) -> Any:
        if self._handle is None:
            raise ConfigError(f"{self.env_id} task {self.task_id}: the remote env is closed")
        return getattr(self._actor, method).remote(self._handle, *args)

    def _keep(self, reply: Any) -> Any:
        value, self._actions = _unwrap(reply)
        return value

    # -- synchronous protocol (one round trip each) ----------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        return self._keep(self._ray.get(self._call("reset", seed, options)))

    def step(self, action: str) -> StepResult:
        return StepResult(*self._keep(self._ray.get(self._call("step", action))))

    def snapshot(self) -> Any:
        return _unwrap(self._ray.get(self._call("snapshot")))

    def restore(self, snapshot: Any) -> None:
        self._keep(self._ray.get(self._call("restore", snapshot)))

    def valid_actions(self) -> list[str] | None:
        """The remote environment's valid actions as of the last reset/step/restore."""
        return None if self._actions is None else list(self._actions)

    def close(self) -> None:
        if self._handle is not None:
            self._actor.close.remote(self._handle)
            self._handle = None

    # -- awaitable forms, used by agentmc.rollout.arollout ---------------------------------

    async def areset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        return self._keep(await self._call("reset", seed, options))

    async def astep(self, action: str) -> StepResult:
        return StepResult(*self._keep(await self._call("step", action)))

    async def aadvance(
        self, moves: Sequence[tuple[Any, str]]
    ) -> list[Moved]:
        """Many particle moves in one round trip: ``(result, new snapshot, valid actions)`` each.

        The remote environment is left in the last move's state.
        """
        if not moves:
            return []
        replies = _unwrap(await self._call("advance", list(moves)))
        self._actions = None if replies[-1][2] is None else list(replies[-1][2])
        return [(StepResult(*result), snapshot, actions) for result, snapshot, actions in replies]


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast when nothing listens at a ``host:port`` cluster address.

    ``ray.init`` itself retries such an address for minutes, logging as it goes.
    Other forms (``"auto"``, ``"local"``) are left to Ray.
    """
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as error:
        raise ConfigError(f"cannot reach the Ray cluster at {address!r}: {error}") from None


class RayExecutor:
    """Environments in ``n_workers`` Ray actors; see the module docstring.

    Args:
        n_workers: Number of environment actors (one CPU each).
        address: Ray cluster address; ``None`` starts a local Ray instance with
            ``n_workers`` CPUs (or joins the one already running in this process).

    Raises:
        MissingExtraError: Ray is not installed (``pip install 'agentmc[ray]'``).
        ConfigError: ``n_workers`` is not a positive integer.
    """

    name = "ray"

    def __init__(self, n_workers: int = 2, address: str | None = None) -> None:
        if not isinstance(n_workers, int) or isinstance(n_workers, bool) or n_workers < 1:
            raise ConfigError(f"n_workers={n_workers!r}: use a positive integer")
        ray = require("ray", "ray")
        self._ray = ray
        self._owns = not ray.is_initialized()
        if self._owns:
            init: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if address is None:
                init["num_cpus"] = n_workers
            else:
                _check_reachable(address)
                init["address"] = address
            try:
                ray.init(**init)
            except ConnectionError as error:
                raise ConfigError(f"cannot reach the Ray cluster at {address!r}: {error}") from None
        worker = ray.remote(num_cpus=1)(EnvWorker)
        self.workers = [worker.remote() for _ in range(n_workers)]
        self._turn = itertools.cycle(range(n_workers))

    def make_env(
        self, env_id: str, *, task_id: str, worker: int | None = None, **kwargs: Any
    ) -> RemoteEnv:
        """A proxy to a new environment on ``worker`` (default: the next one, round robin)."""
        index = next(self._turn) if worker is None else worker % len(self.workers)
        return RemoteEnv(self._ray, self.workers[index], env_id, task_id, kwargs)

    async def rollouts(
        self,
        jobs: Sequence[EpisodeJob],
        policy: Policy,
        *,
        max_concurrency: int = 32,
        on_result: Callable[[int, Trajectory], None] | None = None,
    ) -> list[Trajectory]:
        """Play every job; job ``i`` runs on worker ``i mod n_workers``."""
        self._turn = itertools.cycle(range(len(self.workers)))
        return await run_rollouts(
            self, jobs, policy, max_concurrency=max_concurrency, on_result=on_result
        )

    def close(self) -> None:
        """Stop the actors (and the local Ray instance if this executor started it)."""
        for actor in self.workers:
            self._ray.kill(actor)
        self.workers = []
        if self._owns and self._ray.is_initialized():
            self._ray.shutdown()

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
