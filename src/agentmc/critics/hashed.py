"""Hashed n-gram critic: the cheapest learned value model (scikit-learn, CPU, seconds).

Features, one hashed block each (:func:`agentmc.critics.text.segments`):

1. the task text (word 1-2 grams): how hard the task is;
2. the last turn (word 1-2 grams and character 3-5 grams): what just happened;
3. the earlier turns of the window, summed and L2-normalised: what has been done;
4. the step number, one-hot (capped): how much of the step budget is gone;
5. with ``plan_features`` (TextCraft), progress read off the conversation by the
   planner the noisy expert uses (:func:`agentmc.critics.textcraft.plan_features`):
   the remaining plan's length and the earliest step the goal can be crafted,
   one-hot. The model learns what they are worth; the n-grams above only see
   words, and cannot count how far a history is from the goal.

Each distinct text in a batch is vectorized once (the task is shared by every
state of a task, a turn by N consecutive states), so scoring costs about one
short text per state. The model is a ridge regression for returns and a
logistic regression for 0/1 success; its regularisation strength is chosen on
the validation split (the split is by task, see :mod:`agentmc.critics.fit`).
Predictions are clipped to the range of the training targets.

Ranking within a task (``rank_weight > 0``). Resampling and final selection
only compare histories of one task, and task-level features (how hard is
this task) dominate a plain regression. :func:`ranking_pairs` draws pairs of
different histories of one task at one step (or two finished attempts of one
task) whose targets differ; each pair adds the row ``x_i - x_j`` with the
target ``y_i - y_j`` (ridge) or both orders with labels 1 and 0 (logistic, the
RankNet / RankSVM form), with weight ``rank_weight``. The task features cancel
in a difference, so these rows can only be fitted by what happened in the
history. The intercept is an explicit column absent from difference rows.

Artifacts store the coefficients as a numpy ``.npz`` read with
``allow_pickle=False``: the hashing vectorizer is stateless, so nothing else is
needed and nothing is unpickled.

Example:
    >>> critic = HashedCritic.train(train, val, HashedConfig(), target="return",
    ...                             last_turns=10, rng=np.random.default_rng(0))  # doctest: +SKIP
    >>> critic.values(val.histories[:3])                                         # doctest: +SKIP
    array([0.71, 0.64, 0.12])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agentmc.critics.artifact import Provenance
from agentmc.critics.core import History
from agentmc.critics.targets import Examples
from agentmc.critics.text import DEFAULT_LAST_TURNS, segments
from agentmc.errors import ConfigError, DataError, require
from agentmc.types import FloatArray

MODEL_FILE = "model.npz"


@dataclass(frozen=True)
class HashedConfig:
    """Settings of the hashed n-gram critic."""

    n_features: int = 2**18
    """Hash buckets per text block (three blocks)."""
    char_ngrams: bool = True
    """Add character 3-5 grams of the last turn (robust to inflections and ids)."""
    max_step: int = 50
    """Steps beyond this share one step feature."""
    strengths: tuple[float, ...] = (3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)
    """Regularisation strengths tried (ridge alpha; 1/C for logistic); best on validation wins."""
    max_iter: int = 300
    """Iteration cap of the logistic regression solver."""
    rank_weight: float = 0.0
    """Weight of the within-task ranking rows (0: plain pointwise regression)."""
    pairs_per_group: int = 20
    """Most ranking pairs drawn per (task, step) group."""
    plan_features: bool = False
    """Add TextCraft progress features (plan length, earliest finishing step; zeros on
    other environments). They read the task text and observations only."""

    def __post_init__(self) -> None:
        if self.n_features < 16 or self.n_features & (self.n_features - 1):
            raise ConfigError(f"n_features must be a power of two >= 16, got {self.n_features}")
        if self.max_step < 1:
            raise ConfigError(f"max_step must be >= 1, got {self.max_step}")
        if not self.strengths or any(s <= 0 for s in self.strengths):
            raise ConfigError(f"strengths must be positive numbers, got {self.strengths}")
        if self.max_iter < 1:
            raise ConfigError(f"max_iter must be >= 1, got {self.max_iter}")
        if not self.rank_weight >= 0:
            raise ConfigError(f"rank_weight must be >= 0, got {self.rank_weight}")
        if self.pairs_per_group < 1:
            raise ConfigError(f"pairs_per_group must be >= 1, got {self.pairs_per_group}")


class Featurizer:
    """Histories -> sparse feature matrix ``(B, n_columns)``."""

    def __init__(self, config: HashedConfig, last_turns: int) -> None:
        sklearn_text = require("sklearn.feature_extraction.text", "critic")
        self.config = config
        self.last_turns = last_turns
        common = {"n_features": config.n_features, "alternate_sign": False, "norm": None}
        self.words = sklearn_text.HashingVectorizer(
            analyzer="word", ngram_range=(1, 2), token_pattern=r"(?u)\b\w+\b", **common
        )
        self.chars = sklearn_text.HashingVectorizer(
            analyzer="char_wb", ngram_range=(3, 5), **common
        )

    @property
    def n_columns(self) -> int:
        """``3 * n_features + max_step + 2``, plus the plan block when it is on."""
        from agentmc.critics.textcraft import PLAN_COLUMNS

        plan = PLAN_COLUMNS if self.config.plan_features else 0
        return 3 * self.config.n_features + self.config.max_step + 2 + plan

    def __call__(self, histories: Sequence[History]):
        """Sparse CSR features, one row per history."""
        import scipy.sparse as sp
        from sklearn.preprocessing import normalize

        parts = [segments(h, self.last_turns) for h in histories]
        n = len(parts)
        tasks, task_index = _unique([p.task for p in parts])
        turn_texts, turn_index = _unique([t for p in parts for t in p.turns])
        task_matrix = normalize(self.words.transform(tasks))
        last_matrix = window_matrix = None
        # No turn at all (states at step 0, or last_turns=0): nothing to vectorize
        # (HashingVectorizer and normalize refuse empty inputs).
        if turn_texts:
            turn_words = self.words.transform(turn_texts)
            if self.config.char_ngrams:
                last_matrix = normalize(turn_words + self.chars.transform(turn_texts))
            else:
                last_matrix = normalize(turn_words)
            window_matrix = normalize(turn_words)

        rows_last, cols_last, rows_win, cols_win = [], [], [], []
        position = 0
        for row, part in enumerate(parts):
            k = len(part.turns)
            if k:
                rows_last.append(row)
                cols_last.append(turn_index[position + k - 1])
                rows_win.extend([row] * (k - 1))
                cols_win.extend(turn_index[position : position + k - 1])
            position += k
        n_turns = len(turn_texts)

        def selector(rows: list[int], cols: list[int]) -> Any:
            data = np.ones(len(rows))
            return sp.csr_matrix((data, (rows, cols)), shape=(n, max(n_turns, 1)))

        task_block = (
            sp.csr_matrix((np.ones(n), (np.arange(n), task_index)), shape=(n, len(tasks)))
            @ task_matrix
        )
        if n_turns:
            last_block = selector(rows_last, cols_last) @ last_matrix
            # Summed, not normalised: how many times something happened matters.
            window_block = selector(rows_win, cols_win) @ window_matrix / max(1, self.last_turns)
        else:
            empty = sp.csr_matrix((n, self.config.n_features))
            last_block = window_block = empty
        steps = np.array([min(p.step, self.config.max_step) for p in parts])
        step_block = sp.csr_matrix(
            (
                np.concatenate([np.ones(n), steps / self.config.max_step]),
                (
                    np.tile(np.arange(n), 2),
                    np.concatenate([steps, np.full(n, self.config.max_step + 1)]),
                ),
            ),
            shape=(n, self.config.max_step + 2),
        )
        blocks = [task_block, last_block, window_block, step_block]
        if self.config.plan_features:
            from agentmc.critics.textcraft import plan_features

            blocks.append(sp.csr_matrix(plan_features(histories)))
        return sp.hstack(blocks, format="csr")


def ranking_pairs(
    examples: Examples, per_group: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs ``(i, j)`` of one group with ``targets[i] > targets[j]`` and different histories.

    Groups are (task, step) for running states and (task, final) for final
    states. At most ``per_group`` pairs per group, drawn with ``rng``.

    Returns:
        ``(first, second)`` index arrays of equal length (the first has the higher target).
    """
    terminal = examples.is_terminal
    members: dict[tuple[str, int], list[int]] = {}
    for i, task in enumerate(examples.task_ids):
        step = -1 if terminal[i] else int(examples.steps[i])
        members.setdefault((task, step), []).append(i)
    keys: dict[History, int] = {}
    ids = np.array([keys.setdefault(h, len(keys)) for h in examples.histories])
    first: list[np.ndarray] = []
    second: list[np.ndarray] = []
    for index in members.values():
        if len(index) < 2:
            continue
        idx = np.asarray(index)
        t = examples.targets[idx]
        mask = (t[:, None] > t[None, :]) & (ids[idx][:, None] != ids[idx][None, :])
        a, b = np.nonzero(mask)
        if a.size > per_group:
            keep = rng.choice(a.size, size=per_group, replace=False)
            a, b = a[keep], b[keep]
        first.append(idx[a])
        second.append(idx[b])
    if not first:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(first), np.concatenate(second)


