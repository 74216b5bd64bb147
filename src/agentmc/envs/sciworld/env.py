"""The ScienceWorld environment: elementary-science tasks in a text world.

The agent reads a task (``Your task is to boil water...``) and a room
description, then types actions such as ``open door to kitchen``, ``pick up
thermometer`` or ``focus on substance in metal pot``. The simulator scores
progress from 0 to 100 (a wrong ``focus on`` ends the episode at -100).

When an action names several objects (``open door`` in a hallway with six
doors) the simulator answers with a numbered menu; the agent's next action
picks an entry by number (or by its text). Any other answer dismisses the menu
and the simulator counts a wasted move, exactly as the raw simulator does.

Rewards: ``reward`` is the change in score divided by 100, so an episode's
return is its final score / 100 (1.0 on success). ``terminated`` when the
simulator says the task is completed (success or failure);
``info["success"]`` is true for a completed task with score 100.
``max_steps`` (default 30) caps an episode, reported as ``truncated``.

Snapshots: ScienceWorld has no native save, so a snapshot is the move
history (:class:`~agentmc.envs.sciworld.simulator.History`: task, variation
and the moves *as meant*: a menu choice is stored as the chosen entry's text,
never its number). ``restore`` is O(1); the next ``step`` brings a pooled
simulator to that history, reloading the task and replaying the moves if no
simulator is already there, and checks the replayed score against the
recorded one (:class:`~agentmc.envs.sciworld.simulator.ReplayError` on a
mismatch). Environments share a :class:`SimulatorPool` (default: 4 JVMs per
process) so K particles do not each start a JVM.

``valid_actions()`` lists the simulator's valid action/object combinations
only for an environment made with ``candidates=True`` (it takes 0.1-0.5 s a
call, and free-text agents do not need it); otherwise it returns ``None``.

Needs ``pip install 'agentmc[sciworld]'`` and Java 8+ on ``PATH``.

Example:
    >>> env = SciWorldEnv("0")                       # doctest: +SKIP
    >>> text, info = env.reset()                      # doctest: +SKIP
    >>> info["task"], info["variation"]               # doctest: +SKIP
    ('boil', 0)
    >>> env.step("open door to kitchen").observation  # doctest: +SKIP
    'The door is now open.'
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, replace
from typing import Any

from agentmc.envs.core import StepResult
from agentmc.envs.sciworld.simulator import (
    History,
    Move,
    ReplayError,
    Simulator,
    SimulatorPool,
    default_pool,
    parse_menu,
)
from agentmc.envs.sciworld.tasks import SciWorldTasks, default_tasks
from agentmc.errors import ConfigError

__all__ = ["SciWorldConfig", "SciWorldEnv", "SciWorldState", "make_sciworld"]

MAX_ACTION_CHARS = 300
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class SciWorldConfig:
    """Options of a ScienceWorld environment."""

    max_steps: int = 30
    """Step cap; the step that reaches it without the task completing is reported as truncated."""
    simplifications: str = ""
    """Simulator simplifications, comma-separated (e.g. ``easy``, ``teleportAction``)."""
    candidates: bool = False
    """Offer the simulator's valid actions from ``valid_actions()`` (slow: ~0.1-0.5 s a call)."""

    def __post_init__(self) -> None:
        if not isinstance(self.max_steps, int) or self.max_steps < 1:
            raise ConfigError(f"max_steps={self.max_steps!r}: use a positive integer (e.g. 30)")
        if not isinstance(self.candidates, bool):
            raise ConfigError(f"candidates={self.candidates!r}: use True or False")
        if not isinstance(self.simplifications, str) or " " in self.simplifications:
            raise ConfigError(
                f"simplifications={self.simplifications!r}: use a comma-separated list "
                "without spaces, e.g. 'easy' or 'teleportAction,openDoors'"
            )


@dataclass(frozen=True, slots=True)
class SciWorldState:
    """A snapshot: the move history plus the episode's bookkeeping.

    Attributes:
        history: How the game state was reached (replayable on a fresh simulator).
        pending: Action whose disambiguation menu is open, or ``None``.
        menu: That menu's entries.
        steps: Agent steps since reset (menus and invalid actions count).
        score: Simulator score after the last step (-100..100).
        terminated: The simulator completed the task (success or failure).
        truncated: The step cap was reached first.
    """

    history: History
    pending: str | None = None
    menu: tuple[str, ...] = ()
    steps: int = 0
    score: int = 0
    terminated: bool = False
    truncated: bool = False


