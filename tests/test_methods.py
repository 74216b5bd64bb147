"""Methods on one code path: spec parsing, selection modes, budgets, failures, records."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import numpy as np
import pytest

from agentmc.envs import make
from agentmc.errors import ConfigError, DataError, PolicyError, UnknownNameError
from agentmc.methods import (
    Budget,
    EpisodeResult,
    MethodSpec,
    arun_method,
    critic_choice,
    run_method,
)
from agentmc.policies.core import Completion
from agentmc.policies.expert import NoisyExpertPolicy
from agentmc.rollout import rollout
from agentmc.types import Usage
from climb_env import ClimbEnv

TASKS = ["2", "7", "11"]


def textcraft(task_id: str):
    return lambda: make("textcraft", task_id=task_id)


class StepCritic:
    """Scores a history by how many turns it has (deterministic, finite)."""

    name = "steps"

    def __init__(self, per_turn: float = 0.1) -> None:
        self.per_turn = per_turn

    def values(self, histories):
        return np.array([self.per_turn * h.n_turns for h in histories])


class NaNCritic:
    name = "nan"

    def values(self, histories):
        return np.full(len(histories), np.nan)


@pytest.mark.parametrize(
    ("text", "label", "kind", "k", "select"),
    [
        ("single", "single", "single", 1, "reward"),
        ("bon:8", "bon@reward-k8", "bon", 8, "reward"),
        ("bon:8:critic", "bon@critic-k8", "bon", 8, "critic"),
        ("amc:8", "amc@reward-k8", "amc", 8, "reward"),
        ("amc:8:critic", "amc@critic-k8", "amc", 8, "critic"),
        ("smc:8:weight", "smc@weight-k8", "smc", 8, "weight"),
        (" AMC:16:Weight ", "amc@weight-k16", "amc", 16, "weight"),
    ],
)
def test_parse_and_label(text, label, kind, k, select):
    spec = MethodSpec.parse(text)
    assert (spec.kind, spec.particles, spec.select, spec.label) == (kind, k, select, label)


def test_label_names_non_default_settings():
    spec = MethodSpec("amc", 8, "critic", beta=0.5, schedule="steps:4", resampler="residual")
    assert spec.label == "amc@critic-k8-beta0.5-steps:4-residual"
    # Best-of-N ignores beta unless it samples by weight
    assert replace(spec, kind="bon").label == "bon@critic-k8"
    assert replace(spec, kind="bon", select="weight").label == "bon@weight-k8-beta0.5"
    assert MethodSpec.parse("single").selection == "none"


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("amc:8:critic:beta=0.3:steps=4", "amc@critic-k8-beta0.3-steps:4"),
        ("amc:8:beta=0.1:ess=0.5", "amc@reward-k8-beta0.1-ess:0.5"),
        ("smc:4:weight:steps=2,6:resampler=residual", "smc@weight-k4-steps:2,6-residual"),
        ("amc:8:schedule=budget:0.8:steps:4,12", "amc@reward-k8-budget:0.8:steps:4,12"),
        ("amc:8:schedule=none:beta=1e-05", "amc@reward-k8-beta1e-05-none"),
        ("amc:4:beta=inf", "amc@reward-k4-betainf"),
        ("amc:4:beta=0.123456789", "amc@reward-k4-beta0.123456789"),
        ("bon:8:critic:beta=0.3", "bon@critic-k8"),
        ("bon:8:weight:beta=0.3", "bon@weight-k8-beta0.3"),
    ],
)
def test_settings_in_the_string_form_round_trip_through_label_and_text(text, label):
    spec = MethodSpec.parse(text)
    assert spec.label == label
    assert MethodSpec.parse(spec.label) == spec
    assert MethodSpec.parse(spec.text) == spec
    assert MethodSpec.parse(spec.text).text == spec.text


def test_settings_that_cannot_change_results_are_dropped():
    # Best-of-N without weight sampling ignores beta and schedule: equal specs, equal labels
    assert MethodSpec.parse("bon:8:beta=0.3:steps=4") == MethodSpec.parse("bon:8")
    assert MethodSpec("amc", 8, beta=0.3) != MethodSpec("amc", 8)


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        ("best:8", UnknownNameError, "valid forms"),
        ("amc:8:critic:speed=3", ConfigError, "unknown setting"),
        ("amc:8:beta=x", ConfigError, "not a number"),
        ("amc:8:beta=0", ConfigError, "beta must be > 0"),
        ("amc:8:steps=4:ess=0.5", ConfigError, "schedule given twice"),
        ("amc:8:steps=0", ConfigError, "positive"),
        ("amc@critic-k8-betax", ConfigError, "beta<number>"),
        ("amc@critic-k8-sometimes", UnknownNameError, "valid forms"),
        ("bon", ConfigError, "needs K"),
        ("bon:x", ConfigError, "K must be an integer"),
        ("bon:0", ConfigError, "particles must be >= 1"),
        ("single:4", ConfigError, "takes no K"),
        ("amc:8:best", ConfigError, "selection must be one of"),
        ("amc:8:critic:extra", ConfigError, "too many"),
    ],
)
def test_bad_method_strings(text, error, message):
    with pytest.raises(error, match=message):
        MethodSpec.parse(text)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"beta": 0.0}, ConfigError, "beta must be > 0"),
        ({"beta": -1.0}, ConfigError, "beta must be > 0"),
        ({"beta": float("nan")}, ConfigError, "beta must be > 0"),
        ({"schedule": "sometimes"}, UnknownNameError, "valid forms"),
        ({"resampler": "magic"}, UnknownNameError, "systematic"),
        ({"particles": 0}, ConfigError, "particles"),
    ],
)
def test_bad_spec_fields(kwargs, error, message):
    with pytest.raises(error, match=message):
        MethodSpec("amc", **{"particles": 4, **kwargs})


def test_bad_budget():
    with pytest.raises(ConfigError, match="max_calls"):
        Budget(max_calls=0)


def test_schedule_beyond_the_step_cap_is_refused_naming_the_task():
    spec = MethodSpec("amc", 4, schedule="steps:4,30")
    with pytest.raises(ConfigError, match=r"task '2'.*beyond the step cap"):
        run_method(spec, textcraft("2"), NoisyExpertPolicy(), np.random.default_rng(0))


@pytest.mark.parametrize("text", ["single", "bon:4", "bon:4:weight", "amc:4", "smc:4:critic"])
def test_records_round_trip_through_json_and_runs_are_reproducible(text):
    spec = MethodSpec.parse(text)
    critic = StepCritic()

    def once():
        return run_method(
            spec, textcraft("7"), NoisyExpertPolicy(), np.random.default_rng(3), critic=critic
        )

    first, second = once(), once()
    data = json.loads(json.dumps(first.to_dict()))
    assert EpisodeResult.from_dict(data) == first
    first_dict, second_dict = first.to_dict(), second.to_dict()
    for record in (first_dict, second_dict):
        record.pop("wall_s")
        for timing in ("cpu_s", "wall_s"):  # the critic's measured time
            assert record["critic_spend"].pop(timing) >= 0.0
    assert first_dict == second_dict
    assert first.method == spec.label and first.selection == spec.selection
    assert len(first.candidates_rewards) == spec.particles
    assert first.trajectory.meta["method"] == spec.label
    assert first.calls == first.diagnostics["spent"]["calls"]


def test_single_is_the_plain_agent_loop():
    policy = NoisyExpertPolicy()
    result = run_method(
        MethodSpec.parse("single"), textcraft("11"), policy, np.random.default_rng(0), temperature=0
    )
    plain = rollout(
        make("textcraft", task_id="11"), policy, np.random.default_rng(1), temperature=0
    )
    assert result.trajectory.actions == plain.actions
    assert result.success == plain.success and result.calls == plain.n_steps


def test_best_of_n_by_reward_returns_the_best_candidate():
    for task in TASKS:
        result = run_method(
            MethodSpec.parse("bon:8"),
            textcraft(task),
            NoisyExpertPolicy(),
            np.random.default_rng(1),
        )
        assert result.reward == max(result.candidates_rewards)
        assert result.success == (result.reward > 0)


def test_critic_selection_picks_the_highest_critic_score_without_the_reward():
    result = run_method(
        MethodSpec.parse("bon:8:critic"),
        textcraft("2"),
        NoisyExpertPolicy(),
        np.random.default_rng(4),
        critic=StepCritic(),
    )
    values = result.candidate_values
    assert values is not None
    assert values[result.trajectory.meta["particle"]] == max(values)
    assert result.diagnostics["observe_reward"] is False


def test_critic_choice_among_best_of_n_samples_equals_a_critic_selected_run():
    """``bon:K:critic`` needs no samples of its own: Best-of-K's draws, chosen by score."""
    runs = [(textcraft(t), NoisyExpertPolicy(mistake_prob=0.5), 4, 0.1) for t in TASKS * 3]
    # failed particles stop early: the critic that prefers short histories ranks them first
    runs += [(lambda: ClimbEnv(height=2, max_steps=4), FlakyClimber(), 6, -0.1)] * 6
    differs = ties = failed = 0
    for seed, (env, policy, k, per_turn) in enumerate(runs):
        by_reward, by_critic = (
            run_method(
                MethodSpec("bon", k, select),
                env,
                policy,
                np.random.default_rng(seed),
                critic=StepCritic(per_turn),
            )
            for select in ("reward", "critic")
        )
        assert by_reward.candidates_rewards == by_critic.candidates_rewards
        index = critic_choice(by_reward)
        assert index == by_critic.trajectory.meta["particle"]
        differs += index != by_reward.trajectory.meta["particle"]
        values = np.asarray(by_reward.candidate_values)
        ties += int(np.sum(values == values.max()) > 1)
        failed += by_reward.diagnostics["failed_particles"] > 0
    assert differs and ties and failed  # the runs exercise selection, tie-breaks, failures


