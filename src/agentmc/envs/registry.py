"""Environments by name: ``make("textcraft", task_id="17")`` and task lists per split.

Each environment registers a *factory* (``factory(task_id=..., **options) ->
TextEnv``) and a *task lister* (``lister(split, **options) -> list[str]``).
Either may be given as a lazy ``"module:attribute"`` string, so an optional
environment (ScienceWorld, an HTTP server) registers without importing its
extras; the import happens on first use, and a missing extra surfaces as
:class:`~agentmc.errors.MissingExtraError` naming what to install.

Splits are ``train``, ``validation`` and ``test``; ``all`` lists every task.
Unknown environment ids, task ids and splits raise
:class:`~agentmc.errors.UnknownNameError` with the valid names.

An entry may also carry what the environment knows about itself (see
:mod:`agentmc.envs.knowledge`): its ``prompt`` for models, its ``state_space``
for graph credit assignment and its scripted ``expert``, each an object or a
lazy ``"module:attribute"`` string. Policies and learners find them with
:func:`knowledge`, by environment id, and so never import an environment.

Example:
    >>> env = make("textcraft", task_id="17", max_steps=20)
    >>> env.env_id, env.task_id
    ('textcraft', '17')
    >>> "textcraft" in env_ids() and len(task_ids("textcraft", "test")) > 0
    True
    >>> knowledge("textcraft", "prompt").instructions[:30]
    'You are crafting Minecraft ite'
    >>> knowledge("guess-number", "expert") is None
    True
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from agentmc.envs.core import TextEnv
from agentmc.envs.knowledge import EnvPrompt, Expert, StateSpace
from agentmc.errors import ConfigError, MissingExtraError, UnknownNameError

__all__ = [
    "KNOWLEDGE",
    "SPLITS",
    "EnvSpec",
    "env_ids",
    "knowledge",
    "make",
    "register",
    "spec",
    "task_ids",
]

SPLITS = ("train", "validation", "test", "all")

Factory = Callable[..., TextEnv]
TaskLister = Callable[..., list[str]]

KnowledgeKind = Literal["prompt", "state_space", "expert"]

KNOWLEDGE: dict[str, tuple[type | None, str]] = {
    "prompt": (EnvPrompt, "an EnvPrompt"),
    "state_space": (StateSpace, "a StateSpace"),
    "expert": (None, "a callable expert(task, steps)"),
}
"""What an entry may carry besides its factory: kind -> (required type, how to say it)."""


@dataclass(frozen=True)
class EnvSpec:
    """A registered environment.

    Attributes:
        env_id: Name used with :func:`make`.
        factory: Callable or lazy ``"module:attribute"`` string.
        task_lister: Callable or lazy ``"module:attribute"`` string.
        description: One line for listings.
        prompt: :class:`~agentmc.envs.knowledge.EnvPrompt`, lazy string or ``None``.
        state_space: :class:`~agentmc.envs.knowledge.StateSpace`, lazy string or ``None``.
        expert: :data:`~agentmc.envs.knowledge.Expert`, lazy string or ``None``.
    """

    env_id: str
    factory: Factory | str
    task_lister: TaskLister | str
    description: str = ""
    prompt: EnvPrompt | str | None = None
    state_space: StateSpace | str | None = None
    expert: Expert | str | None = None


_REGISTRY: dict[str, EnvSpec] = {}


def register(
    env_id: str,
    factory: Factory | str,
    task_lister: TaskLister | str,
    *,
    description: str,
    overwrite: bool = False,
    prompt: EnvPrompt | str | None = None,
    state_space: StateSpace | str | None = None,
    expert: Expert | str | None = None,
) -> EnvSpec:
    """Register an environment, and optionally what it knows about itself.

    Args:
        env_id: Name, e.g. ``"textcraft"``.
        factory: ``factory(task_id=..., **options) -> TextEnv`` or ``"module:attr"``.
        task_lister: ``lister(split, **options) -> list[str]`` or ``"module:attr"``.
        description: One line shown in listings.
        overwrite: Replace an existing registration instead of failing.
        prompt: Instructions and worked examples for models (default: generic ones).
        state_space: What "the same state" is, for G2PO/GiGPO (default: the
            latest observation, normalised).
        expert: A scripted player for the noisy-expert policy (default: none).

    Returns:
        The stored spec.

    Raises:
        ConfigError: If ``env_id`` is taken (and ``overwrite`` is false) or malformed.
    """
    if not isinstance(env_id, str) or not env_id.strip() or env_id != env_id.strip():
        raise ConfigError(f"register: env_id={env_id!r} must be a non-empty name without spaces")
    for label, target in (("factory", factory), ("task_lister", task_lister)):
        if isinstance(target, str) and target.count(":") != 1:
            raise ConfigError(f"register({env_id!r}): {label}={target!r} must be 'module:attr'")
        if not isinstance(target, str) and not callable(target):
            raise ConfigError(f"register({env_id!r}): {label} must be callable or 'module:attr'")
    given = {"prompt": prompt, "state_space": state_space, "expert": expert}
    for kind, value in given.items():
        if isinstance(value, str):
            if value.count(":") != 1:
                raise ConfigError(
                    f"register({env_id!r}): {kind}={value[:40]!r} must be "
                    f"{KNOWLEDGE[kind][1]} or a 'module:attr' naming one"
                )
        elif value is not None:
            _check_knowledge(env_id, kind, value)
    if env_id in _REGISTRY and not overwrite:
        raise ConfigError(f"environment {env_id!r} is already registered (pass overwrite=True)")
    entry = EnvSpec(env_id, factory, task_lister, description, **given)
    _REGISTRY[env_id] = entry
    return entry


def env_ids() -> list[str]:
    """Registered environment names, sorted."""
    return sorted(_REGISTRY)


def spec(env_id: str) -> EnvSpec:
    """The registration of ``env_id``.

    Raises:
        UnknownNameError: If it is not registered.
    """
    try:
        return _REGISTRY[env_id]
    except (KeyError, TypeError):
        raise UnknownNameError(
            f"unknown environment {env_id!r}: choose one of {', '.join(env_ids())}"
        ) from None


def _check_knowledge(env_id: str, kind: str, value: object) -> None:
    """Raise a ConfigError unless ``value`` is what an entry's ``kind`` must be."""
    required, what = KNOWLEDGE[kind]
    if not (callable(value) if required is None else isinstance(value, required)):
        raise ConfigError(
            f"environment {env_id!r}: {kind} must be {what}, got {type(value).__name__}"
        )


