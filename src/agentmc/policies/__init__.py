"""Black-box agents: anything we can sample actions from.

A policy implements :class:`~agentmc.policies.core.Policy` (an async
``complete`` method plus ``name`` and ``synthetic`` attributes). The command
line and the evaluation harness build them from short specs with
:func:`make_policy`:

==========================  ===============================================================
spec                        policy
==========================  ===============================================================
``noisy-expert``            :class:`~agentmc.policies.expert.NoisyExpertPolicy` (synthetic)
``noisy-expert:eps=0.3``    the same expert playing a uniformly random valid action with
                            probability 0.3 per step (``,mistake=M,waste=W`` add its
                            other slips; unnamed ones are 0); synthetic
``random``                  :class:`~agentmc.policies.scripted.RandomPolicy` (synthetic)
``local``                   the embedded agent for the environment: SmolLM2-135M with the
                            LoRA adapter shipped for it, in the mode it was trained in
                            (TextCraft: ``textcraft-g2po``, ``choose``; see
                            :mod:`agentmc.policies.adapters`); elsewhere ``local:sample``
``local:sample``            the bare SmolLM2-135M: one of the environment's valid actions,
                            drawn from the softmax of each action's full likelihood
                            (evaluating only the branches it visits)
``local:score``             the same distribution, every action scored
``local:choose``            the bare model choosing a valid action token by token
``local:generate``          the embedded model writing a free-text action
``local:MODE,adapter=PATH``  the embedded model with a llama.cpp LoRA adapter (``adapter.gguf``
                            of ``agentmc sft`` or ``agentmc train --policy lm``); MODE optional
``openai:MODEL``            :class:`~agentmc.policies.openai_compat.OpenAIPolicy`
``replay:PATH``             :class:`~agentmc.policies.replay.ReplayPolicy` answering from PATH
``trained:PATH``            a policy trained by ``agentmc train`` (needs the RL module)
==========================  ===============================================================

Stand-ins for a real agent (``noisy-expert``, ``random``, scripted and
replayed policies) have ``synthetic = True``; every record and report labels
their results as synthetic.

Example:
    >>> policy = make_policy("noisy-expert")
    >>> policy.name, policy.synthetic
    ('noisy-expert', True)
    >>> make_policy("noisy-expert:eps=0.3").name
    'noisy-expert:eps=0.3'
    >>> make_policy("gpt-4o")
    Traceback (most recent call last):
    ...
    agentmc.errors.UnknownNameError: unknown policy spec 'gpt-4o'; valid forms: ...
"""

from __future__ import annotations

import importlib
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlparse

from agentmc.errors import ConfigError, UnknownNameError
from agentmc.policies.adapters import shipped_adapter
from agentmc.policies.core import Completion, Policy
from agentmc.policies.expert import NoisyExpertPolicy
from agentmc.policies.local import LocalConfig, LocalPolicy
from agentmc.policies.parsing import parse_action
from agentmc.policies.prompts import PromptFormat
from agentmc.policies.replay import ReplayPolicy
from agentmc.policies.scripted import RandomPolicy, ScriptedPolicy

__all__ = [
    "POLICY_SPECS",
    "Completion",
    "LocalConfig",
    "LocalPolicy",
    "NoisyExpertPolicy",
    "Policy",
    "PromptFormat",
    "RandomPolicy",
    "ReplayPolicy",
    "ScriptedPolicy",
    "make_policy",
    "parse_action",
]

DEFAULT_LOCAL_MODE = "sample"
"""Mode of the bare model when a ``local`` spec names none and no adapter is shipped for the
environment: it plays best of the bare model's modes (see :mod:`agentmc.policies.local`)."""

POLICY_SPECS: tuple[str, ...] = (
    "noisy-expert",
    "noisy-expert:eps=E",
    "random",
    "local",
    "local:sample",
    "local:score",
    "local:choose",
    "local:generate",
    "local:MODE,adapter=PATH",
    "openai:MODEL",
    "replay:PATH",
    "trained:PATH",
)
"""The accepted spec forms, as shown in error messages."""

_LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1", "0.0.0.0")

_LOADERS = {"trained": "agentmc.rl.policy:load_trained_policy"}
"""Spec kinds served by packages built on this one, as lazy ``"module:function"``
loaders called with the argument: named, not imported, so ``agentmc.policies``
depends on no learner (``agentmc.rl`` builds on it)."""