def test_critic_choice_needs_a_scored_best_of_n_run():
    rng = np.random.default_rng(0)
    unscored = run_method(MethodSpec.parse("bon:2"), textcraft("2"), NoisyExpertPolicy(), rng)
    with pytest.raises(ConfigError, match="without critic scores"):
        critic_choice(unscored)


def test_critic_selection_without_a_critic_is_a_config_error():
    with pytest.raises(ConfigError, match="no critic"):
        run_method(
            MethodSpec.parse("amc:4:critic"),
            textcraft("2"),
            NoisyExpertPolicy(),
            np.random.default_rng(0),
        )


def test_nan_critic_error_names_task_and_step():
    with pytest.raises(DataError, match=r"task '7' at step 1"):
        run_method(
            MethodSpec.parse("amc:4"),
            textcraft("7"),
            NoisyExpertPolicy(),
            np.random.default_rng(0),
            critic=NaNCritic(),
            task_id="7",
        )


def test_call_budget_stops_the_run_and_is_reported():
    result = run_method(
        MethodSpec.parse("amc:8"),
        textcraft("2"),
        NoisyExpertPolicy(mistake_prob=0.5),
        np.random.default_rng(0),
        budget=Budget(max_calls=20),
    )
    assert result.calls <= 20
    assert result.diagnostics["budget_exhausted"] is True
    assert result.diagnostics["stop_reason"] == "budget:calls"