def knowledge(env_id: str, kind: KnowledgeKind) -> Any:
    """What the entry of ``env_id`` carries as ``kind``, or ``None``.

    A lazy ``"module:attribute"`` is imported here, on first use: this is how
    policies and learners reach an environment's knowledge without importing it.

    Args:
        env_id: An environment id (unregistered ids have no knowledge: ``None``).
        kind: ``"prompt"``, ``"state_space"`` or ``"expert"``.

    Returns:
        The :class:`~agentmc.envs.knowledge.EnvPrompt`,
        :class:`~agentmc.envs.knowledge.StateSpace` or expert, or ``None``.

    Raises:
        UnknownNameError: ``kind`` is none of the three.
        MissingExtraError: The module named cannot be imported.
        ConfigError: The attribute is missing or of the wrong type.
    """
    if kind not in KNOWLEDGE:
        raise UnknownNameError(f"unknown knowledge {kind!r}: choose one of {', '.join(KNOWLEDGE)}")
    entry = _REGISTRY.get(env_id) if isinstance(env_id, str) else None
    target = None if entry is None else getattr(entry, kind)
    if target is None or not isinstance(target, str):
        return target
    loaded = _LOADED.get((kind, target))
    if loaded is None:  # first use: import, check, and keep (policies ask on every call)
        loaded = _resolve(env_id, target)
        _check_knowledge(env_id, kind, loaded)
        _LOADED[kind, target] = loaded
    return loaded


_LOADED: dict[tuple[str, str], Any] = {}
"""Lazy knowledge already imported and checked: ``(kind, "module:attr")`` -> object."""


def _resolve(env_id: str, target: Any) -> Any:
    if not isinstance(target, str):
        return target
    module_name, attribute = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except MissingExtraError:
        raise
    except ImportError as error:
        raise MissingExtraError(
            f"environment {env_id!r} cannot be loaded: {error} (install its extra)"
        ) from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise ConfigError(f"environment {env_id!r}: {module_name} has no {attribute!r}") from None


