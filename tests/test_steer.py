"""The AMC particle model: forks by snapshot, concurrent calls, critics, failures, exactness."""

from __future__ import annotations

import asyncio
import math
import threading
import time

import numpy as np
import pytest
from scipy import stats

from agentmc.critics.core import History
from agentmc.critics.meter import MeteredCritic
from agentmc.envs import make
from agentmc.envs.core import is_remote
from agentmc.errors import DataError, PolicyError
from agentmc.policies.core import Completion
from agentmc.policies.expert import NoisyExpertPolicy
from agentmc.policies.scripted import ScriptedPolicy
from agentmc.rollout import rollout
from agentmc.smc import SMC, SMCConfig, run_smc
from agentmc.steer import AgentModel, AgentState, HiddenReward
from agentmc.types import Usage
from climb_env import ClimbEnv

#: Significance level of the statistical tests in this file.
ALPHA = 1e-3
#: ClimbEnv's scripted prior: up, down (ends the episode) or a wasted step.
PRIOR = {"up": 0.6, "down": 0.15, "wait": 0.25}


def climb_policy() -> ScriptedPolicy:
    return ScriptedPolicy(lambda messages: PRIOR, name="climb-prior")


def exact_climb(beta: float, height: int = 3, max_steps: int = 5) -> tuple[float, float]:
    """Brute force over ClimbEnv: (Z = E_p[exp(R/beta)], P_pi*(success))."""
    env = ClimbEnv(height=height, max_steps=max_steps)
    env.reset()
    z = 0.0
    z_success = 0.0

    def walk(probability: float, reward: float) -> None:
        nonlocal z, z_success
        saved = env.snapshot()
        for action, p in PRIOR.items():
            env.restore(saved)
            result = env.step(action)
            total = reward + result.reward
            if result.terminated or result.truncated:
                weight = probability * p * math.exp(total / beta)
                z += weight
                if result.reward > 0:
                    z_success += weight
            else:
                walk(probability * p, total)
        env.restore(saved)

    walk(1.0, 0.0)
    return z, z_success / z


