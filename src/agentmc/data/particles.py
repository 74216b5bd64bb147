"""Every particle's trajectory of one episode, with shared prefixes stored once.

SMC and Best-of-N play K trajectories of one task; ``agentmc run`` and
``agentmc eval`` keep all of them (not only the selected one) so that a critic
can later learn from everything a deployment generated. Particles of one
episode share a lot: clones made by resampling share their whole past, and
every particle shares the task text, the policy and the seed. So the K
trajectories are packed as a prefix tree of turns:

``{"env_id", "task_id", "task", "policy", "synthetic", "seed",
"nodes": [[parent, turn], ...], "leaves": [{"node", "success", "error",
"meta"}, ...]}``

``nodes[i]`` is one turn whose previous turn is ``nodes[parent]`` (``-1``:
the first turn); a leaf names the last node of one particle (``-1``: no turn
taken). Turns with the same parent and the same content are one node, so a
prefix that K particles share is written once. :func:`unpack` rebuilds the K
:class:`~agentmc.data.trajectory.Trajectory` objects exactly.

Particles that resampling dropped before they finished are not kept: they
have no outcome, so no critic target can be built from them.

Example:
    >>> from agentmc.data.trajectory import Trajectory, Turn
    >>> a = Turn("get 1 oak log", "get 1 oak log", "Got 1 oak log", 0.0)
    >>> b = Turn("craft stick", "craft stick", "Crafted 1 stick", 1.0, terminated=True)
    >>> c = Turn("inventory", "inventory", "Inventory: oak log", 0.0, truncated=True)
    >>> base = dict(env_id="textcraft", task_id="0", task="Goal: craft stick.",
    ...             policy="noisy-expert", synthetic=True)
    >>> trajectories = [Trajectory(turns=(a, b), success=True, **base),
    ...                 Trajectory(turns=(a, c), **base)]
    >>> packed = pack(trajectories)
    >>> len(packed["nodes"])  # the shared first turn is stored once
    3
    >>> unpack(packed) == trajectories
    True
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from agentmc.data.trajectory import Trajectory, Turn
from agentmc.errors import DataError

_SHARED = ("env_id", "task_id", "task", "policy", "synthetic", "seed")


def pack(trajectories: Sequence[Trajectory]) -> dict[str, Any]:
    """Pack trajectories of one episode (same task, policy and seed) into a prefix tree.

    Args:
        trajectories: The K particles' trajectories.

    Returns:
        The JSON-safe packed form (see the module docstring).

    Raises:
        DataError: No trajectory, or trajectories of different tasks, policies or seeds.
    """
    if not trajectories:
        raise DataError("no trajectories to pack")
    first = trajectories[0]
    for trajectory in trajectories[1:]:
        for name in _SHARED:
            if getattr(trajectory, name) != getattr(first, name):
                raise DataError(
                    f"particles of one episode differ in {name} "
                    f"({getattr(first, name)!r} vs {getattr(trajectory, name)!r})"
                )
    nodes: list[list[Any]] = []
    index: dict[tuple[int, str], int] = {}
    encoded: dict[int, tuple[str, dict[str, Any]]] = {}  # id(turn) -> its JSON, once
    leaves = []
    for trajectory in trajectories:
        parent = -1
        for turn in trajectory.turns:
            cached = encoded.get(id(turn))
            if cached is None:
                data = turn.to_dict()
                cached = encoded[id(turn)] = (json.dumps(data, sort_keys=True), data)
            key = (parent, cached[0])
            node = index.get(key)
            if node is None:
                node = index[key] = len(nodes)
                nodes.append([parent, cached[1]])
            parent = node
        leaves.append(
            {
                "node": parent,
                "success": trajectory.success,
                "error": trajectory.error,
                "meta": trajectory.meta,
            }
        )
    return {name: getattr(first, name) for name in _SHARED} | {"nodes": nodes, "leaves": leaves}


def unpack(data: dict[str, Any]) -> list[Trajectory]:
    """The trajectories packed by :func:`pack`, in their original order.

    Raises:
        DataError: A malformed packed form (a missing field or a dangling node).
    """
    try:
        nodes = data["nodes"]
        turns = [Turn.from_dict(turn) for _, turn in nodes]
        parents = [int(parent) for parent, _ in nodes]
        out = []
        for leaf in data["leaves"]:
            path: list[Turn] = []
            node = int(leaf["node"])
            while node != -1:
                if not 0 <= node < len(nodes) or len(path) > len(nodes):
                    raise ValueError(f"node {node} out of range")
                path.append(turns[node])
                node = parents[node]
            out.append(
                Trajectory(
                    env_id=data["env_id"],
                    task_id=str(data["task_id"]),
                    task=data["task"],
                    turns=tuple(reversed(path)),
                    policy=data["policy"],
                    synthetic=bool(data["synthetic"]),
                    success=bool(leaf.get("success", False)),
                    seed=data.get("seed"),
                    error=leaf.get("error"),
                    meta=dict(leaf.get("meta") or {}),
                )
            )
    except (KeyError, TypeError, ValueError) as error:
        raise DataError(f"malformed packed particles ({error})") from None
    return out
