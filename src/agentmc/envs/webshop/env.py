"""The WebShop environment: search, browse and buy, in WebShop's text format.

Pages and the actions they accept (``click`` targets are case-insensitive):

* search page: ``search[keywords]``;
* results (10 per page, up to 50): ``click[<asin>]``, ``click[next >]``,
  ``click[< prev]``, ``click[back to search]``;
* product page: ``click[<option value>]`` (selects it), ``click[description]``,
  ``click[features]``, ``click[reviews]``, ``click[< prev]`` (to the results),
  ``click[back to search]``, ``click[buy now]`` (ends the episode);
* description / features / reviews: ``click[< prev]``, ``click[back to search]``.

Observations are WebShop's "text" mode: page elements joined by ``[SEP]``.
Buying ends the episode with the reward of :mod:`agentmc.envs.webshop.reward`
(success = reward 1). An action the page does not accept changes nothing and
is answered with the reason and the page. The state is a small frozen value,
so ``snapshot``/``restore`` are O(1).

Tasks and splits: task ``i`` is goal ``i`` of the catalogue (WebShop's session
``i`` with ``goal_order="webshop"``). The default split is ours and
deterministic: products are ranked by a SHA-256 hash of their asin, the goals
of the first 20% go to ``test``, the next 10% to ``validation``, the rest to
``train`` (goals of one product never straddle splits). ``split_files`` loads
other splits, e.g. the AMC paper's ``webshop_idx_*.json`` index lists.

Example:
    >>> env = make_webshop("0", data_dir="path/to/webshop/data")  # doctest: +SKIP
    >>> observation, info = env.reset(seed=0)  # doctest: +SKIP
    >>> env.step("search[wireless headphones]").observation  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from agentmc.envs.core import StepResult
from agentmc.envs.webshop.data import Catalogue, GoalOrder, load_catalogue
from agentmc.envs.webshop.reward import purchase_reward
from agentmc.errors import ConfigError, DataError, UnknownNameError

SPLITS = ("train", "validation", "test")
TEST_FRACTION = 0.2
VALIDATION_FRACTION = 0.1
SEP = " [SEP] "
BACK = "back to search"
NEXT = "next >"
PREV = "< prev"
BUY = "buy now"
DETAILS = ("description", "features", "reviews")
ACTION = re.compile(r"^\s*(search|click)\s*\[(.*)\]\s*$", re.IGNORECASE | re.DOTALL)

Page = Literal["search", "results", "item", "detail", "done"]


@dataclass(frozen=True)
class WebShopConfig:
    """Episode settings."""

    max_steps: int = 15
    """Steps before the episode is truncated."""
    results_per_page: int = 10
    """Products listed per results page."""
    max_results: int = 50
    """Products a search returns at most."""

    def __post_init__(self) -> None:
        if self.max_steps < 1:
            raise ConfigError(f"max_steps must be at least 1, not {self.max_steps}")
        if self.results_per_page < 1:
            raise ConfigError(f"results_per_page must be at least 1, not {self.results_per_page}")
        if self.max_results < self.results_per_page:
            raise ConfigError("max_results must be at least results_per_page")


@dataclass(frozen=True)
class WebShopState:
    """Where the shopper is; the whole environment state (a snapshot)."""

    page: Page = "search"
    keywords: str = ""
    results: tuple[str, ...] = ()
    page_number: int = 1
    asin: str = ""
    chosen: tuple[tuple[str, str], ...] = ()
    detail: str = ""
    steps: int = 0
    reward: float = 0.0


class WebShopEnv:
    """One WebShop task over a :class:`~agentmc.envs.webshop.data.Catalogue`.

    Args:
        catalogue: Products, goals and search index (shared between tasks).
        task_id: Goal index, as a string.
        config: Episode settings.

    Raises:
        UnknownNameError: ``task_id`` is not a goal index of the catalogue.
    """

    env_id = "webshop"

    def __init__(
        self, catalogue: Catalogue, task_id: str, config: WebShopConfig | None = None
    ) -> None:
        index = int(task_id) if str(task_id).isdigit() else -1
        if not 0 <= index < len(catalogue.goals):
            raise UnknownNameError(
                f"unknown WebShop task {task_id!r}: this catalogue has tasks "
                f"0..{len(catalogue.goals) - 1}"
            )
        self.catalogue = catalogue
        self.task_id = str(index)
        self.goal = catalogue.goals[index]
        self.config = config or WebShopConfig()
        self.state = WebShopState()

    # -- rendering ----------------------------------------------------------------------

    def _header(self) -> list[str]:
        return ["Instruction:", self.goal.instruction]

    def render(self, state: WebShopState | None = None) -> str:
        """The observation text of ``state`` (default: the current one)."""
        state = state or self.state
        if state.page == "search":
            return SEP.join(["WebShop", *self._header(), "Search"])
        if state.page == "done":
            return SEP.join(
                [
                    "Thank you for shopping with us!",
                    "Your score (min 0.0, max 1.0)",
                    f"{state.reward:.4f}",
                ]
            )
        parts = [*self._header(), "Back to Search"]
        if state.page == "results":
            size = self.config.results_per_page
            shown = state.results[(state.page_number - 1) * size : state.page_number * size]
            parts.append(f"Page {state.page_number} (Total results: {len(state.results)})")
            if state.page_number > 1:
                parts.append("< Prev")
            if state.page_number * size < len(state.results):
                parts.append("Next >")
            for asin in shown:
                product = self.catalogue.by_asin[asin]
                parts += [asin.upper(), product.title, product.price_text]
            return SEP.join(parts)
        product = self.catalogue.by_asin[state.asin]
        parts.append("< Prev")
        if state.page == "detail":
            if state.detail == "description":
                parts.append(product.description or "(no description)")
            elif state.detail == "features":
                parts += list(product.bullets) or ["(no features)"]
            else:
                parts += list(product.reviews) or ["(no reviews)"]
            return SEP.join(parts)
        for name, values in product.options:
            parts += [name, *values]
        if state.chosen:
            parts.append("Selected: " + ", ".join(f"{k}: {v}" for k, v in state.chosen))
        parts += [product.title, f"Price: {product.price_text}", "Rating: N.A."]
        parts += ["Description", "Features", "Reviews", "Buy Now"]
        return SEP.join(parts)

    def clickables(self, state: WebShopState | None = None) -> list[str]:
        """The ``click[...]`` targets the page accepts (lowercase)."""
        state = state or self.state
        if state.page in ("search", "done"):
            return []
        if state.page == "results":
            size = self.config.results_per_page
            targets = [BACK]
            if state.page_number > 1:
                targets.append(PREV)
            if state.page_number * size < len(state.results):
                targets.append(NEXT)
            shown = state.results[(state.page_number - 1) * size : state.page_number * size]
            return targets + [asin.lower() for asin in shown]
        if state.page == "detail":
            return [BACK, PREV]
        product = self.catalogue.by_asin[state.asin]
        values = [value for _, options in product.options for value in options]
        return [BACK, PREV, *dict.fromkeys(values), *DETAILS, BUY]

    def valid_actions(self) -> list[str]:
        """Candidate actions; on the search page, a search for the instruction itself."""
        if self.state.page == "search":
            return [f"search[{self.goal.instruction}]"]
        return [f"click[{target}]" for target in self.clickables()]

    # -- dynamics -----------------------------------------------------------------------

    def _transition(self, state: WebShopState, verb: str, argument: str) -> WebShopState | str:
        """The next state, or the reason the action does nothing."""
        if state.page == "search":
            if verb != "search":
                return "on the search page, search[keywords] is the only action"
            if not argument.strip():
                return "search[...] needs keywords"
            results = tuple(self.catalogue.search(argument, self.config.max_results))
            return replace(
                state, page="results", keywords=argument.strip(), results=results, page_number=1
            )
        if verb == "search":
            return "there is no search bar on this page; click[back to search] first"
        target = argument.strip().lower()
        if target not in self.clickables(state):
            return f"{argument!r} is not clickable on this page"
        if target == BACK:
            return replace(WebShopState(), steps=state.steps)
        if state.page == "results":
            if target == NEXT:
                return replace(state, page_number=state.page_number + 1)
            if target == PREV:
                return replace(state, page_number=state.page_number - 1)
            asin = next(a for a in state.results if a.lower() == target)
            return replace(state, page="item", asin=asin, chosen=(), detail="")
        if state.page == "detail":
            return replace(state, page="item", detail="")
        if target == PREV:
            return replace(state, page="results", asin="", chosen=())
        if target in DETAILS:
            return replace(state, page="detail", detail=target)
        if target == BUY:
            return replace(state, page="done")
        product = self.catalogue.by_asin[state.asin]
        name = next(n for n, values in product.options if target in values)
        chosen = dict(state.chosen)
        chosen[name] = target
        return replace(state, chosen=tuple(sorted(chosen.items())))

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        self.state = WebShopState()
        info: dict[str, Any] = {"task_id": self.task_id, "max_steps": self.config.max_steps}
        if self.catalogue.synthetic:
            info["data"] = "synthetic sample catalogue (generated by agentmc, not WebShop's data)"
        return self.render(), info

    def step(self, action: str) -> StepResult:
        state = self.state
        if state.page == "done":
            return StepResult("The purchase is done; the episode is over.", 0.0, True, False, {})
        steps = state.steps + 1
        match = ACTION.match(action)
        if match is None:
            outcome: WebShopState | str = "actions are search[keywords] or click[button]"
        else:
            outcome = self._transition(state, match.group(1).lower(), match.group(2))
        truncated = steps >= self.config.max_steps
        if isinstance(outcome, str):
            self.state = replace(state, steps=steps)
            feedback = f"Invalid action {action!r}: {outcome}.\n{self.render()}"
            return StepResult(feedback, 0.0, False, truncated, {"invalid": True})
        if outcome.page == "done":
            parts = purchase_reward(
                self.catalogue.by_asin[outcome.asin], dict(outcome.chosen), self.goal
            )
            reward = parts["reward"]
            self.state = replace(outcome, steps=steps, reward=reward)
            info = {"success": math.isclose(reward, 1.0), "score": reward, **parts}
            return StepResult(self.render(), reward, True, False, info)
        self.state = replace(outcome, steps=steps)
        return StepResult(self.render(), 0.0, False, truncated, {})

    def snapshot(self) -> WebShopState:
        return self.state

    def restore(self, snapshot: WebShopState) -> None:
        if not isinstance(snapshot, WebShopState):
            raise ConfigError(f"not a WebShop snapshot: {type(snapshot).__name__}")
        self.state = snapshot

    def close(self) -> None:
        """Nothing to release (the catalogue is shared)."""


# -- tasks and splits ------------------------------------------------------------------


def default_splits(catalogue: Catalogue) -> dict[str, list[int]]:
    """Our deterministic split of goal indices (see the module docstring)."""
    import hashlib

    asins = sorted(
        dict.fromkeys(goal.asin for goal in catalogue.goals),
        key=lambda asin: hashlib.sha256(f"webshop\x00{asin}".encode()).digest(),
    )
    n_test = round(len(asins) * TEST_FRACTION)
    n_validation = round(len(asins) * VALIDATION_FRACTION)
    split_of = {asin: "test" for asin in asins[:n_test]}
    split_of.update({asin: "validation" for asin in asins[n_test : n_test + n_validation]})
    splits: dict[str, list[int]] = {name: [] for name in SPLITS}
    for index, goal in enumerate(catalogue.goals):
        splits[split_of.get(goal.asin, "train")].append(index)
    return splits


def read_index_file(path: str | Path, n_tasks: int) -> list[int]:
    """Task indices from a JSON list (the AMC paper's ``*_idx.json`` format).

    Raises:
        DataError: The file is missing, not a list of integers, or out of range.
    """
    path = Path(path)
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise DataError(f"cannot read split file {path}: {error.strerror or error}") from None
    except ValueError as error:
        raise DataError(f"{path}: not JSON ({error}); expected a list of task indices") from None
    if not isinstance(values, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in values
    ):
        raise DataError(f"{path}: expected a JSON list of integer task indices")
    bad = [v for v in values if not 0 <= v < n_tasks]
    if bad:
        raise DataError(
            f"{path}: indices {bad[:5]} are outside 0..{n_tasks - 1} (wrong data or goal order?)"
        )
    return values


def list_task_ids(
    split: str = "all",
    *,
    data_dir: str | Path | None = None,
    goal_order: GoalOrder = "webshop",
    split_files: Mapping[str, str | Path] | None = None,
    **_: object,
) -> list[str]:
    """Task ids of a split (``"all"``, ``"train"``, ``"validation"``, ``"test"``).

    Args:
        split: Split name.
        data_dir: WebShop data directory (default ``$AGENTMC_WEBSHOP_DATA``).
        goal_order: See :func:`~agentmc.envs.webshop.data.load_catalogue`.
        split_files: Split name -> JSON index file, replacing our default splits.
    """
    if split not in (*SPLITS, "all"):
        raise UnknownNameError(f"unknown split {split!r}; use one of {SPLITS} or 'all'")
    catalogue = load_catalogue(data_dir, goal_order)
    if split == "all":
        return [str(i) for i in range(len(catalogue.goals))]
    if split_files:
        if split not in split_files:
            return []
        return [str(i) for i in read_index_file(split_files[split], len(catalogue.goals))]
    return [str(i) for i in default_splits(catalogue)[split]]


def make_webshop(
    task_id: str,
    *,
    data_dir: str | Path | None = None,
    goal_order: GoalOrder = "webshop",
    max_steps: int = 15,
    reward: str = "sparse",
    split_files: Mapping[str, str | Path] | None = None,
) -> WebShopEnv:
    """The environment for one task (the catalogue is loaded once and cached).

    ``split_files`` selects tasks in :func:`list_task_ids` and is accepted here only so
    that one set of options serves both; it does not change the environment.

    Raises:
        ConfigError: ``reward`` is not ``"sparse"`` (WebShop scores the purchase only).
    """
    if reward != "sparse":
        raise ConfigError(f"WebShop has only its purchase reward; reward={reward!r} is not offered")
    catalogue = load_catalogue(data_dir, goal_order)
    return WebShopEnv(catalogue, task_id, WebShopConfig(max_steps=max_steps))
