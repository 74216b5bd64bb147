from __future__ import annotations

import asyncio

import numpy as np
import pytest

from agentmc.envs import make, task_ids
from agentmc.envs.textcraft.expert import read_task, task_actions
from agentmc.errors import ConfigError
from agentmc.policies import make_policy
from agentmc.policies.expert import NoisyExpertConfig, NoisyExpertPolicy
from agentmc.rollout import arollout
from agentmc.seeding import task_rng
from agentmc.types import Message

# Items made from an ingredient whose name they end with: not kinds of it.
TASK = """Crafting commands:
craft 4 polished blackstone using 4 blackstone
craft 1 glistering melon slice using 8 gold nugget, 1 melon slice
craft 1 thing using 1 polished blackstone, 1 glistering melon slice, 1 planks
craft 4 oak planks using 1 oak logs

Goal: craft thing."""


def act(policy, messages, **kwargs):
    return [c.text for c in asyncio.run(policy.complete(messages, **kwargs))]


def test_items_made_from_an_ingredient_are_not_its_tag_members():
    knowledge = read_task(TASK)
    assert dict(knowledge.tags) == {"planks": ("oak_planks",)}
    plan = act(NoisyExpertPolicy(), [Message("user", TASK)], temperature=0)
    assert plan[0] in (
        "get 4 blackstone",
        "get 8 gold nugget",
        "get 1 melon slice",
        "get 1 oak logs",
    )


@pytest.mark.parametrize("split", ["validation", "test"])
def test_noise_free_expert_solves_every_task(split):
    # the noise-free expert must solve every task that fits the step cap (a few banners need
    # more steps than the cap allows, even for the gold planner): otherwise pass@K is capped
    policy = NoisyExpertPolicy(0.0, 0.0)
    ids = [
        t
        for t in task_ids("textcraft", split)
        if len(make("textcraft", task_id=t).gold_plan()) <= 20
    ]

    async def one(task_id):
        env = make("textcraft", task_id=task_id)
        return await arollout(env, policy, np.random.default_rng(0), temperature=0)

    async def run_all():
        return await asyncio.gather(*(one(t) for t in ids))

    unsolved = [t for t, traj in zip(ids, asyncio.run(run_all()), strict=True) if not traj.success]
    assert unsolved == []


def test_spec_names_the_noise_and_round_trips():
    policy = make_policy("noisy-expert:eps=0.3")
    assert (policy.name, policy.synthetic) == ("noisy-expert:eps=0.3", True)
    assert (policy.config.eps, policy.config.mistake_prob, policy.config.waste_prob) == (0.3, 0, 0)
    mixed = make_policy("noisy-expert:eps=0.2,waste=0.1")
    assert make_policy(mixed.name).config == mixed.config
    assert make_policy("noisy-expert").name == "noisy-expert"
    assert NoisyExpertConfig().spec == "noisy-expert"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("noisy-expert:", "nothing after"),
        ("noisy-expert:eps", "eps=E"),
        ("noisy-expert:eps=x", "not a number"),
        ("noisy-expert:eps=1.5", "between 0 and 1"),
        ("noisy-expert:mistake=0.2", "need eps="),
        ("noisy-expert:eps=0.3,eps=0.2", "twice"),
        ("noisy-expert:eps=0.6,waste=0.5", "at most 1"),
    ],
)
def test_bad_specs_are_one_clear_error(spec, message):
    with pytest.raises(ConfigError, match=message):
        make_policy(spec)


def test_eps_one_plays_uniformly_among_the_valid_actions():
    env = make("textcraft", task_id=task_ids("textcraft", "test")[3])
    task, _ = env.reset(seed=0)
    candidates = env.valid_actions()
    policy = NoisyExpertPolicy(0.0, 0.0, eps=1.0)
    picks = act(policy, [Message("user", task)], n=4000, seed=1, candidates=candidates)
    assert set(picks) <= set(candidates)
    counts = np.array([picks.count(c) for c in candidates])
    expected = len(picks) / len(candidates)
    # chi-squared goodness of fit to uniform at alpha = 0.001
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    from scipy.stats import chi2 as chi2_dist

    assert chi2 < chi2_dist.ppf(0.999, len(candidates) - 1)
    # without candidates the slip draws from the list read off the task text
    own = act(policy, [Message("user", task)], n=200, seed=2)
    assert set(own) <= set(task_actions(read_task(task)))
    # at temperature 0 it never slips
    assert len(set(act(policy, [Message("user", task)], n=20, temperature=0))) == 1


def test_noise_leaves_room_for_search_and_compounds_with_depth():
    """pass@8 well above pass@1, and deeper recipes fail more often (synthetic agent)."""
    policy = NoisyExpertPolicy(0.0, 0.0, eps=0.85)
    ids = task_ids("textcraft", "test")[::3]

    async def outcomes(task_id):
        env = make("textcraft", task_id=task_id)
        plan_length = len(env.gold_plan())
        runs = [
            await arollout(make("textcraft", task_id=task_id), policy, task_rng(5, int(task_id), s))
            for s in range(8)
        ]
        return plan_length, [r.success for r in runs]

    async def run_all():
        return await asyncio.gather(*(outcomes(t) for t in ids))

    results = asyncio.run(run_all())
    lengths = np.array([n for n, _ in results])
    wins = np.array([w for _, w in results], dtype=float)
    pass_1, pass_8 = wins.mean(), wins.max(axis=1).mean()
    assert pass_8 > pass_1 + 0.15
    short, long = wins[lengths <= np.median(lengths)].mean(), wins[lengths > np.median(lengths)]
    assert long.size and short > long.mean() + 0.1


def test_textcraft_names_still_import_from_here_and_are_textcraft_s_own():
    import agentmc.policies.expert as here
    from agentmc.envs.textcraft import expert as home

    for name in ("TaskKnowledge", "plan_from_history", "read_task", "task_actions"):
        assert getattr(here, name) is getattr(home, name)
    with pytest.raises(AttributeError, match="no attribute 'Solver'"):
        here.Solver  # noqa: B018  (it never lived here)
