"""Within-task metrics, final-state examples and the hashed critic's ranking rows."""

from __future__ import annotations

import numpy as np
import pytest

from agentmc.critics.evaluate import (
    critic_metrics,
    expected_pair_concordance,
    grouped_spearman,
    pair_concordance,
    prediction_metrics,
    within_task_metrics,
)
from agentmc.critics.fit import FitConfig, fit
from agentmc.critics.hashed import HashedConfig, ranking_pairs
from agentmc.critics.targets import make_examples


def test_pair_concordance_counts_only_pairs_inside_a_group():
    values = np.array([0.9, 0.1, 0.2, 0.8])
    success = np.array([1.0, 0.0, 1.0, 0.0])
    # Across groups the order is wrong (0.2 < 0.8) but those pairs are never compared.
    assert pair_concordance(values, success, ["a", "a", "b", "b"]) == (0.5, 2, 2)
    assert pair_concordance(values, success, ["a", "a", "a", "a"])[0] == pytest.approx(0.75)
    # Ties count half; identical histories (equal keys) are skipped.
    assert pair_concordance(np.zeros(2), np.array([1.0, 0.0]), ["a", "a"])[0] == 0.5
    assert pair_concordance(np.zeros(2), np.array([1.0, 0.0]), ["a", "a"], [7, 7]) == (None, 0, 0)


def test_a_critic_that_only_knows_task_difficulty_is_at_chance_within_tasks():
    rng = np.random.default_rng(0)
    n_tasks, per_task = 30, 8
    difficulty = rng.random(n_tasks)
    tasks = np.repeat(np.arange(n_tasks), per_task)
    success = (rng.random(tasks.size) < difficulty[tasks]).astype(float)
    task_ids = [str(t) for t in tasks]
    steps = np.zeros(tasks.size, dtype=int)
    by_task = difficulty[tasks]  # perfect knowledge of the task, nothing about the attempt
    pooled = prediction_metrics(by_task, success, success, steps, task_ids=task_ids)
    assert pooled["auroc_success"] > 0.75
    assert pooled["within_task_auroc"] == 0.5
    # A critic that sees the attempt's outcome ranks perfectly inside every task.
    oracle = within_task_metrics(success + by_task, success, success, task_ids, steps)
    assert oracle["within_task_auroc"] == 1.0
    assert oracle["within_task_pairwise_accuracy"] == 1.0
    assert oracle["within_task_groups"] == pooled["within_task_groups"] > 0


def test_expected_concordance_is_what_realised_outcomes_average_to():
    rng = np.random.default_rng(1)
    groups = ["a"] * 4 + ["b"] * 3
    p = np.array([0.9, 0.6, 0.3, 0.3, 0.8, 0.5, 0.1])
    keys = [0, 1, 2, 2, 3, 4, 5]  # items 2 and 3 are one history: never paired
    noisy = np.array([0.5, 0.7, 0.2, 0.4, 0.8, 0.0, 0.3])  # two pairs out of order
    draws = rng.random((20000, p.size)) < p
    numerators = denominators = 0.0
    for success in draws.astype(float):
        score, pairs, _ = pair_concordance(noisy, success, groups, keys)
        numerators += (score or 0.0) * pairs
        denominators += pairs
    expected, n_pairs, mixed = expected_pair_concordance(noisy, p, groups, keys)
    assert n_pairs == 5 + 3
    assert mixed == pytest.approx(denominators / len(draws), rel=0.02)
    assert expected == pytest.approx(numerators / denominators, abs=0.01)
    ceiling, _, _ = expected_pair_concordance(p, p, groups, keys)
    assert ceiling > expected  # no ordering beats the true probabilities
    reversed_order, _, _ = expected_pair_concordance(-p, p, groups, keys)
    assert reversed_order == pytest.approx(1.0 - ceiling)
    # Certain outcomes: a pair with p = 1 and p = 0 is always mixed and always ordered right.
    certain = np.array([1.0, 0.0])
    assert expected_pair_concordance(certain, certain, ["a"] * 2) == (1.0, 1, 1.0)
    assert expected_pair_concordance(np.zeros(2), np.ones(2), ["a"] * 2) == (None, 1, 0.0)


def test_grouped_spearman_weights_groups_by_size():
    values = np.array([1.0, 2.0, 3.0, 3.0, 2.0, 1.0, 0.0])
    targets = np.array([1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 4.0])
    rho, used = grouped_spearman(values, targets, ["a"] * 3 + ["b"] * 4)
    assert used == 2 and rho == pytest.approx((3 * 1.0 + 4 * -1.0) / 7)


def test_final_states_carry_the_outcome(craft_data):
    plain = make_examples(craft_data[:6])
    with_final = make_examples(craft_data[:6], terminal=True)
    assert len(with_final) == len(plain) + 6
    final = with_final.is_terminal
    assert final.sum() == 6 and not plain.is_terminal.any()
    for i in np.flatnonzero(final):
        trajectory = craft_data[int(with_final.episode[i])]
        assert with_final.histories[i].n_turns == trajectory.n_steps
        assert with_final.targets[i] == trajectory.total_return
        assert with_final.steps[i] == trajectory.n_steps
    success = make_examples(craft_data[:6], "success", terminal=True)
    assert set(success.targets[success.is_terminal]) <= {0.0, 1.0}
    # A subset keeps the flags with its rows.
    assert with_final.subset(final).is_terminal.all()


