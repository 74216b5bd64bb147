"""What the sampler needs from a problem: a particle model in Feynman-Kac shape.

SMC here targets ``pi*(tau) ∝ p(tau) * exp(R(tau) / beta)`` over whole
trajectories. The prior ``p`` is whatever :meth:`ParticleModel.propose`
samples from; the reward enters through :meth:`ParticleModel.returns`. In
Feynman-Kac terms, the potential of checkpoint c is
``G_c = exp((R_c - R_{c-1}) / beta) * psi_c / psi_{c-1}`` with the twist
``psi = exp(V / beta)`` supplied by an optional :class:`ValueFunction` (a
critic). The sampler sets ``psi = 1`` for finished particles and before the
first checkpoint, so the twists telescope away and *any* value function
leaves the target unchanged; a good one lowers the variance.

Particle states are opaque, ideally immutable values: resampling is the
gather ``[states[i] for i in ancestors]``, so two clones share one object.

Example:
    A model needs four methods; nothing has to inherit from anything::

        class Coin:
            def initial(self, n_particles, rng):
                return [()] * n_particles

            async def propose(self, t, states, rng):
                return [state + (int(rng.integers(2)),) for state in states]

            def returns(self, states):
                return np.array([float(sum(state)) for state in states])

            def is_done(self, states):
                return np.array([len(state) == 3 for state in states])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar, runtime_checkable

import numpy as np

from agentmc.types import BoolArray, FloatArray

State = TypeVar("State")
StateContra = TypeVar("StateContra", contravariant=True)


@runtime_checkable
class ParticleModel(Protocol[State]):
    """A sequential problem that SMC can sample: prior moves, rewards, termination."""

    def initial(self, n_particles: int, rng: np.random.Generator) -> Sequence[State]:
        """``n_particles`` start states (usually the same task start, shared)."""
        ...

    async def propose(
        self, t: int, states: Sequence[State], rng: np.random.Generator
    ) -> Sequence[State]:
        """Advance each *unfinished* state by one step of the prior.

        Args:
            t: The step being taken, 1-based.
            states: The states to advance, in particle order (finished ones are
                never passed in).
            rng: Generator for this step's randomness (draw it in the order of
                ``states`` so runs are reproducible).

        Returns:
            The new states, same length and order.
        """
        ...

    def returns(self, states: Sequence[State]) -> FloatArray:
        """Total reward collected so far by each state, shape ``(n,)``."""
        ...

    def is_done(self, states: Sequence[State]) -> BoolArray:
        """Whether each state is finished (terminated, truncated or failed), shape ``(n,)``."""
        ...


@runtime_checkable
class ValueFunction(Protocol[StateContra]):
    """A critic in reward units: ``V(h)`` estimates ``beta * log E[exp(R_future / beta) | h]``.

    The sampler awaits it at checkpoints only (so a critic that asks an LLM judge
    never blocks the event loop, and one that costs is only paid where its values
    enter the weights), and only on unfinished states; finished ones have ``V = 0``.

    Example:
        A value function is one coroutine method::

            class Half:
                async def values(self, t, states):
                    return np.array([0.5 * sum(state) for state in states])
    """

    async def values(self, t: int, states: Sequence[StateContra]) -> FloatArray:
        """Values of ``states`` at the checkpoint after step ``t``, shape ``(n,)``."""
        ...


@dataclass(frozen=True)
class Spend:
    """What a model has spent so far (policy calls, tokens, dollars).

    Attributes:
        calls: Policy requests made.
        tokens: Prompt plus completion tokens.
        cost: US dollars, or ``None`` if some price is unknown.
    """

    calls: int = 0
    tokens: int = 0
    cost: float | None = 0.0


@runtime_checkable
class SupportsSpend(Protocol):
    """Optional: models that report their spend can be run under a budget cap."""

    def spent(self) -> Spend:
        """Totals since the model was created."""
        ...