def _local_config(spec: str, argument: str) -> LocalConfig:
    """``local[:MODE][,adapter=PATH]`` as a config (a bad part is an :class:`UnknownNameError`)."""
    mode, adapter = DEFAULT_LOCAL_MODE, None
    for i, part in enumerate(p.strip() for p in argument.split(",") if argument):
        key, eq, value = part.partition("=")
        if i == 0 and not eq and part in ("sample", "score", "choose", "generate"):
            mode = part
        elif key == "adapter" and eq and value and adapter is None:
            adapter = value
        else:
            raise UnknownNameError(
                f"unknown policy spec {spec!r}; valid forms: {', '.join(POLICY_SPECS)}"
            )
    return LocalConfig(mode=mode, adapter=adapter)  # type: ignore[arg-type]


def make_policy(
    spec: str,
    *,
    base_url: str | None = None,
    api_key_env: str = "OPENAI_API_KEY",
    concurrency: int = 256,
    cache_dir: str | Path | None = None,
    timeout_s: float = 120.0,
    max_attempts: int = 8,
    env_id: str = "textcraft",
) -> Policy:
    """Build a policy from a spec string (see the module docstring for the forms).

    Args:
        spec: e.g. ``"noisy-expert"``, ``"local:choose"``, ``"openai:gpt-4o-mini"``.
        base_url: Server URL for ``openai:`` specs (vLLM, llama.cpp, Ollama, ...);
            ``None`` is OpenAI's API. A server on this machine needs no key.
        api_key_env: Environment variable holding the key for ``openai:`` specs
            (the key itself is never passed around).
        concurrency: Most requests in flight for ``openai:`` specs.
        cache_dir: On-disk request cache for ``openai:`` specs (``None``: no cache).
        timeout_s: ``openai:`` specs: seconds a call may spend at the server, retries
            included (its ``deadline_s``); one attempt may take half of it (at least
            60 s, at most all of it).
        max_attempts: ``openai:`` specs: attempts per request.
        env_id: ``local`` and ``openai:`` specs: the environment whose instructions and
            worked examples frame the prompt (:func:`agentmc.policies.prompts.env_prompt`);
            for the plain ``local`` spec, also whose shipped adapter to load.

    Returns:
        The policy.

    Raises:
        UnknownNameError: The spec matches no form; the message lists them.
        ConfigError: A form is missing its argument, or an argument is invalid.
        MissingExtraError: The spec needs an extra that is not installed.
        DataError: The environment's shipped adapter is missing or damaged.
    """
    kind, sep, argument = spec.strip().partition(":")
    needs_argument = ("openai", "replay", "trained", "local", "noisy-expert")
    if sep and not argument.strip() and kind in needs_argument:
        raise ConfigError(f"policy spec {spec!r} has nothing after ':'; use e.g. {kind}:...")
    argument = argument.strip()
    if kind == "noisy-expert":
        return NoisyExpertPolicy.from_spec(argument) if sep else NoisyExpertPolicy()
    if kind == "random" and not sep:
        return RandomPolicy()
    if kind == "local":
        if not sep and (shipped := shipped_adapter(env_id)) is not None:
            policy = LocalPolicy(
                LocalConfig(
                    mode=shipped.mode,  # type: ignore[arg-type]
                    adapter=str(shipped.path),
                    prompt=replace(shipped.prompt, env_id=env_id),
                )
            )
            policy.name = f"local:{shipped.mode}+lora:{shipped.name}"
            return policy
        local = _local_config(spec, argument)
        return LocalPolicy(replace(local, prompt=replace(local.prompt, env_id=env_id)))
    if kind == "openai" and sep:
        from agentmc.policies.openai_compat import ClientLimits, OpenAIConfig, OpenAIPolicy

        host = urlparse(base_url).hostname if base_url else None
        config = OpenAIConfig(
            model=argument,
            base_url=base_url,
            api_key_env=api_key_env,
            allow_no_key=host in _LOCAL_HOSTS,
            cache_dir=None if cache_dir is None else str(cache_dir),
            limits=ClientLimits(
                max_concurrency=concurrency,
                deadline_s=timeout_s,
                request_timeout_s=min(timeout_s, max(60.0, timeout_s / 2)),
                max_attempts=max_attempts,
            ),
        )
        return OpenAIPolicy(replace(config, prompt=replace(config.prompt, env_id=env_id)))
    if kind == "replay" and sep:
        return ReplayPolicy(argument, mode="replay")
    if kind in _LOADERS and sep:
        module, _, function = _LOADERS[kind].partition(":")
        return getattr(importlib.import_module(module), function)(argument)
    raise UnknownNameError(f"unknown policy spec {spec!r}; valid forms: {', '.join(POLICY_SPECS)}")