def test_budget_aware_schedule_stops_resampling():
    result = run_method(
        MethodSpec("amc", 8, schedule="budget:0.3:every"),
        textcraft("2"),
        NoisyExpertPolicy(mistake_prob=0.5),
        np.random.default_rng(0),
        budget=Budget(max_calls=100),
    )
    stopped = result.diagnostics["resampling_stopped_at"]
    assert stopped is not None
    later = [c for c in result.diagnostics["checkpoints"] if c["t"] > stopped]
    assert not any(c["resampled"] for c in later)


class FlakyClimber:
    """Says "up"; fails for good when the seed is divisible by 3."""

    name = "flaky"
    synthetic = True

    async def complete(self, messages, *, n=1, temperature=1.0, seed=None, candidates=None):
        if seed is not None and seed % 3 == 0:
            raise PolicyError("gave up after 3 retries")
        return [Completion("up", None, Usage(calls=1))]


def test_failed_particles_are_counted_and_never_selected():
    results = [
        run_method(
            MethodSpec.parse("bon:6"),
            lambda: ClimbEnv(height=2, max_steps=4),
            FlakyClimber(),
            np.random.default_rng(seed),
        )
        for seed in range(10)
    ]
    assert sum(r.diagnostics["failed_particles"] for r in results) > 0
    for result in results:
        if result.diagnostics["failed_particles"] < 6:
            assert result.trajectory.error is None and result.success


def test_weight_selection_hides_the_reward_and_samples_the_weights():
    result = run_method(
        MethodSpec.parse("amc:8:weight"),
        textcraft("2"),
        NoisyExpertPolicy(),
        np.random.default_rng(0),
    )
    # Without a critic and with the reward hidden, every final weight is equal.
    assert np.allclose(result.diagnostics["weights"], 1 / 8)
    assert result.diagnostics["observe_reward"] is False


def test_arun_method_runs_inside_an_event_loop():
    async def go():
        specs = [MethodSpec.parse("single"), MethodSpec.parse("amc:4")]
        return await asyncio.gather(
            *(
                arun_method(s, textcraft("2"), NoisyExpertPolicy(), np.random.default_rng(0))
                for s in specs
            )
        )

    single, amc = asyncio.run(go())
    assert single.calls >= 1 and amc.calls >= 4
    assert amc.diagnostics["checkpoints"][0]["ess"] > 0


class UnpricedClimber:
    """Says "up"; its price is unknown (usage cost None)."""

    name = "unpriced"
    synthetic = True

    async def complete(self, messages, *, n=1, temperature=1.0, seed=None, candidates=None):
        return [Completion("up", None, Usage(calls=1, prompt_tokens=5, cost=None))]


def test_unknown_cost_stays_unknown_and_cannot_be_capped():
    def climb():
        return ClimbEnv(height=2, max_steps=4)

    spec = MethodSpec.parse("bon:3")
    result = run_method(spec, climb, UnpricedClimber(), np.random.default_rng(0))
    assert result.cost is None and result.prompt_tokens == 3 * 2 * 5
    assert EpisodeResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result
    with pytest.raises(ConfigError, match="cost is unknown"):
        run_method(
            spec, climb, UnpricedClimber(), np.random.default_rng(0), budget=Budget(max_cost=1.0)
        )