class CountingEnv(ClimbEnv):
    """ClimbEnv that counts steps and restores (to prove forks never replay history)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.n_steps_taken = 0
        self.n_restores = 0

    def step(self, action):
        self.n_steps_taken += 1
        return super().step(action)

    def restore(self, snapshot) -> None:
        self.n_restores += 1
        super().restore(snapshot)


class SleepyPolicy:
    """Replies "up" after ``delay`` seconds; tracks how many calls are in flight."""

    name = "sleepy"
    synthetic = True

    def __init__(self, delay: float, limit: int | None = None) -> None:
        self.delay = delay
        self.in_flight = 0
        self.peak = 0
        self.semaphore = asyncio.Semaphore(limit) if limit else None

    async def _call(self) -> list[Completion]:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        await asyncio.sleep(self.delay)
        self.in_flight -= 1
        return [Completion("wait", None, Usage(calls=1, prompt_tokens=3, completion_tokens=1))]

    async def complete(self, messages, *, n=1, temperature=1.0, seed=None, candidates=None):
        if self.semaphore is None:
            return await self._call()
        async with self.semaphore:
            return await self._call()


class TableCritic:
    """An arbitrary deterministic critic of the history (valid twist, not a good one)."""

    name = "table"

    def values(self, histories):
        return np.array([0.3 * h.n_turns - 0.2 * len(h.messages[-1:]) for h in histories])


class NaNCritic:
    name = "nan"

    def values(self, histories):
        return np.full(len(histories), np.nan)


def test_clones_share_state_and_forks_never_replay():
    env = CountingEnv(height=3, max_steps=5)
    model = AgentModel(env, climb_policy())
    config = SMCConfig(n_particles=16, beta=1.0, schedule="every", max_steps=5)
    result = run_smc(model, config, np.random.default_rng(0))
    states: tuple[AgentState, ...] = result.states
    # At most one environment step per particle move, never a replayed prefix; at least
    # one per distinct history prefix the final particles went through.
    prefixes = {state.turns[:i] for state in states for i in range(1, len(state.turns) + 1)}
    assert env.n_steps_taken <= config.n_particles * result.n_steps
    assert env.n_steps_taken >= len(prefixes)
    # Resampled clones are the same objects; their histories share Message objects.
    assert len({id(state) for state in states}) < len(states)
    first, second = states[0], states[1]
    assert first.messages[0] is second.messages[0]
    assert all(isinstance(state.messages, tuple) for state in states)


def test_identical_moves_of_clones_are_stepped_once():
    env = CountingEnv(height=6, max_steps=4)
    always_up = ScriptedPolicy(lambda messages: {"up": 1.0}, name="up")
    result = run_smc(
        AgentModel(env, always_up),
        SMCConfig(n_particles=16, schedule="every", max_steps=4),
        np.random.default_rng(0),
    )
    assert result.n_steps == 4 and all(len(state.turns) == 4 for state in result.states)
    assert env.n_steps_taken == 4  # 16 identical particles: one step each time, not 16


def test_synthetic_policies_run_inline_and_one_that_waits_gets_tasks():
    inline = AgentModel(ClimbEnv(height=3, max_steps=3), climb_policy())
    run_smc(inline, SMCConfig(n_particles=8, max_steps=3), np.random.default_rng(0))
    assert inline._inline  # answered at once every step: no task per particle

    class WaitingScript(SleepyPolicy):
        synthetic = True

    policy = WaitingScript(delay=0.01)
    waiting = AgentModel(ClimbEnv(height=3, max_steps=3), policy)
    result = run_smc(waiting, SMCConfig(n_particles=8, max_steps=3), np.random.default_rng(0))
    assert not waiting._inline and result.n_steps == 3 and policy.peak == 8


def test_all_particles_call_the_policy_concurrently():
    policy = SleepyPolicy(delay=0.05)
    model = AgentModel(ClimbEnv(height=3, max_steps=4), policy)
    config = SMCConfig(n_particles=32, schedule="every", max_steps=4)
    start = time.perf_counter()
    result = run_smc(model, config, np.random.default_rng(0))
    elapsed = time.perf_counter() - start
    assert result.n_steps == 4
    assert policy.peak == 32
    assert elapsed < 4 * 0.05 * 3  # sequential calls would take 32x longer
    assert model.spent().calls == 32 * 4
    assert model.spent().tokens == 32 * 4 * 4


def test_the_policys_own_limit_bounds_concurrency():
    policy = SleepyPolicy(delay=0.01, limit=4)
    model = AgentModel(ClimbEnv(height=3, max_steps=2), policy)
    run_smc(model, SMCConfig(n_particles=16, max_steps=2), np.random.default_rng(0))
    assert policy.peak == 4


class AsyncNaNCritic:
    name = "async-nan"

    def values(self, histories):
        raise AssertionError("a critic with avalues is awaited")

    async def avalues(self, histories):
        return np.full(len(histories), np.nan)


@pytest.mark.parametrize("critic", [NaNCritic(), MeteredCritic(AsyncNaNCritic())])
def test_non_finite_critic_names_task_and_step(critic):
    model = AgentModel(make("textcraft", task_id="3"), NoisyExpertPolicy(), critic)
    config = SMCConfig(n_particles=4, schedule="every", max_steps=model.step_cap)
    with pytest.raises(DataError, match=r"non-finite.*task '3' at step 1"):
        run_smc(model, config, np.random.default_rng(0), value_fn=model)


class FlakyPolicy:
    """Fails for good on every call whose seed is odd; otherwise says "up"."""

    name = "flaky"
    synthetic = True

    async def complete(self, messages, *, n=1, temperature=1.0, seed=None, candidates=None):
        if seed is not None and seed % 2:
            raise PolicyError("server said 500 three times")
        return [Completion("up", None, Usage(calls=1))]


def test_failed_policy_calls_mark_the_particle_and_the_run_goes_on():
    model = AgentModel(ClimbEnv(height=3, max_steps=5), FlakyPolicy())
    config = SMCConfig(n_particles=16, schedule="none", max_steps=5)
    result = run_smc(model, config, np.random.default_rng(3))
    failed = [state for state in result.states if state.failed]
    assert 0 < len(failed) < 16
    assert model.n_failed == len(failed)
    assert all(state.done and "step" in (state.error or "") for state in failed)
    assert all(model.trajectory(state).error for state in failed)
    # Survivors reached the top.
    assert all(state.success for state in result.states if not state.failed)


def test_zero_critic_equals_no_critic_bit_for_bit():
    from agentmc.critics.baselines import ZeroCritic

    def run(critic):
        model = AgentModel(make("textcraft", task_id="7"), NoisyExpertPolicy(), critic)
        config = SMCConfig(n_particles=8, schedule="every", max_steps=model.step_cap)
        value_fn = None if critic is None else model
        return run_smc(model, config, np.random.default_rng(5), value_fn=value_fn)

    plain, zero = run(None), run(ZeroCritic())
    assert np.array_equal(plain.log_weights.log_w, zero.log_weights.log_w)
    assert plain.log_evidence == zero.log_evidence
    assert [s.turns for s in plain.states] == [s.turns for s in zero.states]


class RecordingCritic:
    """Zero values; records the length of every history it is asked about, per call."""

    name = "recording"

    def __init__(self) -> None:
        self.calls: list[list[int]] = []

    def values(self, histories):
        self.calls.append([history.n_turns for history in histories])
        return np.zeros(len(histories))


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        # one batched call per checkpoint, on every running particle; none at steps 1, 3,
        # 5, nor at the final step 6 (its values never enter the weights)
        ("steps:2,4", [[2] * 4, [4] * 4]),
        ("steps:3", [[3] * 4]),
        ("every", [[t] * 4 for t in range(1, 6)]),
        ("none", []),
    ],
)
def test_critic_is_called_at_every_checkpoint_and_nowhere_else(schedule, expected):
    # No "down" and a top out of reach: all 4 particles run until the cap at step 6,
    # so each checkpoint must value exactly 4 histories of that step's length.
    critic = RecordingCritic()
    policy = ScriptedPolicy(lambda messages: {"up": 0.5, "wait": 0.5}, name="climb-no-down")
    model = AgentModel(ClimbEnv(height=9, max_steps=6), policy, critic)
    config = SMCConfig(n_particles=4, schedule=schedule, max_steps=6)
    result = run_smc(model, config, np.random.default_rng(1), value_fn=model)
    assert all(state.truncated for state in result.states)
    assert critic.calls == expected
    # the values the sampler used are the ones the critic gave, at exactly those steps
    valued = [r.t for r in result.checkpoints if not r.final]
    assert valued == [lengths[0] for lengths in expected]


def test_the_model_alone_never_calls_its_critic():
    """Without ``value_fn`` the sampler asks for no values, and the model computes none."""
    critic = RecordingCritic()
    model = AgentModel(ClimbEnv(height=3, max_steps=5), climb_policy(), critic)
    run_smc(model, SMCConfig(n_particles=8, max_steps=5), np.random.default_rng(0))
    assert critic.calls == []


def test_hidden_reward_never_enters_the_weights():
    model = AgentModel(ClimbEnv(height=2, max_steps=4), climb_policy())
    config = SMCConfig(n_particles=16, beta=0.5, schedule="none", max_steps=4)
    result = run_smc(HiddenReward(model), config, np.random.default_rng(2))
    assert any(state.reward > 0 for state in result.states)
    assert np.allclose(result.weights, 1 / 16)


def test_hidden_reward_uses_the_critics_score_of_the_final_history():
    class SuccessReader:
        name = "reader"

        def values(self, histories):
            return np.array([2.0 if "top" in h.messages[-1].content else 0.0 for h in histories])

    critic = SuccessReader()
    model = AgentModel(ClimbEnv(height=2, max_steps=4), climb_policy(), critic)
    hidden = HiddenReward(model)
    config = SMCConfig(n_particles=16, beta=1.0, schedule="none", max_steps=4)
    result = run_smc(hidden, config, np.random.default_rng(2))
    expected = np.array([2.0 if state.success else 0.0 for state in result.states])
    assert expected.any() and not expected.all()
    assert np.allclose(hidden.returns(result.states), expected)
    assert np.allclose(result.returns, expected)
    assert np.allclose(result.log_weights.log_w - result.log_weights.log_w.max(), expected - 2.0)


def test_history_matches_the_trajectory_view():
    model = AgentModel(make("textcraft", task_id="0"), NoisyExpertPolicy())
    result = run_smc(model, SMCConfig(n_particles=2, max_steps=20), np.random.default_rng(0))
    state = result.states[0]
    trajectory = model.trajectory(state)
    assert state.history() == History.from_trajectory(trajectory)
    assert trajectory.synthetic and trajectory.policy == "noisy-expert"


@pytest.mark.parametrize(
    ("schedule", "resampler", "critic"),
    [
        ("every", "systematic", None),
        ("every", "multinomial", TableCritic()),
        ("ess:0.5", "stratified", TableCritic()),
        ("steps:2", "residual", None),
    ],
)
def test_evidence_and_posterior_through_the_adapter_are_unbiased(schedule, resampler, critic):
    """E[Zhat] = Z and E[Zhat * sum_i W_i f(tau_i)] = Z * E_pi*[f] on an enumerable env."""
    beta = 0.5
    z, p_success = exact_climb(beta)

    async def many(n_runs: int):
        zhat, weighted = [], []
        for seed in range(n_runs):
            model = AgentModel(ClimbEnv(height=3, max_steps=5), climb_policy(), critic)
            config = SMCConfig(
                n_particles=4, beta=beta, schedule=schedule, resampler=resampler, max_steps=5
            )
            value_fn = None if critic is None else model
            result = await SMC(model, config, np.random.default_rng(seed), value_fn).run()
            success = np.array([state.success for state in result.states], dtype=float)
            evidence = math.exp(result.log_evidence)
            zhat.append(evidence)
            weighted.append(evidence * float(result.weights @ success))
        return np.array(zhat), np.array(weighted)

    zhat, weighted = asyncio.run(many(400))
    critical = stats.norm.ppf(1 - ALPHA / 2)
    for sample, target in ((zhat, z), (weighted, z * p_success)):
        error = sample.std(ddof=1) / math.sqrt(len(sample))
        assert abs(sample.mean() - target) < critical * error + 1e-12, (sample.mean(), target)


class BatchedClimbEnv(ClimbEnv):
    """ClimbEnv with a batched ``aadvance``, like the Ray proxy; counts round trips."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.round_trips = 0

    async def astep(self, action):
        self.round_trips += 1
        return self.step(action)

    async def aadvance(self, moves):
        self.round_trips += 1
        out = []
        for snapshot, action in moves:
            self.restore(snapshot)
            result = self.step(action)
            out.append((result, self.snapshot(), None))
        return out