def test_ranking_pairs_stay_inside_a_task_and_step(craft_data):
    examples = make_examples(craft_data, terminal=True)
    first, second = ranking_pairs(examples, 5, np.random.default_rng(0))
    assert first.size > 0
    for i, j in zip(first, second, strict=True):
        assert examples.task_ids[i] == examples.task_ids[j]
        assert examples.is_terminal[i] == examples.is_terminal[j]
        if not examples.is_terminal[i]:
            assert examples.steps[i] == examples.steps[j]
        assert examples.targets[i] > examples.targets[j]
        assert examples.histories[i] != examples.histories[j]


def test_ranking_rows_rank_attempts_within_tasks(craft_data, craft_heldout):
    heldout = make_examples(craft_heldout, terminal=True)
    results = {}
    for weight in (0.0, 3.0):
        result = fit(
            craft_data,
            FitConfig(seed=0),
            HashedConfig(n_features=2**12, rank_weight=weight, strengths=(3.0, 30.0)),
        )
        assert result.critic.config.rank_weight == weight
        results[weight], _ = critic_metrics(result.critic, heldout)
    ranked = results[3.0]
    # Finished attempts: the final observation says whether the goal was crafted.
    assert ranked["final_within_task_auroc"] > 0.9
    # Under the null a pooled within-task AUROC over these pairs is ~0.5 +- 0.03.
    assert ranked["within_task_auroc"] > 0.6
    assert ranked["within_task_pairs"] == results[0.0]["within_task_pairs"] > 50


def test_states_before_a_resampling_are_left_out(craft_data):
    import dataclasses

    trajectory = next(t for t in craft_data if t.n_steps >= 5)
    selected = dataclasses.replace(trajectory, meta={"unbiased_from": 3})
    full = make_examples([trajectory], terminal=True)
    kept = make_examples([selected], terminal=True)
    assert len(kept) == len(full) - 3
    assert kept.skipped == {"states before a resampling": 3}
    assert kept.steps.tolist() == list(range(3, trajectory.n_steps + 1))
    assert [h.n_turns for h in kept.histories] == kept.steps.tolist()
    np.testing.assert_array_equal(kept.targets, full.targets[3:])
    assert kept.is_terminal.tolist() == [False] * (trajectory.n_steps - 3) + [True]


def test_amc_particles_record_their_last_resampling(tmp_path):
    from agentmc.critics.fit import episode_trajectories
    from agentmc.envs import make
    from agentmc.methods import MethodSpec, run_method
    from agentmc.policies import make_policy

    result = run_method(
        MethodSpec.parse("amc:4:reward:steps=2,5"),
        lambda: make("textcraft", task_id="9"),
        make_policy("noisy-expert:eps=0.85"),
        np.random.default_rng(0),
    )
    row = {"episode": result.to_dict(), "split": "validation", "method": result.method}
    found = episode_trajectories(row, "run")
    resampled = [c["t"] for c in result.diagnostics["checkpoints"] if c["resampled"]]
    assert resampled == [2, 5]
    for trajectory in found:
        expected = max((t for t in resampled if t < trajectory.n_steps), default=0)
        assert trajectory.meta["unbiased_from"] == expected
        assert trajectory.meta["split"] == "validation" and trajectory.meta["source"] == "run"
    # Best-of-N samples are the prior's own: every state is kept.
    bon = run_method(
        MethodSpec.parse("bon:3"),
        lambda: make("textcraft", task_id="9"),
        make_policy("noisy-expert:eps=0.85"),
        np.random.default_rng(0),
    )
    row = {"episode": bon.to_dict(), "split": "validation", "method": bon.method}
    assert all("unbiased_from" not in t.meta for t in episode_trajectories(row, "run"))


def test_plan_features_let_the_hashed_critic_rank_textcraft_states_within_a_task(tmp_path):
    from agentmc.critics.artifact import load, save
    from agentmc.envs import make, task_ids
    from agentmc.policies import make_policy
    from agentmc.rollout import rollout

    policy = make_policy("noisy-expert:eps=0.85")  # synthetic prior, as in amc_deployable
    ids = task_ids("textcraft", "train")

    def data(tasks, n, seed):
        rng = np.random.default_rng(seed)
        return [rollout(make("textcraft", task_id=t), policy, rng) for t in tasks for _ in range(n)]

    train = data(ids[:100], 4, 0)
    heldout = make_examples(data(ids[100:160], 6, 1), "success", terminal=True)
    found = {}
    for plan in (False, True):
        config = HashedConfig(2**12, rank_weight=1.0, strengths=(3.0, 30.0), plan_features=plan)
        result = fit(train, FitConfig(target="success", seed=0), config)
        assert result.critic.featurizer.n_columns == result.critic.coef.size
        found[plan], values = critic_metrics(result.critic, heldout)
    # The setting travels with the artifact: the loaded critic builds the same features.
    loaded = load(save(result.critic, tmp_path / "critic"), env_id="textcraft")
    assert loaded.config.plan_features
    np.testing.assert_allclose(loaded.values(heldout.histories), values)
    # Running states of one held-out task at one step (~3900 pairs): words alone are
    # near chance; the remaining plan's length is what tells the attempts apart.
    assert found[True]["within_task_pairs"] > 3000
    assert found[True]["within_task_auroc"] > 0.62
    assert found[True]["within_task_auroc"] > found[False]["within_task_auroc"] + 0.05
