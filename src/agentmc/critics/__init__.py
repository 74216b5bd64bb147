"""Critics: value functions ``V(h)`` over agent histories, for AMC's twist.

- :mod:`agentmc.critics.core`: the :class:`Critic` protocol (batched
  ``values(histories) -> (B,)``) and :class:`History`.
- :mod:`agentmc.critics.baselines`: :class:`ZeroCritic` (AMC becomes SMC on
  rewards) and :class:`ConstantCritic`.
- :mod:`agentmc.critics.targets`: regression targets (Monte-Carlo return,
  final success, TD(lambda)) and one example per state.
- :mod:`agentmc.critics.fit`: training with a train/validation split by task;
  :func:`train_from_runs` reads ``agentmc collect`` run directories.
- Backends, cheapest first: :mod:`~agentmc.critics.hashed` (scikit-learn,
  seconds), :mod:`~agentmc.critics.embedding` (bundled MiniLM + MLP,
  ``[embed]``), :mod:`~agentmc.critics.lora` (transformer + LoRA + head,
  ``[torch]``), and the zero-shot :mod:`~agentmc.critics.judge`.
- :mod:`agentmc.critics.artifact`: versioned save/load with environment,
  version and integrity checks.
- :mod:`agentmc.critics.evaluate`: MSE, Spearman, AUROC, reliability plots.

Example:
    >>> from agentmc.critics import History, ZeroCritic
    >>> ZeroCritic().values([History("Goal: craft stick.")])
    array([0.])

Training from a collected run (``agentmc collect --out runs/prior``)::

    result = train_from_runs(["runs/prior"], FitConfig(backend="hashed"))
    save(result.critic, "critics/textcraft")
    critic = load("critics/textcraft", env_id="textcraft")
"""

from __future__ import annotations

from agentmc.critics.artifact import Provenance, load, save
from agentmc.critics.baselines import ConstantCritic, ZeroCritic
from agentmc.critics.core import Critic, History, avalues
from agentmc.critics.evaluate import critic_metrics, reliability_plot
from agentmc.critics.fit import FitConfig, FitResult, fit, load_runs, train_from_runs
from agentmc.critics.targets import make_examples, returns_to_go, td_lambda_returns

__all__ = [
    "ConstantCritic",
    "Critic",
    "FitConfig",
    "FitResult",
    "History",
    "Provenance",
    "ZeroCritic",
    "avalues",
    "critic_metrics",
    "fit",
    "load",
    "load_runs",
    "make_examples",
    "reliability_plot",
    "returns_to_go",
    "save",
    "td_lambda_returns",
    "train_from_runs",
]