#: Value of the explicit intercept column (large, so the ridge penalty barely touches it).
_INTERCEPT_SCALE = 10.0


def _with_pairs(x: Any, y: np.ndarray, first: np.ndarray, second: np.ndarray, logistic: bool):
    """Point rows plus difference rows, with an intercept column set on point rows only.

    Returns:
        ``(rows, targets, is_pair)``.
    """
    import scipy.sparse as sp

    n = x.shape[0]
    m = first.size
    signs = sp.csr_matrix(
        (
            np.concatenate([np.ones(m), -np.ones(m)]),
            (np.tile(np.arange(m), 2), np.concatenate([first, second])),
        ),
        shape=(m, n),
    )
    diff = (signs @ x).astype(np.float32)
    if logistic:
        pair_rows = sp.vstack([diff, -diff])
        pair_y = np.concatenate([np.ones(m), np.zeros(m)])
    else:
        pair_rows = diff
        pair_y = y[first] - y[second]
    k = pair_rows.shape[0]
    intercept = sp.csr_matrix(
        np.concatenate([np.full(n, _INTERCEPT_SCALE), np.zeros(k)]).reshape(-1, 1),
        dtype=np.float32,
    )
    rows = sp.hstack([sp.vstack([x, pair_rows]), intercept], format="csr")
    is_pair = np.concatenate([np.zeros(n, dtype=bool), np.ones(k, dtype=bool)])
    return rows, np.concatenate([y, pair_y]), is_pair


