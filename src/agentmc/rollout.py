"""The plain agent loop: one policy, one environment, one episode.

``act`` asks the policy for one reply to the conversation so far and parses
the action out of it; ``arollout`` alternates ``act`` and ``env.step`` until
the episode terminates or is truncated, and returns a :class:`Trajectory`.
This module and :mod:`agentmc.steer` are the only places where environments
and policies meet.

A policy call that fails for good (``PolicyError`` after its retries) ends the
episode: the trajectory is returned with ``error`` set, so a run records the
failure (as failed-infrastructure: retried on resume) and goes on with other
tasks. A ``FatalPolicyError`` (bad key, unknown model) is raised instead.

Example:
    >>> import numpy as np
    >>> from agentmc.envs import make
    >>> from agentmc.policies.expert import NoisyExpertPolicy
    >>> env = make("textcraft", task_id="0")
    >>> trajectory = rollout(env, NoisyExpertPolicy(), np.random.default_rng(0))
    >>> trajectory.n_steps > 0
    True
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from agentmc.data.trajectory import Trajectory, Turn
from agentmc.envs.core import StepResult, TextEnv, areset, astep, valid_actions
from agentmc.errors import ConfigError, FatalPolicyError, PolicyError
from agentmc.policies.core import Completion, Policy
from agentmc.policies.parsing import parse_action
from agentmc.seeding import draw_seed
from agentmc.types import Message, Usage


@dataclass(frozen=True)
class ReplyLimits:
    """Caps on what one policy reply may put into the record and into later prompts.

    A runaway reply (megabytes of text) would otherwise be stored in full and
    resent with every later prompt of the episode. What is cut is counted in
    :attr:`agentmc.data.trajectory.Turn.reply_cut`.
    """

    max_reply_chars: int = 8192
    """Longest reply kept, in characters (the rest is cut)."""
    max_action_chars: int = 1024
    """Longest action sent to the environment, in characters."""

    def __post_init__(self) -> None:
        for name in ("max_reply_chars", "max_action_chars"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                flag = "--" + name.replace("_", "-")
                raise ConfigError(f"{flag} must be an integer >= 1, got {value!r}")


@dataclass(frozen=True, slots=True)
class AgentAction:
    """One decision of the agent: its reply, the parsed action and what it cost."""

    reply: str
    action: str
    parsed: bool
    usage: Usage
    logprob: float | None = None
    reply_cut: int = 0
    valid: bool | None = None
    """Whether the action is among the candidates the environment listed (``None``: none listed)."""


DEFAULT_LIMITS = ReplyLimits()


async def act(
    policy: Policy,
    messages: Sequence[Message],
    rng: np.random.Generator,
    *,
    temperature: float = 1.0,
    candidates: Sequence[str] | None = None,
    limits: ReplyLimits | None = None,
) -> AgentAction:
    """Sample one reply from ``policy`` and parse the action out of it.

    The reply and the action are cut to ``limits`` (default :class:`ReplyLimits`).

    Raises:
        PolicyError: The policy call failed for good.
    """
    return await act_seeded(
        policy,
        messages,
        draw_seed(rng),
        temperature=temperature,
        candidates=candidates,
        limits=limits,
    )


async def act_seeded(
    policy: Policy,
    messages: Sequence[Message],
    seed: int | None,
    *,
    temperature: float = 1.0,
    candidates: Sequence[str] | None = None,
    limits: ReplyLimits | None = None,
) -> AgentAction:
    """:func:`act` with the policy's seed given (no generator to build per call).

    Raises:
        PolicyError: The policy call failed for good.
    """
    completions = await policy.complete(
        messages, n=1, temperature=temperature, seed=seed, candidates=candidates
    )
    return to_action(policy.name, completions, candidates, limits)


def to_action(
    policy_name: str,
    completions: Sequence[Completion],
    candidates: Sequence[str] | None,
    limits: ReplyLimits | None,
) -> AgentAction:
    """The decision a policy's completions make: the first one's action, all their cost.

    The reply and the action are cut to ``limits``; the action is marked valid when
    the environment listed candidates and it is one of them.

    Raises:
        PolicyError: There is no completion.
    """
    if not completions:
        raise PolicyError(f"policy {policy_name!r} returned no completion")
    first = completions[0]
    usage = first.usage
    for completion in completions[1:]:  # more than asked: their cost still counts
        usage = usage + completion.usage
    limits = limits or DEFAULT_LIMITS
    reply = first.text[: limits.max_reply_chars]
    action, parsed = parse_action(reply, candidates)
    cut = len(first.text) - len(reply)
    if len(action) > limits.max_action_chars:
        cut += len(action) - limits.max_action_chars
        action = action[: limits.max_action_chars]
    valid = None if not candidates else action in candidates
    return AgentAction(reply, action, parsed, usage, first.logprob, cut, valid)


def make_turn(decision: AgentAction, result: StepResult) -> Turn:
    """Combine an agent decision and the environment's answer into a :class:`Turn`."""
    return Turn(
        reply=decision.reply,
        action=decision.action,
        observation=result.observation,
        reward=float(result.reward),
        terminated=bool(result.terminated),
        truncated=bool(result.truncated),
        parsed=decision.parsed,
        usage=decision.usage,
        reply_cut=decision.reply_cut,
        valid=decision.valid,
    )


