"""A hand-written TextCraft critic: it plans from the recipes in the task text.

:class:`TextCraftPlanCritic` is *deployable*: it reads only the conversation
(the task's recipe lines and the observations so far), never the
environment's state or reward. It replays the inventory from the
observations, plans the shortest way to the goal from there (the planner the
synthetic noisy expert uses, :func:`~agentmc.envs.textcraft.expert.plan_from_history`)
and scores the history by the chance that the ``need`` planned steps still fit
in the ``left`` steps before the cap, if each step advances the plan with
probability ``rate``:

    V(h) = P(Binomial(left, rate) >= need),   and V(h) = 1 once the goal is held.

So it ranks particles of one task by how far along they are and how much
time they have, which is what resampling and critic selection compare; a
finished attempt scores 1 if it crafted the goal and 0 otherwise. It needs no
training data, and it is no oracle: a wrong belief (e.g. a tag it misreads)
misleads it exactly as it would mislead an agent.

Example:
    >>> from agentmc.critics.core import History
    >>> from agentmc.envs import make
    >>> task, _ = make("textcraft", task_id="0").reset()
    >>> critic = TextCraftPlanCritic()
    >>> [float(round(v, 3)) for v in critic.values([History(task)])]
    [0.992]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from agentmc.critics.core import History
from agentmc.errors import ConfigError
from agentmc.types import FloatArray

__all__ = ["PLAN_COLUMNS", "TextCraftPlanCritic", "plan_features"]

#: Plans longer than this share one plan-length feature.
MAX_PLAN = 24
#: Planned finishing steps (steps taken + plan length) beyond this share one feature.
MAX_FINISH = 48
#: Columns of :func:`plan_features`.
PLAN_COLUMNS = 4 + (MAX_PLAN + 1) + (MAX_FINISH + 1)


@dataclass(frozen=True)
class TextCraftPlanCritic:
    """Value of a TextCraft history from its remaining plan and the steps left.

    Attributes:
        max_steps: The episode's step cap (TextCraft's default is 20).
        rate: Assumed chance that a step advances the plan.
        name: Label recorded with runs.
    """

    max_steps: int = 20
    rate: float = 0.3
    name: str = "textcraft-plan"

    def __post_init__(self) -> None:
        if self.max_steps < 1:
            raise ConfigError(f"max_steps must be >= 1, got {self.max_steps}")
        if not 0.0 < self.rate <= 1.0:
            raise ConfigError(f"rate must be in (0, 1], got {self.rate}")

    def values(self, histories: Sequence[History]) -> FloatArray:
        """``V(h)`` for each history, shape ``(B,)``; 0 for a text that is not a TextCraft task."""
        from agentmc.envs.textcraft.expert import plan_from_history

        out = np.zeros(len(histories), dtype=np.float64)
        for index, history in enumerate(histories):
            found = plan_from_history(history.task, history.messages)
            if found is None:
                continue
            knowledge, held, plan = found
            if held.get(knowledge.goal, 0) > 0:
                out[index] = 1.0
            elif plan:
                out[index] = self._tail(len(plan), self.max_steps - history.n_turns)
        return out

    def _tail(self, need: int, left: int) -> float:
        """``P(Binomial(left, rate) >= need)``."""
        if need > left:
            return 0.0
        p = self.rate
        return float(
            sum(math.comb(left, j) * p**j * (1.0 - p) ** (left - j) for j in range(need, left + 1))
        )


def plan_features(histories: Sequence[History]) -> FloatArray:
    """Progress features of TextCraft histories, for a learned critic (no value judgement).

    The same reading of the conversation as :class:`TextCraftPlanCritic` (task
    text and observations only), turned into inputs a model weighs itself:

    - ``[0]`` 1 if the task is a TextCraft task the planner can read;
    - ``[1]`` 1 if the goal is held;
    - ``[2]`` 1 if no plan reaches the goal from what is held;
    - ``[3]`` the plan's length over :data:`MAX_PLAN`;
    - one-hot of the plan's length (capped at :data:`MAX_PLAN`): how far from the goal;
    - one-hot of steps taken + plan length (capped at :data:`MAX_FINISH`): the
      earliest step the goal can be crafted, which a model compares with the step cap.

    Histories of other tasks get all zeros.

    Returns:
        Dense features, shape ``(len(histories), PLAN_COLUMNS)``.

    Example:
        >>> from agentmc.envs import make
        >>> task, _ = make("textcraft", task_id="0").reset()
        >>> row = plan_features([History(task)])[0]
        >>> row[:3].tolist(), int(np.argmax(row[4 : 5 + MAX_PLAN]))
        ([1.0, 0.0, 0.0], 2)
    """
    from agentmc.envs.textcraft.expert import plan_from_history

    out = np.zeros((len(histories), PLAN_COLUMNS), dtype=np.float64)
    for index, history in enumerate(histories):
        found = plan_from_history(history.task, history.messages)
        if found is None:
            continue
        knowledge, held, plan = found
        row = out[index]
        row[0] = 1.0
        if held.get(knowledge.goal, 0) > 0:
            row[1] = 1.0
            need = 0
        elif not plan:
            row[2] = 1.0
            continue
        else:
            need = len(plan)
        row[3] = min(need, MAX_PLAN) / MAX_PLAN
        row[4 + min(need, MAX_PLAN)] = 1.0
        row[5 + MAX_PLAN + min(history.n_turns + need, MAX_FINISH)] = 1.0
    return out
