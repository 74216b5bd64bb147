from __future__ import annotations

import numpy as np
import pytest
from rl_reference import anchor_ref, g2po_edge_ref, node_values_ref

from agentmc.errors import ConfigError, DataError
from agentmc.rl.graph import (
    Episode,
    anchor_advantages,
    batch_edge_advantages,
    build_graph,
    edge_advantages,
)


def ep(states, actions, rewards, terminated=True, task="t"):
    return Episode(
        task, tuple(states), tuple(actions), np.asarray(rewards, dtype=float), terminated
    )


def random_group(rng, n_states=5, nan_rate=0.05):
    """Small state space, so that rollouts overlap, loop and differ in length."""
    group = []
    for _ in range(rng.integers(1, 7)):
        length = int(rng.integers(0, 9))
        states = [int(s) for s in rng.integers(0, n_states, length + 1)]
        actions = [int(a) for a in rng.integers(0, 3, length)]
        if rng.random() < 0.5:  # sparse terminal reward
            rewards = np.zeros(length)
            if length:
                rewards[-1] = float(rng.integers(0, 2))
        else:
            rewards = rng.normal(size=length)
        if length and rng.random() < nan_rate:
            rewards[rng.integers(length)] = np.nan
        group.append(ep(states, actions, rewards, bool(rng.integers(0, 2))))
    return group


def test_hand_computed_graph():
    # Two rollouts share the start "a" and the step a -x-> b; one then wins.
    #   win:  a -x-> b -y-> goal (r=1, terminated)
    #   lose: a -x-> b -z-> b -z-> dead (r=0, terminated); b -z-> b is a self-loop
    win = ep(["a", "b", "goal"], ["x", "y"], [0, 1])
    lose = ep(["a", "b", "b", "dead"], ["x", "z", "z"], [0, 0, 0])
    graph = build_graph([win, lose])
    values = dict(zip(graph.keys, graph.node_values.tolist(), strict=True))
    # V(a) = V(b) = mean(1, 0): each rollout counted once, from its first visit
    assert values == {"a": 0.5, "b": 0.5, "goal": 0.0, "dead": 0.0}
    assert graph.node_counts.tolist() == [2, 2, 0, 0]
    td = {
        tuple(graph.keys[s] if i != 1 else graph.action_keys[s] for i, s in enumerate(edge)): v
        for edge, v in zip(graph.edges.tolist(), graph.edge_td.tolist(), strict=True)
    }
    assert td == {
        ("a", "x", "b"): 0.0,  # 0 + 0.5 - 0.5
        ("b", "y", "goal"): 0.5,  # 1 + 0 - 0.5
        ("b", "z", "b"): 0.0,  # 0 + 0.5 - 0.5 (the loop)
        ("b", "z", "dead"): -0.5,  # terminal: 0 + 0 - 0.5
    }
    assert graph.edge_counts.sum() == 5
    # standardised over the 4 distinct edges: mean 0, population std sqrt(1/8)
    std = np.sqrt(0.125)
    adv = edge_advantages(graph, eps=0.0)
    np.testing.assert_allclose(adv[0], [0.0, 0.5 / std])
    np.testing.assert_allclose(adv[1], [0.0, 0.0, -0.5 / std])


def test_truncated_final_state_takes_its_value_from_other_rollouts():
    # "cut" stops at b by the step cap; "go" passes through b and wins.
    go = ep(["a", "b", "goal"], ["x", "y"], [0, 1])
    cut = ep(["a", "b"], ["x"], [0], terminated=False)
    graph = build_graph([go, cut])
    values = dict(zip(graph.keys, graph.node_values.tolist(), strict=True))
    assert values["b"] == 1.0  # the truncated visit is not a (zero-return) visit
    assert values["a"] == 0.5
    # a -x-> b is one edge for both: TD = 0 + V(b) - V(a) = 0.5 (bootstrapped, not 0)
    assert graph.step_edges[0][0] == graph.step_edges[1][0]
    # if "cut" had terminated at b, its step would be a different TD occurrence
    terminated = build_graph([go, ep(["a", "b"], ["x"], [0], terminated=True)])
    assert terminated.edge_td[terminated.step_edges[1][0]] < graph.edge_td[graph.step_edges[1][0]]


def test_all_rewards_equal_gives_zero():
    group = [ep(["a", "b", "c"], ["x", "y"], [0, 1]), ep(["a", "c"], ["z"], [1])]
    for adv in edge_advantages(build_graph(group)):
        assert np.all(adv == 0.0)
    for adv in anchor_advantages(group, gamma=1.0):
        assert np.all(adv == 0.0)


def test_single_trajectory_gives_zero():
    graph = build_graph([ep(["a", "b", "a", "c"], ["x", "y", "x"], [0, 0, 1])])
    assert all(np.all(a == 0) for a in edge_advantages(graph))
    # repeated state "a" forms a step group of two with equal returns (gamma = 1)
    assert all(np.all(a == 0) for a in anchor_advantages([ep("abac", "xyx", [0, 0, 1])], gamma=1))


def test_cycle_back_to_a_visited_state_after_truncation():
    # a -x-> b -y-> c -z-> b (r=1), then the step cap: the final b is valued by
    # the first visit of b, whose return-to-go (1) already includes that reward.
    graph = build_graph([ep("abcb", "xyz", [0, 0, 1], terminated=False)])
    assert graph.node_values.tolist() == [1.0, 1.0, 1.0]
    assert sorted(graph.edge_td.tolist()) == [0.0, 0.0, 1.0]  # c -z-> b: 1 + V(b) - V(c)
    std = np.sqrt(np.var([0.0, 0.0, 1.0]))
    np.testing.assert_allclose(
        edge_advantages(graph, eps=0.0)[0], np.array([-1 / 3, -1 / 3, 2 / 3]) / std
    )