def is_success(result: StepResult) -> bool:
    """The environment's verdict on a final step (``info["success"]`` when present)."""
    if "success" in result.info:
        return bool(result.info["success"])
    return bool(result.terminated and result.reward > 0)


async def arollout(
    env: TextEnv,
    policy: Policy,
    rng: np.random.Generator,
    *,
    temperature: float = 1.0,
    max_steps: int | None = None,
    meta: dict[str, Any] | None = None,
    limits: ReplyLimits | None = None,
) -> Trajectory:
    """Play one episode.

    Args:
        env: The task to play (reset here).
        policy: The agent.
        rng: Source of the environment seed and of every policy seed.
        temperature: Sampling temperature passed to the policy.
        max_steps: Extra step cap on top of the environment's own (reported as truncation).
        meta: JSON-safe details stored with the trajectory.
        limits: Caps on reply and action length (default :class:`ReplyLimits`).

    Returns:
        The trajectory; ``error`` is set if a policy call failed for good.
    """
    seed = draw_seed(rng)
    task, _ = await areset(env, seed=seed)
    messages: tuple[Message, ...] = (Message("user", task),)
    turns: list[Turn] = []
    success = False
    error = None
    while True:
        try:
            decision = await act(
                policy,
                messages,
                rng,
                temperature=temperature,
                candidates=valid_actions(env),
                limits=limits,
            )
        except FatalPolicyError:
            raise  # a bad key or an unknown model: every other episode would fail the same way
        except PolicyError as failure:
            error = str(failure)
            break
        result = await astep(env, decision.action)
        if max_steps is not None and len(turns) + 1 >= max_steps and not result.terminated:
            result = result._replace(truncated=True)
        turns.append(make_turn(decision, result))
        messages += (Message("assistant", decision.reply), Message("user", result.observation))
        if result.terminated or result.truncated:
            success = is_success(result)
            break
    return Trajectory(
        env_id=env.env_id,
        task_id=env.task_id,
        task=task,
        turns=tuple(turns),
        policy=policy.name,
        synthetic=policy.synthetic,
        success=success,
        seed=seed,
        error=error,
        meta=dict(meta or {}),
    )


def rollout(env: TextEnv, policy: Policy, rng: np.random.Generator, **kwargs: Any) -> Trajectory:
    """Synchronous :func:`arollout` (starts an event loop)."""
    return asyncio.run(arollout(env, policy, rng, **kwargs))
