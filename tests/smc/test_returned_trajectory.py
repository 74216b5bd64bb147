"""The trajectory one SMC run answers with, against the exact target (chi-squared).

A single run's answer (one particle drawn from the final weights) follows
pi* only up to an O(1/K) bias (design.md section 2), so this test uses many
particles (K = 32), where the bias is far below what N = 200 runs can
detect, and checks every resampler and every schedule. The unbiasedness tests
in ``test_unbiased.py`` are the exact ones; this is the end-to-end view a user
gets, and it fails loudly on a sampler that targets the wrong distribution
(checked below with a wrong beta).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from smc_problems import BETA, Problem, run_many

from agentmc.smc import RESAMPLERS, SMCConfig, select_particle, solve_tree

#: Significance level of each chi-squared test (about 20 run; a correct sampler
#: fails any of them with probability about 0.2%).
ALPHA = 1e-4
N_RUNS = 200
N_PARTICLES = 32
SCHEDULES = ["every", "steps:2", "ess:0.5", "none"]


def returned_leaves(problem: Problem, config: SMCConfig, critic: str) -> np.ndarray:
    results = run_many(problem.tree, config, range(N_RUNS), problem.critics[critic])
    counts = np.zeros(len(problem.solution.leaves))
    rng = np.random.default_rng(7)
    for result in results:
        chosen = select_particle("weight", log_weights=result.log_weights, rng=rng)
        counts[problem.solution.index[result.states[chosen].prefix]] += 1
    return counts


def chi_squared_pvalue(counts: np.ndarray, probabilities: np.ndarray) -> float:
    expected = counts.sum() * probabilities
    # Pool leaves with small expected counts so the chi-squared approximation holds.
    order = np.argsort(expected)
    pooled_observed, pooled_expected = [], []
    observed_bin = expected_bin = 0.0
    for i in order:
        observed_bin += counts[i]
        expected_bin += expected[i]
        if expected_bin >= 5:
            pooled_observed.append(observed_bin)
            pooled_expected.append(expected_bin)
            observed_bin = expected_bin = 0.0
    if expected_bin:
        pooled_observed[-1] += observed_bin
        pooled_expected[-1] += expected_bin
    return float(stats.chisquare(pooled_observed, pooled_expected).pvalue)


def config(schedule: str, resampler: str, beta: float = BETA) -> SMCConfig:
    return SMCConfig(
        n_particles=N_PARTICLES, beta=beta, resampler=resampler, schedule=schedule, max_steps=3
    )


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("resampler", sorted(RESAMPLERS))
def test_returned_trajectory_follows_the_target(problem, resampler, schedule):
    counts = returned_leaves(problem, config(schedule, resampler), "zero")
    assert chi_squared_pvalue(counts, problem.solution.target) > ALPHA


@pytest.mark.parametrize("critic", ["exact", "bad"])
def test_critics_do_not_change_the_target(problem, critic):
    counts = returned_leaves(problem, config("every", "systematic"), critic)
    assert chi_squared_pvalue(counts, problem.solution.target) > ALPHA


def test_the_chi_squared_test_has_power_against_a_wrong_target(problem):
    counts = returned_leaves(problem, config("every", "systematic", beta=BETA / 4), "zero")
    assert chi_squared_pvalue(counts, problem.solution.target) < ALPHA
    # ... and that sample does follow the target of its own beta.
    own = solve_tree(problem.tree, BETA / 4)
    assert chi_squared_pvalue(counts, own.target) > ALPHA
