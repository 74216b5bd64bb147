"""A linear softmax policy over candidate actions, usable wherever a Policy is.

The model scores each candidate ``a`` in state ``s`` with ``w . phi(s, a)``
(hashed features from :mod:`agentmc.rl.features`) and samples from
``softmax(scores / temperature)``. The state ``s`` is the environment's state
text (:mod:`agentmc.rl.states`), folded from the conversation, so the trainer
and the evaluation harness see the same input.

It implements the :class:`~agentmc.policies.core.Policy` protocol: ``complete``
needs the ``candidates`` hint (the environment's valid actions) and answers
with one of them, carrying its log-probability. ``synthetic`` is ``False``: it
is a real, if tiny, trained agent, named ``linear-<estimator>`` in records.

Weights and settings are saved as ``<path>.npz`` plus ``<path>.json``;
:func:`load_trained_policy` reads them back from either file or from a run
directory of ``agentmc train`` (the evaluation harness's ``trained:PATH`` spec).

Example:
    >>> import asyncio
    >>> from agentmc.types import Message
    >>> policy = LinearPolicy(env_id="my-env", dim=2**10)
    >>> messages = (Message("user", "Find the key."),)
    >>> [c.text for c in asyncio.run(policy.complete(messages, seed=0, candidates=["look"]))]
    ['look']
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agentmc.errors import ConfigError, DataError, PolicyError
from agentmc.policies.core import Completion
from agentmc.policies.parsing import parse_action
from agentmc.rl.features import featurize_candidates
from agentmc.rl.states import get_state_space
from agentmc.types import FloatArray, IntArray, Message, Usage

FORMAT_VERSION = 1


class LinearPolicy:
    """Softmax over ``w . phi(state, action)`` for the given candidates.

    Attributes:
        env_id: Environment whose state fold turns conversations into state texts.
        dim: Number of hashed feature slots (length of ``weights``).
        weights: The parameters, shape ``(dim,)``.
        name: Label in run records.
        synthetic: Always ``False`` (a trained agent, not a stand-in).
        meta: JSON-safe training details saved with the weights.
    """

    synthetic = False

    def __init__(
        self,
        env_id: str,
        dim: int = 2**18,
        weights: FloatArray | None = None,
        name: str = "linear",
        meta: dict[str, Any] | None = None,
    ) -> None:
        if dim < 1:
            raise ConfigError(f"dim must be >= 1, got {dim}")
        self.env_id = env_id
        self.dim = dim
        self.weights = np.zeros(dim) if weights is None else np.asarray(weights, dtype=np.float64)
        if self.weights.shape != (dim,):
            raise ConfigError(f"weights must have shape ({dim},), got {self.weights.shape}")
        self.name = name
        self.meta = dict(meta or {})

    def features(
        self, state_text: str, candidates: Sequence[str], previous_action: str = ""
    ) -> tuple[IntArray, FloatArray, IntArray]:
        """Sparse features of every candidate: ``(indices, values, owner)``."""
        return featurize_candidates(state_text, tuple(candidates), self.dim, previous_action)

    def log_probs(
        self,
        features: tuple[IntArray, FloatArray, IntArray],
        n_candidates: int,
        temperature: float = 1.0,
    ) -> FloatArray:
        """Log-probabilities of the candidates, shape ``(n_candidates,)``."""
        indices, values, owner = features
        raw = np.bincount(owner, weights=self.weights[indices] * values, minlength=n_candidates)
        scores = raw / temperature
        scores = scores - scores.max()
        return scores - np.log(np.exp(scores).sum())

    def state_text(self, messages: Sequence[Message]) -> tuple[str, str]:
        """Fold a conversation into ``(state_text, previous_action)``.

        The conversation is the task (first non-system message), then
        alternating replies and observations, as :mod:`agentmc.rollout` builds it;
        leading system messages (prompt formats) are skipped.
        """
        turns = list(messages)
        while turns and turns[0].role == "system":
            turns.pop(0)
        if not turns:
            return "", ""
        space = get_state_space(self.env_id)
        state = space.start(turns[0].content)
        previous = ""
        for reply, observation in zip(turns[1::2], turns[2::2], strict=False):
            previous = parse_action(reply.content)[0]
            state = space.advance(state, previous, observation.content)
        return space.render(state), previous

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        n: int = 1,
        temperature: float = 1.0,
        seed: int | None = None,
        candidates: Sequence[str] | None = None,
    ) -> list[Completion]:
        """Sample ``n`` candidates; ``temperature=0`` picks the best one.

        Raises:
            PolicyError: No candidates were given.
        """
        if not candidates:
            raise PolicyError(
                f"policy {self.name!r} chooses among candidate actions; the environment "
                f"{self.env_id!r} offered none (it needs valid_actions())"
            )
        state_text, previous = self.state_text(messages)
        features = self.features(state_text, candidates, previous)
        rng = np.random.default_rng(seed)
        if temperature <= 0:
            log_probs = self.log_probs(features, len(candidates))
            choices = np.full(n, int(np.argmax(log_probs)))
        else:
            log_probs = self.log_probs(features, len(candidates), temperature)
            choices = rng.choice(len(candidates), size=n, p=np.exp(log_probs))
        # One request, computed here: one call, no billed tokens, free (cost 0, not unknown).
        return [
            Completion(
                candidates[i], float(log_probs[i]), Usage(calls=1, cost=0.0) if k == 0 else Usage()
            )
            for k, i in enumerate(choices)
        ]

    def save(self, path: str | Path) -> Path:
        """Write ``<path>.npz`` (weights) and ``<path>.json`` (settings); returns the JSON path."""
        base = Path(path).with_suffix("")
        base.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(base.with_suffix(".npz"), weights=self.weights)
        settings = {
            "format": FORMAT_VERSION,
            "kind": "linear-softmax",
            "env_id": self.env_id,
            "dim": self.dim,
            "name": self.name,
            "meta": self.meta,
        }
        base.with_suffix(".json").write_text(json.dumps(settings, indent=2, sort_keys=True))
        return base.with_suffix(".json")

    @classmethod
    def load(cls, path: str | Path) -> LinearPolicy:
        """Read a policy written by :meth:`save` (either file's path, or the stem).

        Raises:
            DataError: Missing, corrupt or incompatible files.
        """
        base = Path(path).with_suffix("")
        try:
            settings = json.loads(base.with_suffix(".json").read_text())
            with np.load(base.with_suffix(".npz")) as data:
                weights = np.array(data["weights"], dtype=np.float64)
        except (OSError, ValueError, KeyError) as error:
            raise DataError(f"cannot read policy {base}.json/.npz: {error}") from None
        if settings.get("format") != FORMAT_VERSION or settings.get("kind") != "linear-softmax":
            raise DataError(
                f"{base}.json is not a linear-softmax policy of format {FORMAT_VERSION}"
            )
        return cls(
            env_id=settings["env_id"],
            dim=int(settings["dim"]),
            weights=weights,
            name=settings.get("name", "linear"),
            meta=settings.get("meta", {}),
        )


def load_trained_policy(path: str | Path) -> Any:
    """Load a trained policy for evaluation (the ``trained:PATH`` policy spec).

    Args:
        path: A run directory of ``agentmc train`` (holding ``policy.json``, or
            ``lm_policy.json`` and ``adapter/`` for ``--policy lm``: the embedded
            model with its trained LoRA adapter, played through llama.cpp when
            ``adapter.gguf`` is there), or a linear policy's
            ``.json`` / ``.npz`` file or their common stem.

    Returns:
        The policy; it implements :class:`~agentmc.policies.core.Policy` and
        answers with one of the ``candidates`` it is given.

    Raises:
        DataError: Nothing loadable at ``path``.
    """
    target = Path(path)
    if target.is_dir() and (target / "lm_policy.json").exists():
        from agentmc.rl.lm import load_lm_policy

        return load_lm_policy(target)
    if target.is_dir():
        target = target / "policy.json"
    if not target.with_suffix(".json").exists():
        raise DataError(
            f"no trained policy at {path}: expected a run directory of `agentmc train` "
            "or a policy .json/.npz pair"
        )
    return LinearPolicy.load(target)


@dataclass
class Decisions:
    """A batch of decisions of a :class:`LinearPolicy`, for vectorised updates.

    Attributes:
        indices: Per decision, the feature indices of all its candidates.
        values: Per decision, the matching feature values.
        lengths: Per decision, the number of features of each candidate.
        chosen: Per decision, the index of the candidate taken.
        old_log_probs: Per decision, its log-probability when it was sampled.
    """

    indices: list[IntArray] = field(default_factory=list)
    values: list[FloatArray] = field(default_factory=list)
    lengths: list[IntArray] = field(default_factory=list)
    chosen: list[int] = field(default_factory=list)
    old_log_probs: list[float] = field(default_factory=list)

    def add(
        self,
        features: tuple[IntArray, FloatArray, IntArray],
        n_candidates: int,
        chosen: int,
        log_prob: float,
    ) -> None:
        """Record one decision (features as returned by :meth:`LinearPolicy.features`)."""
        self.indices.append(features[0])
        self.values.append(features[1])
        self.lengths.append(np.bincount(features[2], minlength=n_candidates))
        self.chosen.append(chosen)
        self.old_log_probs.append(log_prob)

    def __len__(self) -> int:
        return len(self.chosen)


def _flat(weights: FloatArray, batch: Decisions, temperature: float) -> dict[str, Any]:
    """Segment-wise softmax over every decision's candidates at once."""
    indices, values = np.concatenate(batch.indices), np.concatenate(batch.values)
    sizes = np.array([len(lengths) for lengths in batch.lengths])
    candidate = np.repeat(np.arange(int(sizes.sum())), np.concatenate(batch.lengths))
    step_of = np.repeat(np.arange(len(sizes)), sizes)  # candidate -> decision
    raw = np.bincount(candidate, weights=weights[indices] * values, minlength=len(step_of))
    scores = raw / temperature
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    scores = scores - np.maximum.reduceat(scores, starts)[step_of]
    log_probs = scores - np.log(np.add.reduceat(np.exp(scores), starts))[step_of]
    chosen = starts + np.asarray(batch.chosen)
    return {
        "log_probs": log_probs, "chosen": chosen, "candidate": candidate,
        "indices": indices, "values": values, "step_of": step_of,
    }  # fmt: skip


def chosen_log_probs(weights: FloatArray, batch: Decisions, temperature: float = 1.0) -> FloatArray:
    """Log-probabilities of the taken actions under ``weights``, shape ``(N,)``."""
    if not len(batch):
        return np.zeros(0)
    flat = _flat(weights, batch, temperature)
    return flat["log_probs"][flat["chosen"]]


def loss_gradient(
    weights: FloatArray, batch: Decisions, coef: FloatArray, temperature: float = 1.0
) -> FloatArray:
    """``-(1/N) sum_t coef[t] grad_w log pi(a_t | s_t)``, shape ``(dim,)``.

    For the linear softmax, ``grad_w log pi(a) = (phi(a) - sum_j pi(j) phi(j)) / temperature``.
    ``coef`` comes from a loss in :mod:`agentmc.rl.losses`.
    """
    if not len(batch):
        return np.zeros_like(weights)
    flat = _flat(weights, batch, temperature)
    per_candidate = -np.exp(flat["log_probs"])
    per_candidate[flat["chosen"]] += 1.0
    per_candidate *= np.asarray(coef)[flat["step_of"]] / temperature
    contributions = per_candidate[flat["candidate"]] * flat["values"]
    return -np.bincount(flat["indices"], weights=contributions, minlength=len(weights)) / len(batch)
