"""agentmc: make frozen LLM agents succeed more often in multi-turn environments.

Agentic Monte Carlo (AMC) samples from the KL-regularised RL optimum
``prior(tau) * exp(R(tau) / beta)`` with Sequential Monte Carlo over whole
trajectories of a black-box agent; group RL (GRPO, RLOO, G2PO, GiGPO) trains
instead; the evaluation harness compares them at equal cost.

The public API, by concept (each name also lives in the module in brackets):

- Environments (:mod:`agentmc.envs`): :func:`make`, :func:`task_ids`,
  :func:`env_ids`, :func:`register` (add your own), :func:`check_env`,
  :class:`TextEnv`, :class:`StepResult`.
- Policies (:mod:`agentmc.policies`): :func:`make_policy`, :class:`Policy`,
  :class:`Completion`, and the offline stand-ins :class:`ScriptedPolicy`,
  :class:`RandomPolicy`, :class:`ReplayPolicy`, :class:`NoisyExpertPolicy`.
- Records: :class:`Trajectory` (one episode), :class:`Turn`, :class:`Message`.
  The plain agent loop that makes them stays in its module
  (``from agentmc.rollout import rollout, arollout``): a top-level function
  ``agentmc.rollout`` would shadow the module ``agentmc.rollout``, and which of
  the two that name meant would depend on import order.
- SMC (:mod:`agentmc.smc`, numpy only): :class:`SMC`, :class:`SMCConfig`
  (K, beta, schedule, resampler and a :class:`Budget`, each declared only there),
  :class:`SMCResult`, :func:`run_smc`; :class:`AgentModel` and
  :class:`AgentState` (:mod:`agentmc.steer`) adapt an environment, a policy
  and a critic to it, and :class:`HiddenReward` keeps the true reward out of
  a run (the deployment setting).
- Methods (:mod:`agentmc.methods`): :class:`MethodSpec` (``"amc:8:critic"``),
  :func:`run_method`, :func:`arun_method`, :class:`EpisodeResult`.
- Evaluation (:mod:`agentmc.eval.harness`): :class:`Evaluation`,
  :class:`Plan`, :class:`Entry`.
- Critics (:mod:`agentmc.critics`): :class:`Critic`, :class:`History`,
  :class:`ZeroCritic`, :func:`fit` with :class:`FitConfig`.
- Group RL (:mod:`agentmc.rl`): :func:`estimate` (per-step advantages),
  :func:`group_advantages`, :func:`train` with :class:`GRPOConfig`.
- Errors (:mod:`agentmc.errors`): :class:`AgentmcError` (the base of every
  agentmc error) and :class:`ConfigError`.

``import agentmc`` is cheap: a name's module is imported the first time the
name is used (PEP 562 module ``__getattr__``), so ``import agentmc`` never
loads numpy, an environment or an optional extra.

Example:
    >>> import numpy as np
    >>> import agentmc
    >>> env = agentmc.make("guess-number", task_id="3")
    >>> policy = agentmc.make_policy("random")  # synthetic stand-in
    >>> config = agentmc.SMCConfig(n_particles=4, max_steps=6)
    >>> result = agentmc.run_smc(agentmc.AgentModel(env, policy), config, np.random.default_rng(0))
    >>> len(result.states)
    4
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("agentmc")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

if TYPE_CHECKING:
    # What type checkers and IDEs see. ``X as X`` marks an explicit re-export (PEP 484),
    # one name per line; a test keeps this block equal to _EXPORTS.
    from agentmc.critics.baselines import ZeroCritic as ZeroCritic
    from agentmc.critics.core import Critic as Critic
    from agentmc.critics.core import History as History
    from agentmc.critics.fit import FitConfig as FitConfig
    from agentmc.critics.fit import fit as fit
    from agentmc.data.trajectory import Trajectory as Trajectory
    from agentmc.data.trajectory import Turn as Turn
    from agentmc.envs.checker import check_env as check_env
    from agentmc.envs.core import StepResult as StepResult
    from agentmc.envs.core import TextEnv as TextEnv
    from agentmc.envs.registry import env_ids as env_ids
    from agentmc.envs.registry import make as make
    from agentmc.envs.registry import register as register
    from agentmc.envs.registry import task_ids as task_ids
    from agentmc.errors import AgentmcError as AgentmcError
    from agentmc.errors import ConfigError as ConfigError
    from agentmc.eval.harness import Entry as Entry
    from agentmc.eval.harness import Evaluation as Evaluation
    from agentmc.eval.harness import Plan as Plan
    from agentmc.methods import EpisodeResult as EpisodeResult
    from agentmc.methods import MethodSpec as MethodSpec
    from agentmc.methods import arun_method as arun_method
    from agentmc.methods import run_method as run_method
    from agentmc.policies import make_policy as make_policy
    from agentmc.policies.core import Completion as Completion
    from agentmc.policies.core import Policy as Policy
    from agentmc.policies.expert import NoisyExpertPolicy as NoisyExpertPolicy
    from agentmc.policies.replay import ReplayPolicy as ReplayPolicy
    from agentmc.policies.scripted import RandomPolicy as RandomPolicy
    from agentmc.policies.scripted import ScriptedPolicy as ScriptedPolicy
    from agentmc.rl.advantages import group_advantages as group_advantages
    from agentmc.rl.estimators import estimate as estimate
    from agentmc.rl.trainer import GRPOConfig as GRPOConfig
    from agentmc.rl.trainer import train as train
    from agentmc.smc.budget import Budget as Budget
    from agentmc.smc.sampler import SMC as SMC
    from agentmc.smc.sampler import SMCConfig as SMCConfig
    from agentmc.smc.sampler import SMCResult as SMCResult
    from agentmc.smc.sampler import run_smc as run_smc
    from agentmc.steer import AgentModel as AgentModel
    from agentmc.steer import AgentState as AgentState
    from agentmc.steer import HiddenReward as HiddenReward
    from agentmc.types import Message as Message

#: Public name -> the module that defines it (imported on first use).
_EXPORTS: dict[str, str] = {
    "AgentModel": "agentmc.steer",
    "AgentState": "agentmc.steer",
    "AgentmcError": "agentmc.errors",
    "Budget": "agentmc.smc.budget",
    "Completion": "agentmc.policies.core",
    "ConfigError": "agentmc.errors",
    "Critic": "agentmc.critics.core",
    "Entry": "agentmc.eval.harness",
    "EpisodeResult": "agentmc.methods",
    "Evaluation": "agentmc.eval.harness",
    "FitConfig": "agentmc.critics.fit",
    "GRPOConfig": "agentmc.rl.trainer",
    "HiddenReward": "agentmc.steer",
    "History": "agentmc.critics.core",
    "Message": "agentmc.types",
    "MethodSpec": "agentmc.methods",
    "NoisyExpertPolicy": "agentmc.policies.expert",
    "Plan": "agentmc.eval.harness",
    "Policy": "agentmc.policies.core",
    "RandomPolicy": "agentmc.policies.scripted",
    "ReplayPolicy": "agentmc.policies.replay",
    "SMC": "agentmc.smc.sampler",
    "SMCConfig": "agentmc.smc.sampler",
    "SMCResult": "agentmc.smc.sampler",
    "ScriptedPolicy": "agentmc.policies.scripted",
    "StepResult": "agentmc.envs.core",
    "TextEnv": "agentmc.envs.core",
    "Trajectory": "agentmc.data.trajectory",
    "Turn": "agentmc.data.trajectory",
    "ZeroCritic": "agentmc.critics.baselines",
    "arun_method": "agentmc.methods",
    "check_env": "agentmc.envs.checker",
    "env_ids": "agentmc.envs.registry",
    "estimate": "agentmc.rl.estimators",
    "fit": "agentmc.critics.fit",
    "group_advantages": "agentmc.rl.advantages",
    "make": "agentmc.envs.registry",
    "make_policy": "agentmc.policies",
    "register": "agentmc.envs.registry",
    "run_method": "agentmc.methods",
    "run_smc": "agentmc.smc.sampler",
    "task_ids": "agentmc.envs.registry",
    "train": "agentmc.rl.trainer",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use and cache the name here."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'agentmc' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
