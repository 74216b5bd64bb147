"""Sequential Monte Carlo over whole trajectories, in numpy only.

``agentmc.smc`` knows nothing about LLMs, environments or critics: it samples
``pi*(tau) ∝ p(tau) exp(R(tau) / beta)`` for any :class:`ParticleModel` (prior
moves, returns, termination), optionally twisted by a :class:`ValueFunction`.
:mod:`agentmc.steer` adapts an environment, a policy and a critic to it.

Example:
    >>> import numpy as np
    >>> from agentmc.smc import SMCConfig, TreeModel, random_tree, run_smc, solve_tree
    >>> problem = random_tree(depth=3, branching=2, rng=np.random.default_rng(1))
    >>> config = SMCConfig(n_particles=16, beta=0.5, schedule="ess:0.5", max_steps=3)
    >>> result = run_smc(TreeModel(problem), config, rng=np.random.default_rng(2))
    >>> exact = solve_tree(problem, beta=0.5)
    >>> bool(abs(result.log_evidence - exact.log_z) < 1.0)
    True
"""

from __future__ import annotations

from agentmc.smc.budget import Budget
from agentmc.smc.exact import (
    TableValue,
    TreeModel,
    TreeProblem,
    TreeSolution,
    random_tree,
    solve_tree,
)
from agentmc.smc.model import ParticleModel, Spend, SupportsSpend, ValueFunction
from agentmc.smc.resampling import (
    RESAMPLERS,
    get_resampler,
    inverse_cdf,
    multinomial,
    offspring_counts,
    residual,
    stratified,
    systematic,
)
from agentmc.smc.sampler import (
    SMC,
    Ancestry,
    CheckpointRecord,
    Collector,
    SMCConfig,
    SMCResult,
    SMCState,
    check_beta,
    run_smc,
)
from agentmc.smc.schedules import (
    SCHEDULES,
    BudgetAware,
    ESSThreshold,
    EveryStep,
    FixedSteps,
    NoResampling,
    Schedule,
    ScheduleContext,
    parse_schedule,
)
from agentmc.smc.selection import SELECTION_MODES, SelectionMode, select_particle
from agentmc.smc.weights import (
    LogWeights,
    WeightError,
    effective_sample_size,
    log_mean_exp,
    logsumexp,
    normalise,
)

__all__ = [
    "RESAMPLERS",
    "SCHEDULES",
    "SELECTION_MODES",
    "SMC",
    "Ancestry",
    "Budget",
    "BudgetAware",
    "CheckpointRecord",
    "Collector",
    "ESSThreshold",
    "EveryStep",
    "FixedSteps",
    "LogWeights",
    "NoResampling",
    "ParticleModel",
    "SMCConfig",
    "SMCResult",
    "SMCState",
    "Schedule",
    "ScheduleContext",
    "SelectionMode",
    "Spend",
    "SupportsSpend",
    "TableValue",
    "TreeModel",
    "TreeProblem",
    "TreeSolution",
    "ValueFunction",
    "WeightError",
    "check_beta",
    "effective_sample_size",
    "get_resampler",
    "inverse_cdf",
    "log_mean_exp",
    "logsumexp",
    "multinomial",
    "normalise",
    "offspring_counts",
    "parse_schedule",
    "random_tree",
    "residual",
    "run_smc",
    "select_particle",
    "solve_tree",
    "stratified",
    "systematic",
]
