"""Per-turn credit (G2PO, GiGPO, ...) inside TRL's ``GRPOTrainer`` for multi-turn agents.

TRL (1.x) lets a ``rollout_func`` play whole episodes: each completion is one
episode, the agent's tokens marked 1 and the environment's tokens 0 in
``env_mask``, and a subclass may hand the loss advantages of shape ``(B, T)``
instead of ``(B,)``. This module uses both:

- :func:`make_rollout_func` plays ``num_generations`` episodes per prompt (a
  task id) through :func:`agentmc.rollout.arollout` with the trainer's current
  model acting as :class:`~agentmc.rl.lm.LMPolicy` (the ``local`` prompt and
  constrained choice among the valid actions). Each episode becomes one
  completion (every action's tokens, then the observation's tokens masked
  out) plus an ``agentmc_episode`` field: the group, the state keys
  (:mod:`agentmc.rl.states`), the step rewards and each action's token span.
- :class:`StepCreditGRPOTrainer` lets TRL do everything else (reward logging,
  reference model, clipped loss, optimiser) and replaces its per-completion
  advantage with per-token advantages: the tokens of turn ``t`` get step
  ``t``'s advantage from the chosen estimator (:mod:`agentmc.rl.estimators`).

TRL recomputes the log-probabilities of the completion tokens under the full
vocabulary (its importance ratio and KL are per token), while the actions were
sampled among the valid actions only: the ratio is TRL's, not the
constrained policy's. Advantages are computed per process on its own rows
(each process holds whole groups: TRL gives a process all generations of a
prompt).

Example::

    trainer = StepCreditGRPOTrainer(
        model=model, reward_funcs=episode_return, args=GRPOConfig(...),
        train_dataset=Dataset.from_dict({"prompt": task_ids}), processing_class=tokenizer,
        rollout_func=make_rollout_func("textcraft", max_steps=10), step_estimator="g2po")
    trainer.train()
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from agentmc.errors import require
from agentmc.rl.estimators import EstimatorConfig, episode_from_trajectory, get_estimator
from agentmc.rl.graph import Episode

trl = require("trl", "trl")
torch = require("torch", "torch")


def make_rollout_func(
    env_id: str, *, max_steps: int = 10, seed: int = 0, make_env: Callable[[str], Any] | None = None
) -> Callable[[list[Any], Any], dict[str, Any]]:
    """A TRL ``rollout_func`` playing agentmc episodes (prompts are task ids).

    Args:
        env_id: Environment id (it must offer valid_actions()).
        max_steps: Step cap per episode.
        seed: Root seed; call ``k`` uses ``SeedSequence([seed, k])``.
        make_env: Task id -> environment (default ``agentmc.envs.make``).
    """
    from agentmc.rl.lm import LMPolicy, Recorder
    from agentmc.rollout import arollout

    if make_env is None:
        from agentmc.envs import make

        def make_env(task_id: str) -> Any:
            return make(env_id, task_id=task_id)

    calls = [0]

    def rollout_func(prompts: list[Any], trainer: Any) -> dict[str, Any]:
        model = trainer.accelerator.unwrap_model(trainer.model)
        policy = LMPolicy(model, trainer.processing_class, name="trl-policy", threads=None)
        rng = np.random.default_rng(np.random.SeedSequence([seed, calls[0]]))
        calls[0] += 1
        out: dict[str, list[Any]] = {
            "prompt_ids": [], "completion_ids": [], "logprobs": [], "env_mask": [],
            "agentmc_episode": [],
        }  # fmt: skip
        was_training = model.training
        model.eval()
        try:
            # TRL's sampler repeats each prompt num_generations times in a row: each
            # copy is one episode, and the copies of a task form its group.
            for prompt in prompts:
                task = str(prompt)
                env = make_env(task)
                recorder = Recorder(policy)
                trajectory = asyncio.run(arollout(env, recorder, rng, max_steps=max_steps))
                _append(out, policy, trajectory, recorder.samples, task)
                env.close()
        finally:
            model.train(was_training)
        return out

    return rollout_func


def _append(
    out: dict[str, list[Any]], policy: Any, trajectory: Any, samples: Sequence[Any], group: str
) -> None:
    """One episode as one completion: action tokens (mask 1), observation tokens (mask 0)."""
    samples = samples[: trajectory.n_steps]
    first = samples[0].suffix if samples else ()
    completion: list[int] = []
    mask: list[int] = []
    spans = []
    for turn, sample in zip(trajectory.turns, samples, strict=True):
        action = list(sample.candidates[sample.chosen])
        spans.append((len(completion), len(completion) + len(action)))
        completion += action
        mask += [1] * len(action)
        observation = policy._encode(f"{turn.observation.strip()}\n>", special=False)
        completion += observation
        mask += [0] * len(observation)
    episode = episode_from_trajectory(trajectory)
    out["prompt_ids"].append(list(policy.prefix) + list(first))
    out["completion_ids"].append(completion)
    out["logprobs"].append([0.0] * len(completion))
    out["env_mask"].append(mask)
    out["agentmc_episode"].append(
        {
            "group": group,
            "states": list(episode.states),
            "actions": list(episode.actions),
            "rewards": [float(r) for r in episode.rewards],
            "terminated": bool(episode.terminated),
            "spans": spans,
            "success": bool(trajectory.success),
        }
    )


def token_advantages_for_episodes(
    episodes: Sequence[dict[str, Any]],
    length: int,
    *,
    estimator: str = "g2po",
    config: EstimatorConfig | None = None,
) -> np.ndarray:
    """Per-token advantages ``(B, length)``: turn ``t``'s tokens get step ``t``'s advantage.

    Args:
        episodes: The ``agentmc_episode`` fields of :func:`make_rollout_func`, one per completion.
        length: Completion length after padding.
        estimator: Any name in :data:`~agentmc.rl.estimators.ESTIMATORS`.
        config: Estimator settings.
    """
    groups: dict[str, list[int]] = {}
    for row, episode in enumerate(episodes):
        groups.setdefault(episode["group"], []).append(row)
    batch = [
        [
            Episode(
                group,
                tuple(episodes[r]["states"]),
                tuple(episodes[r]["actions"]),
                np.asarray(episodes[r]["rewards"], dtype=np.float64),
                episodes[r]["terminated"],
            )  # fmt: skip
            for r in rows
        ]
        for group, rows in groups.items()
    ]
    results = get_estimator(estimator)(batch, config or EstimatorConfig())
    advantages = np.zeros((len(episodes), length))
    for rows, result in zip(groups.values(), results, strict=True):
        for row, steps in zip(rows, result.steps, strict=True):
            for (start, end), value in zip(episodes[row]["spans"], steps, strict=True):
                advantages[row, start:end] = value
    return advantages


def episode_return(completions: Any = None, agentmc_episode: Any = None, **_: Any) -> list[float]:
    """Reward function for TRL's logs: each episode's return (advantages are replaced)."""
    return [float(np.nansum(episode["rewards"])) for episode in agentmc_episode]


class StepCreditGRPOTrainer(trl.GRPOTrainer):
    """``GRPOTrainer`` whose advantages are per-turn step advantages (see the module docstring).

    Args:
        step_estimator: ``"g2po"``, ``"gigpo"``, ``"grpo"`` or ``"rloo"``.
        estimator_config: Estimator settings.
        *args, **kwargs: As for ``trl.GRPOTrainer`` (pass ``rollout_func``).
    """

    def __init__(
        self,
        *args: Any,
        step_estimator: str = "g2po",
        estimator_config: EstimatorConfig | None = None,
        **kwargs: Any,
    ) -> None:
        get_estimator(step_estimator)
        self.step_estimator = step_estimator
        self.estimator_config = estimator_config or EstimatorConfig()
        super().__init__(*args, **kwargs)

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        output = super()._generate_and_score_completions(inputs)
        episodes = [row["agentmc_episode"] for row in inputs]
        completion_ids = output["completion_ids"]
        values = token_advantages_for_episodes(
            episodes, completion_ids.shape[1],
            estimator=self.step_estimator, config=self.estimator_config,
        )  # fmt: skip
        output["advantages"] = torch.as_tensor(
            values, dtype=torch.float32, device=completion_ids.device
        )
        return output
