"""agentmc: make frozen LLM agents succeed more often in multi-turn environments.

Agentic Monte Carlo (AMC) samples from the KL-regularised RL optimum
``prior(tau) * exp(R(tau) / beta)`` with Sequential Monte Carlo over whole
trajectories of a black-box agent; group RL (GRPO, RLOO, G2PO, GiGPO) trains
instead; the evaluation harness compares them at equal cost.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("agentmc")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