def test_a_batched_remote_env_moves_every_particle_of_a_step_in_one_round_trip():
    outcomes = []
    for env in (ClimbEnv(height=3, max_steps=5), BatchedClimbEnv(height=3, max_steps=5)):
        model = AgentModel(env, climb_policy())
        config = SMCConfig(n_particles=16, schedule="every", max_steps=5)
        result = run_smc(model, config, np.random.default_rng(3))
        actions = [model.trajectory(state).actions for state in result.states]
        outcomes.append((result.returns.tolist(), actions))
    assert outcomes[0] == outcomes[1]
    assert env.round_trips == result.n_steps  # one hop per step, not three per particle


class UnbatchedRemoteClimbEnv(ClimbEnv):
    """A remote ClimbEnv without ``aadvance``: records the thread of every step."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.threads: set[int] = set()
        self.awaited = 0

    def step(self, action):
        self.threads.add(threading.get_ident())
        return super().step(action)

    async def areset(self, *, seed=None, options=None):
        return self.reset(seed=seed, options=options)

    async def astep(self, action):
        self.awaited += 1
        return self.step(action)


def test_one_remote_convention_for_the_adapter_and_the_agent_loop():
    assert is_remote(BatchedClimbEnv()) and is_remote(UnbatchedRemoteClimbEnv())
    assert not is_remote(ClimbEnv())
    local, remote = ClimbEnv(height=3, max_steps=5), UnbatchedRemoteClimbEnv(height=3, max_steps=5)
    outcomes = []
    for env in (local, remote):
        model = AgentModel(env, climb_policy())
        result = run_smc(model, SMCConfig(n_particles=8, max_steps=5), np.random.default_rng(4))
        outcomes.append([model.trajectory(state).actions for state in result.states])
    assert outcomes[0] == outcomes[1]
    # its moves ran off the event loop's thread, in a worker thread
    assert remote.threads and threading.get_ident() not in remote.threads
    # the plain agent loop awaits the same environment's astep
    trajectory = rollout(remote, climb_policy(), np.random.default_rng(0))
    assert remote.awaited == trajectory.n_steps > 0


def test_same_seed_same_trajectories():
    runs = []
    for _ in range(2):
        model = AgentModel(make("textcraft", task_id="3"), NoisyExpertPolicy())
        config = SMCConfig(n_particles=8, schedule="every", max_steps=model.step_cap)
        result = run_smc(model, config, np.random.default_rng(11))
        runs.append([model.trajectory(state).actions for state in result.states])
    assert runs[0] == runs[1]
