"""Deterministic sampler behaviour: bit-for-bit equivalences, limits, errors."""

from __future__ import annotations

import asyncio
import json
import math

import numpy as np
import pytest
from smc_problems import BETA, make_problem, run_many

from agentmc.errors import ConfigError
from agentmc.smc import SMC, Budget, SMCConfig, TableValue, TreeModel, WeightError, run_smc
from agentmc.smc.exact import TreeState

SEEDS = range(40)


def config(**kwargs) -> SMCConfig:
    base = {"n_particles": 8, "beta": BETA, "max_steps": 3}
    base.update(kwargs)
    return SMCConfig(**base)


class ZeroValue:
    async def values(self, t, states):
        return np.zeros(len(states))


def same(first, second) -> bool:
    return (
        np.array_equal(first.log_weights.log_w, second.log_weights.log_w)
        and first.log_evidence == second.log_evidence
        and first.states == second.states
        and [e.ancestors.tolist() for e in first.genealogy]
        == [e.ancestors.tolist() for e in second.genealogy]
        and [r.as_dict() for r in first.checkpoints] == [r.as_dict() for r in second.checkpoints]
    )


@pytest.mark.parametrize("schedule", ["every", "ess:0.6", "steps:2", "none"])
@pytest.mark.parametrize("resampler", ["systematic", "multinomial", "residual"])
def test_zero_critic_is_plain_reward_smc_bit_for_bit(problem, schedule, resampler):
    cfg = config(schedule=schedule, resampler=resampler)
    plain = run_many(problem.tree, cfg, SEEDS, None)
    zero = run_many(problem.tree, cfg, SEEDS, ZeroValue())
    assert all(same(a, b) for a, b in zip(plain, zero, strict=True))


@pytest.mark.parametrize("critic", ["zero", "exact", "bad"])
def test_no_resampling_gives_final_weights_exactly_exp_r_over_beta(problem, critic):
    for result in run_many(problem.tree, config(schedule="none"), SEEDS, problem.critics[critic]):
        assert np.array_equal(result.log_weights.log_w, result.returns / BETA)
        assert result.n_resamplings == 0


@pytest.mark.parametrize("critic", ["zero", "exact", "bad"])
def test_ess_zero_accumulates_every_checkpoint_into_exp_r_over_beta(problem, critic):
    """Weighs after every step and never resamples: overwriting instead of adding would fail."""
    results = run_many(problem.tree, config(schedule="ess:0"), SEEDS, problem.critics[critic])
    for result in results:
        assert len(result.checkpoints) >= 2
        assert result.n_resamplings == 0
        np.testing.assert_allclose(result.log_weights.log_w, result.returns / BETA, atol=1e-12)


def test_ess_mode_carries_weights_across_checkpoints_without_resampling(problem):
    """A checkpoint that does not resample must leave the earlier increments in the weights."""
    cfg = config(schedule="ess:0.3")
    for result in run_many(problem.tree, cfg, SEEDS, problem.critics["bad"]):
        resampled_at = [event.t for event in result.genealogy]
        last = max(resampled_at, default=0)
        # After the last resampling, every particle's log weight is the sum of its
        # increments since then: (R - R_at_last_resampling) / beta, V terms cancelling at the end.
        if last == 0:
            np.testing.assert_allclose(result.log_weights.log_w, result.returns / BETA, atol=1e-12)


@pytest.mark.parametrize("resampler", ["systematic", "stratified", "residual"])
@pytest.mark.parametrize("schedule", ["every", "ess:0.99", "steps:1,2"])
def test_infinite_beta_is_best_of_n_with_the_prior(problem, resampler, schedule):
    best_of_n = run_many(problem.tree, config(schedule="none", beta=math.inf), SEEDS)
    smc = run_many(
        problem.tree, config(schedule=schedule, resampler=resampler, beta=math.inf), SEEDS
    )
    for independent, steered in zip(best_of_n, smc, strict=True):
        assert steered.states == independent.states
        assert steered.log_evidence == 0.0
        for event in steered.genealogy:
            assert event.ancestors.tolist() == list(range(8))


def test_infinite_beta_with_multinomial_is_not_best_of_n(problem):
    best_of_n = run_many(problem.tree, config(schedule="none", beta=math.inf), SEEDS)
    smc = run_many(
        problem.tree, config(schedule="every", resampler="multinomial", beta=math.inf), SEEDS
    )
    assert any(a.states != b.states for a, b in zip(best_of_n, smc, strict=True))


def test_same_seed_same_result(problem):
    first = run_many(problem.tree, config(schedule="ess:0.6"), SEEDS, problem.critics["bad"])
    second = run_many(problem.tree, config(schedule="ess:0.6"), SEEDS, problem.critics["bad"])
    assert all(same(a, b) for a, b in zip(first, second, strict=True))


class Recording(TreeModel):
    """Tree model that remembers what it was asked to move."""

    def __init__(self, tree):
        super().__init__(tree)
        self.proposed: list[list[TreeState]] = []

    async def propose(self, t, states, rng):
        self.proposed.append(list(states))
        return await super().propose(t, states, rng)


class RecordingValue(TableValue):
    def __init__(self, table):
        super().__init__(table)
        self.calls: list[tuple[int, list]] = []

    async def values(self, t, states):
        self.calls.append((t, list(states)))
        return await super().values(t, states)


