"""Turns and trajectories: frozen values with a stable JSON form.

A trajectory is what one agent did on one task: the task text, then one
:class:`Turn` per step (the raw reply, the action sent to the environment, the
environment's answer and reward). The conversation a policy sees is derived
from it (:meth:`Trajectory.messages`), so storage does not depend on any
prompt format.

Example:
    >>> turn = Turn(reply="get 1 oak log", action="get 1 oak log",
    ...             observation="Got 1 oak log", reward=0.0)
    >>> traj = Trajectory(env_id="textcraft", task_id="0", task="Goal: craft stick.",
    ...                   turns=(turn,), policy="noisy-expert", synthetic=True)
    >>> Trajectory.from_dict(traj.to_dict()) == traj
    True
    >>> [m.role for m in traj.messages()]
    ['user', 'assistant', 'user']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agentmc.types import Message, Usage


@dataclass(frozen=True, slots=True)
class Turn:
    """One agent step.

    Attributes:
        reply: The policy's raw reply.
        action: The action sent to the environment (parsed from ``reply``).
        observation: The environment's answer.
        reward: Reward for this step.
        terminated: The task ended at this step.
        truncated: The step cap ended the episode at this step.
        parsed: False when no action could be parsed and the reply went to the
            environment as-is.
        usage: Policy cost of this step.
        reply_cut: Characters cut from the end of the policy's reply (and of the
            action) by the reply cap (:class:`agentmc.rollout.ReplyLimits`); 0 if none.
        valid: Whether the action was among the environment's valid actions
            (``None``: the environment lists none). Parsing can succeed on a
            reply whose action the environment then rejects.
    """

    reply: str
    action: str
    observation: str
    reward: float
    terminated: bool = False
    truncated: bool = False
    parsed: bool = True
    usage: Usage = field(default_factory=Usage)
    reply_cut: int = 0
    valid: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {
            "reply": self.reply,
            "action": self.action,
            "observation": self.observation,
            "reward": self.reward,
            "terminated": self.terminated,
            "truncated": self.truncated,
            "parsed": self.parsed,
            "usage": self.usage.as_dict(),
        }
        if self.reply_cut:  # absent when nothing was cut: earlier records stay as they were
            out["reply_cut"] = self.reply_cut
        if self.valid is not None:
            out["valid"] = self.valid
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Turn:
        return cls(
            reply=data["reply"],
            action=data["action"],
            observation=data["observation"],
            reward=float(data["reward"]),
            terminated=bool(data.get("terminated", False)),
            truncated=bool(data.get("truncated", False)),
            parsed=bool(data.get("parsed", True)),
            usage=Usage.from_dict(data.get("usage", {})),
            reply_cut=int(data.get("reply_cut", 0)),
            valid=None if data.get("valid") is None else bool(data["valid"]),
        )


@dataclass(frozen=True, slots=True)
class Trajectory:
    """One episode of one agent on one task.

    Attributes:
        env_id: Environment name.
        task_id: Task played.
        task: The task text (the first observation).
        turns: The steps, in order.
        policy: Name of the policy that acted.
        synthetic: True if that policy is a stand-in (scripted, replay, synthetic agent).
        success: Whether the task was solved (the environment's own verdict).
        seed: Seed the episode was played with, if any.
        error: Why the episode stopped early (e.g. a failed policy call), else ``None``.
        meta: Free-form JSON-safe details (method, particle, selection mode, ...).
    """

    env_id: str
    task_id: str
    task: str
    turns: tuple[Turn, ...]
    policy: str
    synthetic: bool
    success: bool = False
    seed: int | None = None
    error: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def total_return(self) -> float:
        return float(sum(turn.reward for turn in self.turns))

    @property
    def rewards(self) -> list[float]:
        return [turn.reward for turn in self.turns]

    @property
    def actions(self) -> list[str]:
        return [turn.action for turn in self.turns]

    @property
    def terminated(self) -> bool:
        return bool(self.turns) and self.turns[-1].terminated

    @property
    def truncated(self) -> bool:
        return bool(self.turns) and self.turns[-1].truncated

    @property
    def usage(self) -> Usage:
        total = Usage()
        for turn in self.turns:
            total = total + turn.usage
        return total

    @property
    def n_steps(self) -> int:
        return len(self.turns)

    def messages(self, n_turns: int | None = None) -> tuple[Message, ...]:
        """The conversation: the task, then (reply, observation) pairs.

        Args:
            n_turns: Use only the first ``n_turns`` turns (default: all).
        """
        out = [Message("user", self.task)]
        for turn in self.turns[:n_turns]:
            out.append(Message("assistant", turn.reply))
            out.append(Message("user", turn.observation))
        return tuple(out)

    def to_dict(self) -> dict[str, Any]:
        return {
            "env_id": self.env_id,
            "task_id": self.task_id,
            "task": self.task,
            "policy": self.policy,
            "synthetic": self.synthetic,
            "success": self.success,
            "seed": self.seed,
            "error": self.error,
            "return": self.total_return,
            "n_steps": self.n_steps,
            "usage": self.usage.as_dict(),
            "meta": self.meta,
            "turns": [turn.to_dict() for turn in self.turns],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Trajectory:
        return cls(
            env_id=data["env_id"],
            task_id=str(data["task_id"]),
            task=data["task"],
            turns=tuple(Turn.from_dict(t) for t in data["turns"]),
            policy=data["policy"],
            synthetic=bool(data["synthetic"]),
            success=bool(data.get("success", False)),
            seed=data.get("seed"),
            error=data.get("error"),
            meta=dict(data.get("meta", {})),
        )