def test_gigpo_hand_computed():
    # From "a", two rollouts pick x (returns 1 and 0) and one picks y (return 1).
    group = [
        ep(["a", "b"], ["x"], [1]),
        ep(["a", "c"], ["x"], [0]),
        ep(["a", "d", "e"], ["y", "w"], [0, 1]),
    ]
    adv = anchor_advantages(group, gamma=0.5, scale="mean")
    # returns-to-go from "a": 1, 0, 0.5 (discounted) -> mean 0.5
    np.testing.assert_allclose(adv[0], [0.5])
    np.testing.assert_allclose(adv[1], [-0.5])
    np.testing.assert_allclose(adv[2], [0.0, 0.0])  # "d" is a singleton step group
    scaled = anchor_advantages(group, gamma=0.5, scale="mean_std", eps=0.0)
    np.testing.assert_allclose(scaled[0], [1.0])  # unbiased std of (1, 0, .5) is 0.5


def test_episodes_with_zero_steps_are_allowed():
    group = [ep(["a"], [], []), ep(["a", "b"], ["x"], [1])]
    graph = build_graph(group)
    assert [len(e) for e in edge_advantages(graph)] == [0, 1]
    assert [len(a) for a in anchor_advantages(group)] == [0, 1]


def test_nan_episode_is_left_out():
    clean = [ep(["a", "b"], ["x"], [1]), ep(["a", "c"], ["y"], [0])]
    dirty = clean + [ep(["a", "b"], ["x"], [np.nan])]
    with_nan, without = build_graph(dirty), build_graph(clean)
    np.testing.assert_allclose(with_nan.node_values[: without.n_nodes], without.node_values)
    adv = edge_advantages(with_nan)
    assert np.all(adv[2] == 0)
    np.testing.assert_allclose(adv[0], edge_advantages(without)[0])
    assert np.all(anchor_advantages(dirty)[2] == 0)


@pytest.mark.parametrize("gamma", [1.0, 0.9])
def test_vectorised_graph_equals_loop_reference(gamma):
    for seed in range(300):
        group = random_group(np.random.default_rng(seed))
        graph = build_graph(group, gamma=gamma)
        expected_values = node_values_ref(group, gamma)
        got_values = dict(zip(graph.keys, graph.node_values.tolist(), strict=True))
        for key, value in got_values.items():
            assert value == pytest.approx(expected_values.get(key, 0.0), abs=1e-12)
        expected = g2po_edge_ref(group, gamma, 1e-4)
        for got, want in zip(edge_advantages(graph), expected, strict=True):
            np.testing.assert_allclose(got, want, atol=1e-9)
        for scale in ("mean", "mean_std"):
            got_anchor = anchor_advantages(group, gamma=gamma, scale=scale)
            for got, want in zip(got_anchor, anchor_ref(group, gamma, scale, 1e-6), strict=True):
                np.testing.assert_allclose(got, want, atol=1e-9)


@pytest.mark.parametrize("gamma", [1.0, 0.9])
def test_batched_graphs_equal_group_by_group_bit_for_bit(gamma):
    """One pass over many groups gives exactly the per-group graphs' advantages."""
    for seed in range(150):
        rng = np.random.default_rng(seed)
        # Groups share keys (ints 0..4, also as strings in some groups): nodes of
        # different groups must stay apart however their keys collide.
        groups = []
        for g in range(int(rng.integers(1, 6))):
            group = [
                Episode(f"task-{g}", e.states, e.actions, e.rewards, e.terminated)
                for e in random_group(rng)
            ]
            if rng.random() < 0.3:
                group = [
                    Episode(
                        e.task_id, tuple(map(str, e.states)), e.actions, e.rewards, e.terminated
                    )
                    for e in group
                ]
            groups.append(group)
        batched = batch_edge_advantages(groups, gamma=gamma, eps=1e-4)
        assert len(batched) == len(groups)
        for group, (steps, stats) in zip(groups, batched, strict=True):
            graph = build_graph(group, gamma=gamma)
            assert stats == {"n_nodes": graph.n_nodes, "n_edges": graph.n_edges}
            expected = edge_advantages(graph, eps=1e-4)
            for got, want, loop in zip(
                steps, expected, g2po_edge_ref(group, gamma, 1e-4), strict=True
            ):
                np.testing.assert_array_equal(got, want)
                np.testing.assert_allclose(got, loop, atol=1e-9)
    assert batch_edge_advantages([]) == []
    with pytest.raises(DataError, match="empty group"):
        batch_edge_advantages([[ep("ab", "x", [1.0])], []])


def test_bad_groups():
    with pytest.raises(DataError, match="empty group"):
        build_graph([])
    with pytest.raises(DataError, match="one task"):
        build_graph([ep("ab", "x", [1], task="t1"), ep("ab", "x", [1], task="t2")])
    with pytest.raises(DataError, match="T \\+ 1 states"):
        ep("ab", "xy", [1, 1])
    with pytest.raises(ConfigError):
        build_graph([ep("ab", "x", [1])], gamma=2.0)
    with pytest.raises(ConfigError):
        anchor_advantages([ep("ab", "x", [1])], scale="std")
    with pytest.raises(DataError, match="empty group"):
        anchor_advantages([])


def test_graph_arrays_are_read_only():
    graph = build_graph([ep("ab", "x", [1])])
    with pytest.raises(ValueError):
        graph.node_values[0] = 3.0
    episode = ep("ab", "x", [1])
    with pytest.raises(ValueError):
        episode.rewards[0] = 2.0