def test_finished_particles_are_frozen_and_never_valued(problem):
    model = Recording(problem.tree)
    critic = RecordingValue(problem.solution.soft_values)
    result = run_smc(model, config(schedule="every"), np.random.default_rng(0), critic)
    for batch in model.proposed:
        assert not any(problem.tree.is_leaf(state.prefix) for state in batch)
    for t, batch in critic.calls:
        assert t < 3  # the final checkpoint uses V = 0 and never calls the critic
        assert not any(problem.tree.is_leaf(state.prefix) for state in batch)
    assert all(problem.tree.is_leaf(state.prefix) for state in result.states)
    assert result.stop_reason == "finished"


def test_step_cap_truncates(problem):
    result = run_smc(
        TreeModel(problem.tree), config(max_steps=2, schedule="every"), np.random.default_rng(1)
    )
    assert result.n_steps == 2
    assert result.stop_reason == "max_steps"
    assert all(len(state.prefix) <= 2 for state in result.states)
    np.testing.assert_allclose(
        result.log_weights.log_w + result.checkpoints[0].log_evidence * 0, result.log_weights.log_w
    )


def test_call_budget_stops_before_exceeding_the_cap(problem):
    result = run_smc(
        TreeModel(problem.tree),
        config(n_particles=4, budget=Budget(max_calls=10)),
        np.random.default_rng(2),
    )
    assert result.stop_reason == "budget:calls"
    assert result.spent.calls <= 10
    assert result.checkpoints[-1].final


def test_budget_aware_schedule_reports_when_it_stopped_resampling(problem):
    cfg = config(n_particles=4, schedule="budget:0.3:every", budget=Budget(max_calls=12))
    result = run_smc(TreeModel(problem.tree), cfg, np.random.default_rng(3))
    assert result.resampling_stopped_at == 1  # 4 of 12 calls spent after step 1
    assert [event.t for event in result.genealogy] == []
    assert result.checkpoints[0].budget_spent == pytest.approx(4 / 12)


def test_budget_needs_a_model_that_reports_spend(problem):
    class NoSpend:
        def initial(self, n, rng):
            return [TreeState(())] * n

        async def propose(self, t, states, rng):
            return states

        def returns(self, states):
            return np.zeros(len(states))

        def is_done(self, states):
            return np.ones(len(states), dtype=bool)

    with pytest.raises(ConfigError, match="spent"):
        SMC(NoSpend(), config(budget=Budget(max_calls=5)), np.random.default_rng(0))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_critic_values_are_a_clear_error(problem, bad):
    class Broken:
        async def values(self, t, states):
            out = np.zeros(len(states))
            out[0] = bad
            return out

    with pytest.raises(WeightError, match=r"value function at step 1 .* particles \[0\]"):
        run_smc(TreeModel(problem.tree), config(), np.random.default_rng(0), Broken())


def test_a_synchronous_value_function_is_a_clear_error(problem):
    class Blocking:
        def values(self, t, states):
            return np.zeros(len(states))

    with pytest.raises(ConfigError, match="async def values"):
        SMC(TreeModel(problem.tree), config(), np.random.default_rng(0), Blocking())


def test_wrong_shapes_are_a_clear_error(problem):
    class Short:
        async def values(self, t, states):
            return np.zeros(1)

    with pytest.raises(WeightError, match=r"shape \(1,\), expected \(8,\)"):
        run_smc(TreeModel(problem.tree), config(), np.random.default_rng(0), Short())


def test_lineage_follows_the_genealogy(problem):
    result = run_smc(TreeModel(problem.tree), config(schedule="every"), np.random.default_rng(5))
    assert result.n_resamplings >= 1
    for index, _state in enumerate(result.states):
        slots = result.lineage(index)
        assert len(slots) == result.n_resamplings + 1
        assert slots[-1] == index
        assert all(0 <= slot < 8 for slot in slots)


def test_diagnostics_are_json_and_collectors_run_every_step(problem):
    collectors = {"ess": lambda state: state.log_weights.ess, "t": lambda state: state.t}
    result = run_smc(
        TreeModel(problem.tree),
        config(schedule="ess:0.6"),
        np.random.default_rng(6),
        collectors=collectors,
    )
    text = json.dumps(result.diagnostics())
    assert '"stop_reason": "finished"' in text
    assert result.collected["t"] == list(range(1, result.n_steps + 1))
    assert len(result.collected["ess"]) == result.n_steps
    record = result.checkpoints[0]
    assert 1.0 <= record.ess <= 8.0
    assert record.n_running + record.n_finished <= 8


def test_stepping_a_complete_run_is_an_error(problem):
    async def go():
        smc = SMC(TreeModel(problem.tree), config(), np.random.default_rng(0))
        with pytest.raises(RuntimeError, match="not complete"):
            smc.result()
        while not smc.complete:
            state = await smc.step()
        assert state.complete
        with pytest.raises(RuntimeError, match="complete"):
            await smc.step()

    asyncio.run(go())


def test_other_temperatures_still_match_the_oracle_in_the_no_resampling_limit():
    problem = make_problem(beta=0.25)
    results = run_many(problem.tree, config(beta=0.25, schedule="none"), range(5))
    for result in results:
        assert np.array_equal(result.log_weights.log_w, result.returns / 0.25)
