"""SMC against the exact oracle (design.md section 2, "what exact tests can rely on").

On a tree small enough to enumerate, with Z = E_p[exp(R / beta)] and
pi* ∝ p exp(R / beta) known exactly, N independent seeded runs must satisfy:

- E[Zhat] = Z, for every resampler, schedule and critic (zero, exact soft
  value, deliberately bad);
- E[Zhat * sum_i W_i f(tau_i)] = Z * E_pi*[f] for every f; we test the vector
  of leaf indicators at once (Hotelling's T^2), i.e. E[Zhat * W(leaf)] = p(leaf) exp(R(leaf)/beta);
- with the exact soft value V*, the running estimate at *every* checkpoint has
  mean Z (this catches a value term with the wrong sign, which Zhat alone cannot).

We do not test the distribution of the single returned trajectory: it has an
O(1/K) bias, so a chi-squared test on it fails for large N unless K is large.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from smc_problems import BETA, Problem, run_many

from agentmc.smc import RESAMPLERS, Budget, SMCConfig, SMCResult

#: Significance level of each assertion. About 110 assertions run, so the chance
#: that a correct sampler fails any of them is about 1%.
ALPHA = 1e-4
N_RUNS = 300
N_PARTICLES = 8
DEPTH = 3
SCHEDULES = ["every", "steps:2", "ess:0.6", "budget:0.5:every"]
CRITICS = ["zero", "exact", "bad"]


def config_for(schedule: str, resampler: str = "systematic", beta: float = BETA) -> SMCConfig:
    # The budget cap equals the most a run can spend, so it never stops a run, but
    # the budget-aware schedule stops resampling once half of it is spent.
    max_calls = N_PARTICLES * DEPTH if schedule.startswith("budget") else None
    return SMCConfig(
        n_particles=N_PARTICLES,
        beta=beta,
        resampler=resampler,
        schedule=schedule,
        max_steps=DEPTH,
        budget=Budget(max_calls=max_calls),
    )


def mean_pvalue(samples: np.ndarray, expected: float) -> float:
    """Two-sided p-value of a one-sample t-test of mean(samples) == expected."""
    return float(stats.ttest_1samp(samples, expected).pvalue)


def hotelling_pvalue(samples: np.ndarray, expected: np.ndarray) -> float:
    """p-value of Hotelling's T^2 test that the mean of the rows of ``samples`` is ``expected``."""
    n, dims = samples.shape
    difference = samples.mean(axis=0) - expected
    covariance = np.cov(samples, rowvar=False)
    t_squared = n * difference @ np.linalg.solve(covariance, difference)
    f_statistic = (n - dims) / (dims * (n - 1)) * t_squared
    return float(stats.f.sf(f_statistic, dims, n - dims))


def leaf_weights(problem: Problem, result: SMCResult) -> np.ndarray:
    """sum_i W_i 1[tau_i = leaf] for every leaf, shape (L,)."""
    out = np.zeros(len(problem.solution.leaves))
    for state, weight in zip(result.states, result.weights, strict=True):
        out[problem.solution.index[state.prefix]] += weight
    return out


def check_unbiased(problem: Problem, config: SMCConfig, critic_name: str) -> None:
    results = run_many(problem.tree, config, range(N_RUNS), problem.critics[critic_name])
    z_hat = np.exp([result.log_evidence for result in results])
    solution = problem.solution
    assert mean_pvalue(z_hat, solution.z) > ALPHA, (z_hat.mean(), solution.z)
    weighted = z_hat[:, None] * np.array([leaf_weights(problem, result) for result in results])
    assert hotelling_pvalue(weighted, solution.z * solution.target) > ALPHA, (
        weighted.mean(axis=0),
        solution.z * solution.target,
    )


@pytest.mark.parametrize("critic", CRITICS)
@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("resampler", sorted(RESAMPLERS))
def test_evidence_and_posterior_are_unbiased(problem, resampler, schedule, critic):
    check_unbiased(problem, config_for(schedule, resampler), critic)


@pytest.mark.parametrize("critic", CRITICS)
def test_importance_sampling_is_unbiased(problem, critic):
    check_unbiased(problem, config_for("none"), critic)


def running_estimates(results: list[SMCResult], t: int) -> np.ndarray:
    """exp(running log-evidence) at the last checkpoint at or before step t, per run."""
    out = []
    for result in results:
        eligible = [record for record in result.checkpoints if record.t <= t]
        out.append(np.exp(eligible[-1].log_evidence))
    return np.array(out)


@pytest.mark.parametrize("schedule", ["every", "ess:0.6", "steps:2"])
@pytest.mark.parametrize("resampler", ["systematic", "multinomial"])
def test_running_estimate_with_exact_value_has_mean_z_at_every_checkpoint(
    problem, schedule, resampler
):
    config = config_for(schedule, resampler)
    results = run_many(problem.tree, config, range(N_RUNS), problem.critics["exact"])
    checkpoints = sorted({record.t for result in results for record in result.checkpoints})
    assert checkpoints[0] <= 2
    for t in checkpoints:
        estimates = running_estimates(results, t)
        assert mean_pvalue(estimates, problem.solution.z) > ALPHA, (t, estimates.mean())


def test_running_estimate_detects_a_flipped_value_sign(problem):
    """The same check with V = -V* must fail: the test above has power against a sign bug."""
    from agentmc.smc import TableValue

    flipped = TableValue({node: -value for node, value in problem.solution.soft_values.items()})
    results = run_many(problem.tree, config_for("every"), range(N_RUNS), flipped)
    estimates = running_estimates(results, 1)
    assert mean_pvalue(estimates, problem.solution.z) < ALPHA
    # ... while Zhat itself stays unbiased: a flipped twist is still a valid twist.
    z_hat = np.exp([result.log_evidence for result in results])
    assert mean_pvalue(z_hat, problem.solution.z) > ALPHA
