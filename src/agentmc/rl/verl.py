"""G2PO and GiGPO as custom advantage estimators for verl.

verl looks advantage estimators up by name in its registry
(``verl.trainer.ppo.core_algos.register_adv_est`` /
``get_adv_estimator_fn``); :func:`register` adds ``"g2po"`` and, unless verl
already has one (verl-agent does), ``"gigpo"``. Then set
``algorithm.adv_estimator=g2po``. Importing this module does not import verl
(or torch); it registers on import only when verl is already loaded, which is
what ``VERL_USE_EXTERNAL_MODULES=agentmc.rl.verl`` does, so either of these works::

    VERL_USE_EXTERNAL_MODULES=agentmc.rl.verl python -m verl.trainer.main_ppo ...
    # or, in your own entry point, before the trainer is built:
    import agentmc.rl.verl; agentmc.rl.verl.register()

**Row layout: one row per agent step.** Graph credit assignment needs to know
which steps share a state, so each row of the batch is one step of one
episode (the layout of verl-agent and GiGPO): the prompt is the agent's input at
that step, the response its reply, and ``token_level_rewards`` summed over the
response is the step's reward (usually 0, the episode's reward on its last
step). Per row, the rollout must put into ``data.non_tensor_batch`` (numpy
arrays of length ``batch_size``):

==================  ========================================================
``uid``             the group: all episodes of one task instance share it
                    (verl's standard key, passed to estimators as ``index``)
``traj_uid``        the episode the step belongs to
``step_index``      the step's position in its episode, 0, 1, ... (int)
``state_key``       canonical key of the state *before* the step (str or any
                    hashable), e.g. from :func:`agentmc.rl.states.state_keys`
                    (TextCraft: goal and inventory; default: the normalised
                    latest observation)
``next_state_key``  key of the state *after* the step; must equal the next
                    step's ``state_key``
``terminated``      optional bool: the step ended the episode by termination
                    (default: the last step of each episode terminated)
``action_key``      optional hashable: identifies the action (e.g. the parsed
                    command); default: steps are edges ``(s, s')``, so all
                    replies that led from ``s`` to ``s'`` form one edge
==================  ========================================================

An episode's rows may come in any order, but its steps must be ``0..T-1``
without gaps (an episode cut by ``max_response_length`` filtering must be
dropped whole). A NaN reward in any step marks the episode unscorable: all its
steps get advantage 0, and the count is logged (``logging`` warning).

**Stock verl, unpatched.** verl's own ``compute_advantage``
(``verl.trainer.ppo.ray_trainer``; verl 0.9's v1 trainer delegates to it for
every estimator but GRPO) hands a registered estimator ``token_level_rewards``,
``response_mask``, ``config`` and ``index=data.non_tensor_batch["uid"]`` only;
``non_tensor_batch`` itself goes to GDPO alone. So let the ``uid`` column carry
the step keys: :func:`step_uids` builds it from the columns above as
:class:`StepUid` values, strings equal to (and hashing like) the group id, so
everything in verl that groups, balances or logs by ``uid`` sees the plain
group id, with the per-step keys as attributes that survive verl's
``DataProto`` operations (indexing, chunk and concat, pickling to Ray
workers). Set the column where the rollout builds the step rows (after verl's
trainer has given each prompt its uid)::

    batch.non_tensor_batch["uid"] = agentmc.rl.verl.step_uids(
        uid, traj_uid, step_index, state_key, next_state_key)
    # then verl's own: compute_advantage(batch, adv_estimator="g2po", config=...)

From agentmc's own records, :func:`trajectory_uids` builds the column (state
keys from the environment's state space).

The estimators read the keys from ``non_tensor_batch`` (or keyword arguments)
when verl passes them, else from the :class:`StepUid` values of ``index``.
Alternatively call :func:`compute_advantage` (below) on the ``DataProto`` in
your own trainer; it reads the plain columns.

Settings (discount, step weight, ...) come from an
:class:`~agentmc.rl.estimators.EstimatorConfig` given to :func:`register`;
verl's own ``algorithm.gamma`` and ``norm_adv_by_std_in_grpo`` are not used.

The array-level core, :func:`agentmc.rl.rows.step_advantages`, takes plain
numpy arrays. ``tests/rl/test_verl_stock.py`` runs verl's real registry and
its own ``compute_advantage`` on a ``DataProto`` (verl 0.9.1, CPU, as CI
installs it) and checks the advantages against :mod:`agentmc.rl.estimators`.
**Untested here** (verl needs GPUs for rollouts): a training run, and the v1
trainer (it needs TransferQueue, verl's ``verl-core`` extra), including whether
its TransferQueue keeps :class:`StepUid` values (the legacy ``RayPPOTrainer``
keeps ``non_tensor_batch`` as numpy object arrays).

Example (numpy arrays stand in for verl's torch tensors; both work):
    >>> import numpy as np
    >>> mask = np.ones((3, 2))  # three step rows, two response tokens each
    >>> rewards = np.array([[0.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    >>> steps = {"traj_uid": ["a", "a", "b"], "step_index": [0, 1, 0],
    ...          "state_key": ["s", "x", "s"], "next_state_key": ["x", "win", "lose"]}
    >>> advantages, returns = compute_g2po_advantage(
    ...     rewards, mask, index=np.array(["u", "u", "u"]), non_tensor_batch=steps)
    >>> advantages.round(2).tolist()
    [[1.93, 1.93], [0.71, 0.71], [-1.93, -1.93]]
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from agentmc.data.trajectory import Trajectory
from agentmc.errors import ConfigError, DataError, MissingExtraError
from agentmc.rl.estimators import ESTIMATORS, EstimatorConfig, get_estimator
from agentmc.rl.rows import _to_numpy, step_advantages, token_advantages
from agentmc.rl.states import StateSpace, column_state_ids, normalize_text
from agentmc.types import IntArray

logger = logging.getLogger(__name__)

#: non_tensor_batch keys the rollout must provide (``terminated`` is optional).
REQUIRED_KEYS = ("traj_uid", "step_index", "state_key", "next_state_key")
_OPTIONAL_KEYS = ("terminated", "action_key")


class StepUid(str):
    """A verl ``uid`` that carries its step row's keys: equal to the group id as a string.

    Build a column of them with :func:`step_uids`. The attributes are the
    per-step keys of the module docstring (``terminated`` and ``action_key``
    may be None).
    """

    traj_uid: Hashable
    step_index: int
    state_key: Hashable
    next_state_key: Hashable
    terminated: bool | None
    action_key: Hashable | None

    def __new__(
        cls,
        uid: str,
        traj_uid: Hashable,
        step_index: int,
        state_key: Hashable,
        next_state_key: Hashable,
        terminated: bool | None = None,
        action_key: Hashable | None = None,
    ) -> StepUid:
        self = super().__new__(cls, uid)
        self.traj_uid, self.step_index = traj_uid, step_index
        self.state_key, self.next_state_key = state_key, next_state_key
        self.terminated, self.action_key = terminated, action_key
        return self

    def __reduce__(self) -> tuple[Any, ...]:  # pickling (Ray, copy) keeps the keys
        fields = (self.traj_uid, self.step_index, self.state_key, self.next_state_key)
        return StepUid, (str(self), *fields, self.terminated, self.action_key)


def step_uids(
    uid: Any,
    traj_uid: Any,
    step_index: Any,
    state_key: Any,
    next_state_key: Any,
    terminated: Any = None,
    action_key: Any = None,
) -> np.ndarray:
    """The ``uid`` column for stock verl: one :class:`StepUid` per step row.

    Args:
        uid: Group id of each row (all episodes of one task instance share it).
        traj_uid: Episode of each row.
        step_index: Position of the step in its episode.
        state_key: Key of the state before the step.
        next_state_key: Key of the state after the step.
        terminated: Optional: the step ended its episode by termination.
        action_key: Optional hashable action identity.

    Returns:
        A numpy object array (the dtype verl's ``non_tensor_batch`` requires).

    Raises:
        DataError: The columns differ in length.
    """
    columns = [uid, traj_uid, step_index, state_key, next_state_key, terminated, action_key]
    columns = [None if c is None else list(c) for c in columns]
    n = len(columns[0])
    if any(c is not None and len(c) != n for c in columns):
        raise DataError("step_uids: every column needs one value per row")
    rows = zip(*(c if c is not None else [None] * n for c in columns), strict=True)
    out = np.empty(n, dtype=object)
    for i, (u, traj, step, before, after, ended, action) in enumerate(rows):
        done = None if ended is None else bool(ended)
        out[i] = StepUid(str(u), traj, int(step), before, after, done, action)
    return out


def trajectory_uids(
    trajectories: Sequence[Trajectory], space: StateSpace | None = None
) -> np.ndarray:
    """The ``uid`` column (:func:`step_uids`) for the step rows of recorded trajectories.

    The rollout side for agentmc's own records: rows are the steps of the
    first trajectory, then of the second, and so on (the row order of
    :func:`agentmc.rl.trajectory_advantages`, whose numbers verl then
    reproduces). Group: the task id; episode: the position in
    ``trajectories``; state keys: :func:`agentmc.rl.states.column_state_ids`
    (integers, per environment); action key: the normalised action text;
    terminated: the trajectory's last step, if it terminated.

    Args:
        trajectories: Recorded rollouts, several per task.
        space: Override the environments' registered state spaces.

    Returns:
        One :class:`StepUid` per step, a numpy object array.

    Raises:
        DataError: The state fold or key raised (the message names the environment).
    """
    state_of: list[IntArray] = [np.zeros(0, dtype=np.int64)] * len(trajectories)
    by_env: dict[str, list[int]] = {}
    for index, trajectory in enumerate(trajectories):
        by_env.setdefault(trajectory.env_id, []).append(index)
    offset = 0  # ids of different environments never meet
    for env_id, members in by_env.items():
        batch = column_state_ids(
            env_id,
            [trajectories[i].task for i in members],
            [len(trajectories[i].turns) for i in members],
            [turn.action for i in members for turn in trajectories[i].turns],
            [turn.observation for i in members for turn in trajectories[i].turns],
            space,
        )
        for i, ids in zip(members, batch.ids, strict=True):
            state_of[i] = ids + offset
        offset += batch.n_states
    out = []
    for index, trajectory in enumerate(trajectories):
        states, last = state_of[index].tolist(), len(trajectory.turns) - 1
        for step, turn in enumerate(trajectory.turns):
            ended = step == last and trajectory.terminated
            action = normalize_text(turn.action)
            out.append(StepUid(trajectory.task_id, index, step, states[step], states[step + 1],
                               ended, action))  # fmt: skip
    column = np.empty(len(out), dtype=object)
    column[:] = out
    return column


def _columns_from_uids(index: Any) -> dict[str, Any]:
    values = list(index)
    if not values or not isinstance(values[0], StepUid):
        return {}
    if not all(isinstance(v, StepUid) for v in values):
        raise DataError("uid mixes StepUid values and plain ids; build it with step_uids()")
    columns = {name: [getattr(v, name) for v in values] for name in REQUIRED_KEYS}
    for name in _OPTIONAL_KEYS:
        column = [getattr(v, name) for v in values]
        if any(x is not None for x in column):
            if any(x is None for x in column):
                raise DataError(f"uid: {name} is set on some StepUid rows but not all")
            columns[name] = column
    return columns


@dataclass(frozen=True)
class _Settings:
    config: EstimatorConfig = EstimatorConfig()


_SETTINGS = _Settings()


def _column(source: dict[str, Any], name: str, estimator: str) -> np.ndarray:
    if name not in source:
        raise DataError(
            f"{estimator} in verl needs non_tensor_batch[{name!r}] per step row "
            f"(required: uid, {', '.join(REQUIRED_KEYS)}), or a uid column built by "
            "agentmc.rl.verl.step_uids(); see agentmc.rl.verl"
        )
    return np.asarray(source[name])


def _compute(
    estimator: str,
    token_level_rewards: Any,
    response_mask: Any,
    index: Any,
    non_tensor_batch: dict[str, Any] | None,
    extra: dict[str, Any],
) -> tuple[Any, Any]:
    source = dict(non_tensor_batch or {})
    source.update({k: v for k, v in extra.items() if k in (*REQUIRED_KEYS, *_OPTIONAL_KEYS)})
    if "traj_uid" not in source and "traj_index" in extra:
        source["traj_uid"] = extra["traj_index"]
    if index is None:
        index = source.get("uid")
    if index is None:
        raise DataError(f"{estimator} in verl needs the group ids (uid / index) of every row")
    if any(name not in source for name in REQUIRED_KEYS):  # stock verl: keys ride on the uids
        source = {**_columns_from_uids(index), **source}
    mask = _to_numpy(response_mask)
    rewards = (_to_numpy(token_level_rewards) * mask).sum(axis=-1)
    advantages, n_nan = step_advantages(
        rewards,
        np.asarray(index),
        _column(source, "traj_uid", estimator),
        _column(source, "step_index", estimator),
        _column(source, "state_key", estimator),
        _column(source, "next_state_key", estimator),
        source.get("terminated"),
        source.get("action_key"),
        estimator=estimator,
        config=_SETTINGS.config,
    )
    if n_nan:
        logger.warning("%s: %d episodes with NaN rewards got advantage 0", estimator, n_nan)
    out = token_advantages(advantages, response_mask)
    return out, out


def compute_g2po_advantage(
    token_level_rewards: Any,
    response_mask: Any,
    index: Any = None,
    config: Any = None,
    non_tensor_batch: dict[str, Any] | None = None,
    **kwargs: Any,
) -> tuple[Any, Any]:
    """The verl estimator ``"g2po"``: ``(advantages, returns)``, both shape ``(B, L)``.

    Args:
        token_level_rewards: Shape ``(B, L)``; summed over the response = step reward.
        response_mask: Shape ``(B, L)``.
        index: Group id (``uid``) of each row, shape ``(B,)``.
        config: verl's algorithm config (unused; see :func:`register`).
        non_tensor_batch: The batch's per-row keys (see the module docstring);
            the keys may also come as keyword arguments.
        **kwargs: Other arguments verl passes (ignored unless named above).

    Returns:
        Advantages and returns (equal, as for verl's GRPO), masked.
    """
    return _compute("g2po", token_level_rewards, response_mask, index, non_tensor_batch, kwargs)


def compute_gigpo_advantage(
    token_level_rewards: Any,
    response_mask: Any,
    index: Any = None,
    config: Any = None,
    non_tensor_batch: dict[str, Any] | None = None,
    **kwargs: Any,
) -> tuple[Any, Any]:
    """The verl estimator ``"gigpo"`` (same contract as :func:`compute_g2po_advantage`)."""
    return _compute("gigpo", token_level_rewards, response_mask, index, non_tensor_batch, kwargs)


_FUNCTIONS = {"g2po": compute_g2po_advantage, "gigpo": compute_gigpo_advantage}


def compute_advantage(data: Any, estimator: str = "g2po") -> Any:
    """Set ``data.batch["advantages"]`` and ``["returns"]`` on a verl ``DataProto``.

    Use in place of verl's ``compute_advantage`` for these estimators: it reads
    ``data.batch["token_level_rewards"]``, ``data.batch["response_mask"]`` and
    the per-step keys of ``data.non_tensor_batch``.

    Returns:
        ``data``, updated in place.
    """
    if estimator not in ESTIMATORS:
        get_estimator(estimator)
    advantages, returns = _compute(
        estimator,
        data.batch["token_level_rewards"],
        data.batch["response_mask"],
        data.non_tensor_batch.get("uid"),
        data.non_tensor_batch,
        {},
    )
    data.batch["advantages"] = advantages
    data.batch["returns"] = returns
    return data


def _same_function(a: Any, b: Any) -> bool:
    names = ("__module__", "__qualname__")
    return a is not None and a is not b and all(getattr(a, n, 0) == getattr(b, n, 1) for n in names)


def register(config: EstimatorConfig | None = None) -> list[str]:
    """Register the estimators in verl's advantage-estimator registry.

    Args:
        config: Settings used by the registered estimators (defaults if omitted).

    Returns:
        The names registered now: ``"g2po"``, and ``"gigpo"`` unless verl
        already had a different estimator of that name.

    Raises:
        MissingExtraError: verl is not installed.
    """
    global _SETTINGS
    if config is not None and not isinstance(config, EstimatorConfig):
        raise ConfigError("config must be an agentmc.rl.EstimatorConfig")
    try:
        from verl.trainer.ppo import core_algos
    except ImportError as error:
        raise MissingExtraError(
            f"verl is not installed ({error}); install verl to use agentmc.rl.verl.register()"
        ) from None
    _SETTINGS = _Settings(config or EstimatorConfig())
    registry = getattr(core_algos, "ADV_ESTIMATOR_REGISTRY", {})
    registered = []
    for name, function in _FUNCTIONS.items():
        existing = registry.get(name)
        if _same_function(existing, function):  # ours, e.g. from before importlib.reload
            registry.pop(name)
            existing = None
        if existing is not None and existing is not function:
            if name == "g2po":
                raise ConfigError(f"verl already has a different estimator named {name!r}")
            logger.info("verl already provides %r; keeping its version", name)
            continue
        core_algos.register_adv_est(name)(function)
        registered.append(name)
    return registered


if "verl" in sys.modules:  # imported by verl (VERL_USE_EXTERNAL_MODULES) or after it
    register()