def _call(env_id: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``function``, turning unexpected keyword arguments into a ConfigError."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return function(*args, **kwargs)
    parameters = signature.parameters.values()
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        accepted = {
            p.name
            for p in parameters
            if p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        }
        unknown = sorted(set(kwargs) - accepted)
        if unknown:
            raise ConfigError(
                f"environment {env_id!r}: unknown option(s) {unknown}; "
                f"accepted: {', '.join(sorted(accepted - {'task_id', 'split'})) or 'none'}"
            )
    return function(*args, **kwargs)


def make(env_id: str, *, task_id: str | int, **kwargs: Any) -> TextEnv:
    """Create the environment ``env_id`` playing ``task_id``.

    Args:
        env_id: A registered name (see :func:`env_ids`).
        task_id: One of ``task_ids(env_id, "all")``.
        **kwargs: Environment options (e.g. ``max_steps``, ``reward``, ``tasks``).

    Raises:
        UnknownNameError: Unknown environment or task id.
        ConfigError: Unknown or invalid option.
        MissingExtraError: The environment's optional dependencies are missing.
    """
    entry = spec(env_id)
    factory = _resolve(env_id, entry.factory)
    return _call(env_id, factory, task_id=str(task_id), **kwargs)


def task_ids(env_id: str, split: str = "all", **kwargs: Any) -> list[str]:
    """Task ids of ``split`` (``train``, ``validation``, ``test`` or ``all``).

    Args:
        env_id: A registered name.
        split: Which split.
        **kwargs: Options that select the task set (e.g. ``tasks=TaskTable``).

    Raises:
        UnknownNameError: Unknown environment or split.
    """
    entry = spec(env_id)
    if split not in SPLITS:
        raise UnknownNameError(f"unknown split {split!r}: choose one of {', '.join(SPLITS)}")
    lister = _resolve(env_id, entry.task_lister)
    return list(_call(env_id, lister, split, **kwargs))


def unknown_task(env_id: str, task_id: object, valid: list[str]) -> UnknownNameError:
    """The error for a task id not in ``valid``: how many exist, and their range or examples."""
    if not valid:
        return UnknownNameError(f"unknown {env_id} task id {task_id!r}: there are no tasks")
    if all(v.isdigit() for v in valid):
        numbers = sorted(int(v) for v in valid)
        if numbers == list(range(numbers[0], numbers[-1] + 1)):
            where = f"ids {numbers[0]}..{numbers[-1]}"
        else:
            where = "e.g. " + ", ".join(str(n) for n in numbers[:5])
    else:
        where = "e.g. " + ", ".join(sorted(valid)[:5])
    return UnknownNameError(
        f"unknown {env_id} task id {str(task_id)[:40]!r}: {len(valid)} tasks exist ({where})"
    )


register(
    "textcraft",
    "agentmc.envs.textcraft.env:make_textcraft",
    "agentmc.envs.textcraft.tasks:list_task_ids",
    description="Craft a Minecraft item from a recipe list (built in; sparse or dense reward)",
    prompt="agentmc.envs.textcraft.prompt:PROMPT",
    state_space="agentmc.envs.textcraft.state:TEXTCRAFT_STATE_SPACE",
    expert="agentmc.envs.textcraft.expert:textcraft_expert",
)
register(
    "guess-number",
    "agentmc.envs.toy.guess_number:make_guess_number",
    "agentmc.envs.toy.guess_number:list_task_ids",
    description="Toy: find a secret number from higher/lower hints (tests and docs)",
)
register(
    "sciworld",
    "agentmc.envs.sciworld.env:make_sciworld",
    "agentmc.envs.sciworld.tasks:list_task_ids",
    description="ScienceWorld science tasks (extra agentmc[sciworld]; needs Java)",
)
register(
    "webshop",
    "agentmc.envs.webshop.env:make_webshop",
    "agentmc.envs.webshop.env:list_task_ids",
    description="WebShop search-and-buy (extra agentmc[webshop]); a synthetic sample catalogue "
    "ships, real data via $AGENTMC_WEBSHOP_DATA",
)
register(
    "agentgym",
    "agentmc.envs.agentgym.client:make_agentgym",
    "agentmc.envs.agentgym.client:list_agentgym_tasks",
    description="Any AgentGym-style HTTP environment server (base_url=...; extra agentmc[server])",
)