class SciWorldEnv:
    """One ScienceWorld task (a task type and variation).

    Args:
        task_id: Row of ``tasks``.
        tasks: Task table (default: :meth:`SciWorldTasks.agentgym`).
        max_steps: See :class:`SciWorldConfig`.
        simplifications: See :class:`SciWorldConfig`.
        candidates: See :class:`SciWorldConfig`.
        pool: Simulators to share (default: the process-wide pool).

    Raises:
        UnknownNameError: If ``task_id`` is not in ``tasks``.
        ConfigError: If an option is invalid.
    """

    env_id = "sciworld"

    def __init__(
        self,
        task_id: str | int = "0",
        *,
        tasks: SciWorldTasks | None = None,
        max_steps: int = 30,
        simplifications: str = "",
        candidates: bool = False,
        pool: SimulatorPool | None = None,
    ) -> None:
        self.config = SciWorldConfig(max_steps, simplifications, candidates)
        if tasks is not None and not isinstance(tasks, SciWorldTasks):
            raise ConfigError(f"tasks={type(tasks).__name__}: pass a SciWorldTasks or None")
        if pool is not None and not isinstance(pool, SimulatorPool):
            raise ConfigError(f"pool={type(pool).__name__}: pass a SimulatorPool or None")
        self.tasks = tasks or default_tasks()
        self.task_id = str(self.tasks.index(task_id))
        self.task, self.variation = self.tasks.game(self.task_id)
        self.pool = pool or default_pool()
        self._start = SciWorldState(History(self.task, self.variation, (), simplifications))
        self._state = self._start
        self._intro: str | None = None

    # -- protocol -------------------------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Start over. The simulator is deterministic per variation: ``seed`` is unused."""
        if options:
            raise ConfigError(f"sciworld reset: unknown options {sorted(options)}; pass none")
        if self._intro is None:
            with self.pool.checkout(self._start.history) as simulator:
                self._intro = f"{simulator.task_description()}\n\n{simulator.look()}"
        self._state = self._start
        info = {
            "task_id": self.task_id,
            "task": self.task,
            "variation": self.variation,
            "max_steps": self.config.max_steps,
        }
        return self._intro, info

    def step(self, action: str) -> StepResult:
        state = self._state
        if state.terminated or state.truncated:
            return StepResult(
                "The episode is over; call reset() to play again.",
                0.0,
                state.terminated,
                state.truncated,
                {"success": self._success(state), "steps": state.steps, "score": state.score},
            )
        text = " ".join(_CONTROL.sub(" ", action).split()) if isinstance(action, str) else None
        if text is None or len(text) > MAX_ACTION_CHARS or (not text and state.pending is None):
            problem = (
                "Empty action."
                if text == ""
                else f"Actions are at most {MAX_ACTION_CHARS} characters."
                if text is not None
                else f"Actions must be text, not {type(action).__name__}."
            )
            feedback = f"{problem} Type an action such as 'look around', or 'help' to list them."
            return self._finish(state, feedback, state.history, None, (), state.score, False)
        with self.pool.checkout(state.history, state.pending) as simulator:
            # The simulator recomputes its score on each step, so a just-loaded game
            # (no moves) may still report the previous game's score.
            if state.history.moves and simulator.score != state.score:
                raise ReplayError(
                    f"sciworld task {self.task_id}: replaying {len(state.history.moves)} moves "
                    f"gave score {simulator.score}, the recorded state has {state.score}"
                )
            observation, history, pending, menu = self._send(simulator, state, text)
            simulator.history, simulator.pending, simulator.menu = history, pending, list(menu)
            score, completed = simulator.score, simulator.completed
        return self._finish(state, observation, history, pending, menu, score, completed)

    def snapshot(self) -> SciWorldState:
        """The current state as an immutable value (the move history, never copied)."""
        return self._state

    def restore(self, snapshot: SciWorldState) -> None:
        """Return to ``snapshot`` (from this or any instance of the same task); O(1).

        Raises:
            ConfigError: If ``snapshot`` is not a ScienceWorld state of this task.
        """
        if not isinstance(snapshot, SciWorldState) or snapshot.history.game != (
            self._start.history.game
        ):
            raise ConfigError(
                f"cannot restore {type(snapshot).__name__} into sciworld task {self.task_id} "
                f"({self.task}, variation {self.variation}): snapshots only move between "
                "instances of one task"
            )
        self._state = snapshot

    def close(self) -> None:
        """Nothing to release: the simulators belong to the pool (``pool.close()``)."""

    def __deepcopy__(self, memo: dict[int, Any]) -> SciWorldEnv:
        # The state is an immutable value and the pool is shared on purpose.
        return copy.copy(self)

    # -- extras ---------------------------------------------------------------------------

    def valid_actions(self) -> list[str] | None:
        """The simulator's valid action/object combinations (menu numbers while one is open).

        ``None`` (not offered) unless the environment was made with
        ``candidates=True``: the simulator takes 0.1-0.5 s to list them, and
        free-text agents do not need them.
        """
        state = self._state
        if not self.config.candidates:
            return None
        if state.pending is not None:
            return [str(i) for i in range(len(state.menu))]
        with self.pool.checkout(state.history) as simulator:
            return sorted(simulator.valid_actions())

    def gold_actions(self) -> list[str]:
        """The simulator's gold action sequence for this task (from the start)."""
        with self.pool.checkout(self._start.history) as simulator:
            actions = simulator.gold_actions(*self._start.history.game)
            simulator.load(self._start.history)  # gold-path generation may leave state behind
        return actions

    # -- internals ------------------------------------------------------------------------

    def _success(self, state: SciWorldState) -> bool:
        return state.terminated and state.score >= 100

    def _send(
        self, simulator: Simulator, state: SciWorldState, text: str
    ) -> tuple[str, History, str | None, tuple[str, ...]]:
        history = state.history
        if state.pending is None:
            observation = simulator.send(text)
            menu = parse_menu(observation)
            if menu is not None:
                return observation, history, text, tuple(menu)
            return observation, replace(history, moves=(*history.moves, Move(text))), None, ()
        entries = [entry.lower() for entry in state.menu]
        if text.isdigit() and int(text) < len(state.menu):
            index: int | None = int(text)
        else:
            index = entries.index(text.lower()) if text.lower() in entries else None
        if index is None:
            move = Move(state.pending, "")
            observation = simulator.send("")
            observation += (
                " (That dismissed the menu; answer a menu with one of its numbers, "
                f"0..{len(state.menu) - 1}.)"
            )
        else:
            chosen = state.menu[index]
            move = Move(state.pending, chosen, state.menu[:index].count(chosen))
            observation = simulator.send(str(index))
        return observation, replace(history, moves=(*history.moves, move)), None, ()

    def _finish(
        self,
        state: SciWorldState,
        observation: str,
        history: History,
        pending: str | None,
        menu: tuple[str, ...],
        score: int,
        completed: bool,
    ) -> StepResult:
        steps = state.steps + 1
        terminated = completed or score < 0
        truncated = not terminated and steps >= self.config.max_steps
        self._state = SciWorldState(history, pending, menu, steps, score, terminated, truncated)
        info: dict[str, Any] = {"steps": steps, "score": score}
        if terminated or truncated:
            info["success"] = self._success(self._state)
        return StepResult(observation, (score - state.score) / 100.0, terminated, truncated, info)


def make_sciworld(
    task_id: str | int = "0",
    *,
    tasks: SciWorldTasks | None = None,
    max_steps: int = 30,
    simplifications: str = "",
    candidates: bool = False,
    pool: SimulatorPool | None = None,
) -> SciWorldEnv:
    """Registry factory: ``make("sciworld", task_id=..., max_steps=..., pool=...)``."""
    return SciWorldEnv(
        task_id,
        tasks=tasks,
        max_steps=max_steps,
        simplifications=simplifications,
        candidates=candidates,
        pool=pool,
    )