def _with_intercept(x: Any) -> Any:
    """``x`` with the explicit intercept column of :func:`_with_pairs` appended."""
    import scipy.sparse as sp

    column = sp.csr_matrix(np.full((x.shape[0], 1), _INTERCEPT_SCALE, dtype=np.float32))
    return sp.hstack([x, column], format="csr")


def _unique(texts: list[str]) -> tuple[list[str], list[int]]:
    """Distinct texts in first-seen order, and each input's index into them."""
    seen: dict[str, int] = {}
    index = [seen.setdefault(text, len(seen)) for text in texts]
    return list(seen), index


class HashedCritic:
    """Linear model over hashed n-gram features. See the module docstring.

    Attributes:
        config: The backend settings.
        kind: ``"ridge"`` (returns) or ``"logistic"`` (0/1 success).
        coef: Weights, shape ``(n_columns,)``.
        intercept: Bias.
        bounds: Predictions are clipped to ``[low, high]`` (training target range).
        strength: The regularisation strength chosen on validation.
        provenance: Training environment, target, data fingerprint, metrics.
    """

    name = "hashed"

    def __init__(
        self,
        config: HashedConfig,
        *,
        kind: str,
        coef: FloatArray,
        intercept: float,
        bounds: tuple[float, float],
        strength: float,
        provenance: Provenance,
    ) -> None:
        if kind not in ("ridge", "logistic"):
            raise DataError(f"unknown hashed model kind {kind!r}")
        self.config = config
        self.kind = kind
        self.coef = np.asarray(coef, dtype=np.float64)
        self.intercept = float(intercept)
        self.bounds = (float(bounds[0]), float(bounds[1]))
        self.strength = float(strength)
        self.provenance = provenance
        self.featurizer = Featurizer(config, provenance.last_turns)
        if self.coef.shape != (self.featurizer.n_columns,):
            raise DataError(
                f"hashed model has {self.coef.shape} weights, expected {self.featurizer.n_columns}"
            )

    # -- training --------------------------------------------------------------------

    @classmethod
    def train(
        cls,
        train: Examples,
        val: Examples,
        config: HashedConfig,
        *,
        target: str,
        last_turns: int = DEFAULT_LAST_TURNS,
        rng: np.random.Generator,
        provenance: Provenance | None = None,
        init: HashedCritic | None = None,
    ) -> HashedCritic:
        """Fit on ``train``, choosing the regularisation strength on ``val``.

        With ``init`` (a warm start, :mod:`agentmc.critics.refresh`), the ridge model
        is fitted as a correction to ``init``: the penalty pulls the weights towards
        ``init``'s instead of towards 0 (a Gaussian prior centred on the old model),
        so a strength chosen large on validation keeps the old critic and a small one
        follows the new data.

        Args:
            train: Training examples.
            val: Validation examples (other tasks).
            config: Backend settings.
            target: ``"success"`` fits a logistic regression, else a ridge regression.
            last_turns: Window N of turns read.
            rng: Source of the solver seeds.
            provenance: Recorded with the critic (filled in by :func:`fit`).
            init: A critic to warm-start from (ridge only; same features and window).

        Returns:
            The fitted critic.
        """
        linear = require("sklearn.linear_model", "critic")
        featurizer = Featurizer(config, last_turns)
        x_train, x_val = featurizer(train.histories), featurizer(val.histories)
        kind = "logistic" if target == "success" else "ridge"
        offset_train, offset_val = np.zeros(len(train)), np.zeros(len(val))
        if init is not None:
            if kind != "ridge" or init.kind != "ridge":
                raise ConfigError(
                    "a warm start refits ridge (return / td target) hashed critics only; "
                    "retrain a success-target critic on the old and new data together"
                )
            same_columns = init.featurizer.n_columns == featurizer.n_columns
            if not same_columns or init.provenance.last_turns != last_turns:
                raise ConfigError(
                    "a warm start needs the same features and window as the old critic"
                )
            offset_train = np.asarray(x_train @ init.coef, dtype=np.float64) + init.intercept
            offset_val = np.asarray(x_val @ init.coef, dtype=np.float64) + init.intercept
        # Only hash buckets that occur in the training states can get a non-zero weight:
        # solving over those columns alone gives the same model, and in float32 the
        # iterative solvers run several times faster on 10^4 states.
        used = np.unique(x_train.indices)
        x_train = x_train[:, used].astype(np.float32)
        x_val = x_val[:, used].astype(np.float32)
        y_train, y_val = train.targets - offset_train, val.targets
        if kind == "logistic" and len(np.unique(y_train)) < 2:
            raise DataError(
                "the success target needs both solved and failed episodes in the training "
                f"tasks; all {len(y_train)} training states have success={int(y_train[0])}"
            )
        bounds = (float(np.min(train.targets)), float(np.max(train.targets)))
        if init is not None:
            bounds = (min(bounds[0], init.bounds[0]), max(bounds[1], init.bounds[1]))
        ranking = config.rank_weight > 0
        weights = None
        if ranking:
            first, second = ranking_pairs(train, config.pairs_per_group, rng)
            x_train, y_fit, is_pair = _with_pairs(
                x_train, y_train, first, second, logistic=kind == "logistic"
            )
            weights = np.where(is_pair, config.rank_weight, 1.0)
            x_val = _with_intercept(x_val)
        else:
            y_fit = y_train
        best: tuple[float, float, Any] | None = None
        for strength in config.strengths:
            seed = int(rng.integers(2**31 - 1))  # drawn for every strength: same stream
            if kind == "ridge":
                model = linear.Ridge(
                    alpha=strength, solver="lsqr", tol=1e-3, fit_intercept=not ranking
                )
                model.fit(x_train, y_fit.astype(np.float32), sample_weight=weights)
                prediction = np.clip(offset_val + model.predict(x_val), *bounds)
                loss = float(np.mean((prediction - y_val) ** 2))
            else:
                # saga: an order of magnitude faster than lbfgs on wide sparse inputs.
                model = linear.LogisticRegression(
                    C=1.0 / strength,
                    solver="saga",
                    tol=1e-3,
                    max_iter=config.max_iter,
                    random_state=seed,
                    fit_intercept=not ranking,
                )
                model.fit(x_train, y_fit.astype(int), sample_weight=weights)
                p = np.clip(model.predict_proba(x_val)[:, 1], 1e-6, 1 - 1e-6)
                loss = float(-np.mean(y_val * np.log(p) + (1 - y_val) * np.log(1 - p)))
            if best is None or loss < best[0]:
                best = (loss, strength, model)
        assert best is not None
        _, strength, model = best
        fitted = np.asarray(model.coef_, dtype=np.float64).reshape(-1)
        if ranking:
            intercept = float(fitted[-1] * _INTERCEPT_SCALE)
            fitted = fitted[:-1]
        else:
            intercept = float(np.asarray(model.intercept_).reshape(-1)[0])
        coef = np.zeros(featurizer.n_columns) if init is None else init.coef.copy()
        coef[used] += fitted
        if init is not None:
            intercept += init.intercept
        return cls(
            config,
            kind=kind,
            coef=coef,
            intercept=intercept,
            bounds=bounds,
            strength=strength,
            provenance=provenance
            or Provenance(
                env_id=train.env_id, target=target, last_turns=last_turns, data_fingerprint=""
            ),
        )

    # -- scoring ---------------------------------------------------------------------

    def values(self, histories: Sequence[History]) -> FloatArray:
        """Predicted return (or success probability), shape ``(len(histories),)``."""
        if not histories:
            return np.zeros(0)
        score = self.featurizer(histories) @ self.coef + self.intercept
        if self.kind == "logistic":
            score = 1.0 / (1.0 + np.exp(-np.clip(score, -50.0, 50.0)))
        return np.clip(np.asarray(score, dtype=np.float64).reshape(-1), *self.bounds)

    # -- artifacts -------------------------------------------------------------------

    def config_dict(self) -> dict[str, Any]:
        return {**asdict(self.config), "strengths": list(self.config.strengths)}

    def libraries(self) -> dict[str, str]:
        import sklearn

        return {"scikit-learn": sklearn.__version__, "numpy": np.__version__}

    def save_files(self, directory: Path) -> None:
        np.savez_compressed(
            directory / MODEL_FILE,
            coef=self.coef,
            intercept=np.array([self.intercept]),
            bounds=np.array(self.bounds),
            strength=np.array([self.strength]),
            kind=np.array([self.kind]),
        )

    @classmethod
    def load_files(
        cls, directory: Path, config: dict[str, Any], provenance: Provenance
    ) -> HashedCritic:
        hashed_config = HashedConfig(
            **{**config, "strengths": tuple(config.get("strengths", HashedConfig.strengths))}
        )
        with np.load(directory / MODEL_FILE, allow_pickle=False) as data:
            return cls(
                hashed_config,
                kind=str(data["kind"][0]),
                coef=data["coef"],
                intercept=float(data["intercept"][0]),
                bounds=(float(data["bounds"][0]), float(data["bounds"][1])),
                strength=float(data["strength"][0]),
                provenance=provenance,
            )
