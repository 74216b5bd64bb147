"""The SMC genealogy recorded with an episode, and its SVG, agree with what the sampler did."""

from __future__ import annotations

import re

import numpy as np
import pytest

from agentmc.envs import make, task_ids
from agentmc.eval.genealogy import build_genealogy, genealogy_svg
from agentmc.methods import EpisodeResult, MethodSpec, run_method
from agentmc.policies.expert import NoisyExpertPolicy


class LengthCritic:
    """A critic that prefers longer histories (any non-constant critic will do)."""

    name = "length"

    def values(self, histories):
        return np.array([0.05 * len(h.messages) for h in histories])


def episode(spec: str, seed: int, critic=None) -> dict:
    task = task_ids("textcraft", "test")[1]
    result = run_method(
        MethodSpec.parse(spec),
        lambda: make("textcraft", task_id=task),
        NoisyExpertPolicy(),
        np.random.default_rng(seed),
        critic=critic,
    )
    # what the report reads is the JSON form
    return EpisodeResult.from_dict(result.to_dict()).to_dict()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_genealogy_matches_the_sampler(seed):
    record = episode("amc:6", seed, critic=LengthCritic())
    diagnostics = record["diagnostics"]
    tree = build_genealogy(record)
    assert tree is not None
    assert tree.n_particles == 6 and tree.n_steps == diagnostics["n_steps"]
    assert tree.resampled == [event["t"] for event in diagnostics["genealogy"]]
    assert tree.resampled, "schedule 'every' resamples at least once on this task"
    for event in diagnostics["genealogy"]:
        row = tree.nodes[event["t"] - 1]
        for slot, node in enumerate(row):
            assert node.children == event["ancestors"].count(slot)
        following = tree.nodes[event["t"]] if event["t"] < tree.n_steps else []
        assert [n.parent for n in following] == event["ancestors"][: len(following)]
    # the highlighted lineage is the returned trajectory, action by action
    trajectory = record["trajectory"]
    path_actions = [tree.nodes[t][slot].action for t, slot in enumerate(tree.selected_path)]
    moved = [a for a in path_actions if a is not None]
    assert moved == [turn["action"] for turn in trajectory["turns"]]
    assert tree.selected_path[-1] == diagnostics["selected"]
    # critic values at checkpoints are the critic's, for running particles
    checkpoint = diagnostics["checkpoints"][0]
    assert tree.has_values and any(v > 0 for v in checkpoint["values"])
    weights = [n.weight for n in tree.nodes[checkpoint["t"] - 1]]
    assert sum(weights) == pytest.approx(1.0)


def test_svg_draws_every_particle_event_and_the_selection():
    record = episode("amc:6", 0, critic=LengthCritic())
    tree = build_genealogy(record)
    svg = genealogy_svg(tree)
    assert svg.startswith("<svg class='genealogy'") and svg.endswith("</svg>")
    assert len(re.findall(r"<circle class='particle", svg)) == tree.n_particles * tree.n_steps
    assert svg.count("<g class='resample'") == len(tree.resampled)
    pruned = sum(n.children == 0 for t in tree.resampled for n in tree.nodes[t - 1])
    cloned = sum(n.children > 1 for t in tree.resampled for n in tree.nodes[t - 1])
    assert svg.count("<path class='pruned'") == pruned
    assert svg.count("<text class='clone'") == cloned
    assert pruned == cloned == 0 or (pruned > 0 and cloned > 0)
    assert len(re.findall(r"class='edge selected'", svg)) == tree.n_steps
    assert "class='critic-value'" in svg and "class='selected-label'" in svg
    assert "<script" not in svg and "href" not in svg


def test_best_of_n_has_lanes_but_no_resampling():
    record = episode("bon:4", 0)
    tree = build_genealogy(record)
    assert tree.resampled == [] and tree.n_particles == 4
    assert all(n.parent in (None, n.slot) for row in tree.nodes for n in row)
    assert not tree.has_values
    assert "class='critic-value'" not in genealogy_svg(tree)


def test_old_records_without_particle_steps_have_no_genealogy():
    assert build_genealogy({"diagnostics": {"checkpoints": []}}) is None


def test_task_page_lists_every_particles_actions():
    from agentmc.eval.pages import task_page

    record = episode("amc:6", 0, critic=LengthCritic())
    row = {"method": "amc@reward-k6", "task_id": "x", "success": True, "calls": 9, "cost": 0.0}
    page = task_page("x", {"amc@reward-k6": row | {"episode": record}}, ["amc@reward-k6"], "t")
    table = page.split("<table class='particle-actions'>", 1)[1].split("</table>", 1)[0]
    tree = build_genealogy(record)
    assert table.count("<tr><th>p") == 6
    assert table.count("<td class='selected") == tree.n_steps
    first = record["trajectory"]["turns"][0]["action"]
    assert first in table
