import json

import numpy as np
import pytest

from agentmc.data.particles import pack, unpack
from agentmc.data.trajectory import Trajectory, Turn
from agentmc.envs import make
from agentmc.errors import DataError
from agentmc.methods import MethodSpec, run_method
from agentmc.policies.expert import NoisyExpertPolicy


def turn(text, reward=0.0, **flags):
    return Turn(text, text, f"saw {text}", reward, **flags)


def trajectory(*texts, success=False, seed=1, task_id="0"):
    turns = tuple(turn(t) for t in texts)
    return Trajectory("toy", task_id, "Goal.", turns, "scripted", True, success=success, seed=seed)


def test_round_trip_with_shared_and_empty_prefixes():
    items = [
        trajectory("a", "b", "c", success=True),
        trajectory("a", "b", "d"),
        trajectory("a", "e"),
        trajectory(),
        trajectory("a", "b", "c", success=True),
    ]
    packed = json.loads(json.dumps(pack(items)))
    # a, b, c, d, e: five distinct (parent, turn) nodes for 11 turns.
    assert len(packed["nodes"]) == 5
    assert [leaf["node"] for leaf in packed["leaves"]][3] == -1
    assert unpack(packed) == items


def test_same_turn_text_after_different_pasts_is_not_merged():
    items = [trajectory("a", "c"), trajectory("b", "c")]
    packed = pack(items)
    assert len(packed["nodes"]) == 4 and unpack(packed) == items


def test_refuses_mixed_episodes_and_dangling_nodes():
    with pytest.raises(DataError, match="task_id"):
        pack([trajectory("a"), trajectory("a", task_id="1")])
    with pytest.raises(DataError, match="seed"):
        pack([trajectory("a"), trajectory("a", seed=2)])
    with pytest.raises(DataError, match="no trajectories"):
        pack([])
    packed = pack([trajectory("a", "b")])
    packed["leaves"][0]["node"] = 9
    with pytest.raises(DataError, match="malformed"):
        unpack(packed)


@pytest.mark.parametrize("text", ["bon:4", "amc:4", "amc:4:critic"])
def test_methods_keep_every_final_particle(text):
    from agentmc.critics.baselines import ZeroCritic

    spec = MethodSpec.parse(text)
    critic = ZeroCritic() if spec.select == "critic" else None
    result = run_method(
        spec,
        lambda: make("textcraft", task_id="5"),
        NoisyExpertPolicy(0.0, 0.0, eps=0.85),
        np.random.default_rng(2),
        critic=critic,
    )
    particles = result.trajectories()
    assert len(particles) == 4
    assert [p.total_return for p in particles] == result.candidates_rewards
    assert particles[result.diagnostics["selected"]].turns == result.trajectory.turns
    assert all(p.meta["particle"] == i for i, p in enumerate(particles))
