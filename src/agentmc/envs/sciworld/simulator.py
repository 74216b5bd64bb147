"""ScienceWorld simulators: one Java process each, replayed to a move history, pooled.

ScienceWorld runs in a Java virtual machine (the jar ships in the PyPI
``scienceworld`` package, reached through py4j) and has no native save. A game
state is therefore named by its *history*: the task, the variation and the
moves played since the start. :class:`Simulator` wraps one JVM and knows the
history it currently sits at; :meth:`Simulator.goto` brings it to another
history, replaying only the missing suffix when its own history is a prefix of
the target, and reloading the task otherwise.

A :class:`Move` stores what was *meant*, never a menu number: when the
simulator answers an action with an "Ambiguous request" menu and the agent
picks an entry, the move keeps the action and the resolved entry's text
(plus which copy, when the menu lists the same text more than once). Replay
finds that entry in the menu the fresh simulator prints, wherever it is.

:class:`SimulatorPool` lets many environment instances (K particles) share a
few JVMs: ``checkout(history)`` hands out the idle simulator closest to that
history (exact match first, then the longest prefix, then any), starting a new
one while fewer than ``size`` exist and waiting otherwise. Stepping K particles
with ``size >= K`` costs one simulator step each; after a resampling, a clone
costs a reload plus a replay of its history the next time it steps.

Example:
    >>> pool = SimulatorPool(size=2)                       # doctest: +SKIP
    >>> history = History("boil", 0, (Move("open door to kitchen"),))
    >>> with pool.checkout(history) as simulator:         # doctest: +SKIP
    ...     observation = simulator.send("go to kitchen")
    >>> pool.close()                                       # doctest: +SKIP
"""

from __future__ import annotations

import atexit
import contextlib
import re
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from agentmc.errors import AgentmcError, ConfigError, MissingExtraError, require

__all__ = [
    "AMBIGUOUS_PREFIX",
    "History",
    "Move",
    "ReplayError",
    "Simulator",
    "SimulatorPool",
    "check_java",
    "default_pool",
    "parse_menu",
]

AMBIGUOUS_PREFIX = "Ambiguous request:"
"""How the simulator starts a disambiguation menu."""

_MENU_LINE = re.compile(r"^(\d+):\t(.*)$")


class ReplayError(AgentmcError):
    """Replaying a history on a fresh simulator did not reproduce the recorded state."""


@dataclass(frozen=True, slots=True)
class Move:
    """One move as the agent meant it.

    Attributes:
        action: The text sent to the simulator.
        choice: ``None`` for a plain action; for an action the simulator found
            ambiguous, the text of the menu entry the agent chose, or ``""`` when
            the agent dismissed the menu (the simulator then counts a wasted move).
        copy: Which of several identical menu entries ``choice`` is (0 = first).
    """

    action: str
    choice: str | None = None
    copy: int = 0


@dataclass(frozen=True, slots=True)
class History:
    """A game state, named by how it was reached.

    Attributes:
        task: Simulator task name, e.g. ``"boil"``.
        variation: Variation index.
        moves: Moves since the start, in order.
        simplifications: The simulator's simplification string (``""`` = none).
    """

    task: str
    variation: int
    moves: tuple[Move, ...] = ()
    simplifications: str = ""

    @property
    def game(self) -> tuple[str, int, str]:
        return (self.task, self.variation, self.simplifications)

    def extends(self, other: History) -> bool:
        """Whether ``self`` is ``other`` plus zero or more moves."""
        n = len(other.moves)
        return self.game == other.game and len(self.moves) >= n and self.moves[:n] == other.moves


def parse_menu(observation: str) -> list[str] | None:
    r"""The entries of a disambiguation menu, in order, or ``None`` if it is not one.

    >>> parse_menu("Ambiguous request: ...:\n0:\tlook at a\n1:\tlook at b\n")
    ['look at a', 'look at b']
    """
    if not observation.startswith(AMBIGUOUS_PREFIX):
        return None
    entries = []
    for line in observation.splitlines()[1:]:
        match = _MENU_LINE.match(line)
        if match:
            entries.append(match.group(2))
    return entries


def check_java() -> str:
    """Path of the ``java`` executable.

    Raises:
        MissingExtraError: If Java is not on ``PATH`` (with the install hint).
    """
    java = shutil.which("java")
    if java is None:
        raise MissingExtraError(
            "ScienceWorld needs Java 8 or newer on PATH and none was found: install a JRE "
            "(e.g. `sudo apt-get install openjdk-17-jre-headless`, or `conda install openjdk`)"
        )
    return java


class Simulator:
    """One ScienceWorld JVM and the history it currently sits at.

    Raises:
        MissingExtraError: ``scienceworld`` is not installed (``agentmc[sciworld]``)
            or Java is missing.
    """

    def __init__(self) -> None:
        check_java()
        scienceworld = require("scienceworld", "sciworld")
        try:
            # A huge step limit: agentmc applies its own step cap.
            self._env: Any = scienceworld.ScienceWorldEnv("", envStepLimit=10**9)
        except Exception as error:  # py4j / JVM start-up failures
            raise MissingExtraError(
                f"could not start the ScienceWorld simulator (Java): {type(error).__name__}: "
                f"{error}"
            ) from None
        self._server = self._env.server
        self.history: History | None = None
        self.pending: str | None = None
        """Action whose disambiguation menu is open, if any."""
        self.menu: list[str] = []
        self.starts = 0
        """How many times this simulator (re)loaded a task."""
        self.replayed = 0
        """How many moves it replayed to reach requested histories."""

    # -- raw access -----------------------------------------------------------------------

    def send(self, text: str) -> str:
        """Send one line to the simulator and return its answer."""
        return str(self._server.step(text))

    @property
    def score(self) -> int:
        """Task score in -100..100 (the simulator reports a fraction)."""
        return int(round(100 * float(self._server.getScore())))

    @property
    def completed(self) -> bool:
        return bool(self._server.getCompleted())

    @property
    def n_moves(self) -> int:
        """Moves the simulator counted (free actions and unknown commands do not count)."""
        return int(self._server.getNumMoves())

    def task_description(self) -> str:
        return str(self._server.freeActionTaskDesc())

    def look(self) -> str:
        return str(self._server.freeActionLook())

    def valid_actions(self) -> list[str]:
        """Valid action/object combinations in the current state (slow: ~0.1 s)."""
        return [str(a) for a in self._server.getValidActionObjectCombinations()]

    def gold_actions(self, task: str, variation: int, simplifications: str = "") -> list[str]:
        """The simulator's gold action sequence for a game (reloads the game)."""
        self._env.load(task, variation, simplifications, generateGoldPath=True)
        self._at_start(History(task, variation, (), simplifications))
        return [str(a) for a in self._env.get_gold_action_sequence()]

    def _at_start(self, history: History) -> None:
        self.history, self.pending, self.menu = history, None, []
        self.starts += 1

    # -- histories ------------------------------------------------------------------------

    def play(self, move: Move) -> str:
        """Apply ``move`` (answering its menu by text) and return the final observation.

        Raises:
            ReplayError: The simulator's menu lacks the recorded choice.
        """
        observation = self.send(move.action)
        if move.choice is None:
            return observation
        menu = parse_menu(observation)
        if menu is None:
            raise ReplayError(
                f"replaying {move.action!r}: expected a disambiguation menu, got "
                f"{observation[:80]!r}"
            )
        if move.choice == "":
            return self.send("")
        positions = [i for i, entry in enumerate(menu) if entry == move.choice]
        if len(positions) <= move.copy:
            raise ReplayError(
                f"replaying {move.action!r}: the menu has no entry {move.choice!r} "
                f"(copy {move.copy}); it lists {menu[:5]}"
            )
        return self.send(str(positions[move.copy]))

    def load(self, history: History) -> None:
        """Load the game of ``history`` from its start (no moves)."""
        task, variation, simplifications = history.game
        try:
            self._env.load(task, variation, simplifications)
        except ValueError as error:
            raise ConfigError(f"sciworld: {error}") from None
        self._server.reset()
        self._at_start(History(task, variation, (), simplifications))

    def goto(self, history: History, pending: str | None = None) -> None:
        """Bring the simulator to ``history`` (and an open menu for ``pending``).

        Replays only the missing moves when the current history is a prefix of
        ``history`` and no menu is open; reloads the task otherwise.
        """
        if self.history == history and self.pending == pending:
            return
        if self.history is None or self.pending is not None or not history.extends(self.history):
            self.load(history)
        assert self.history is not None
        for move in history.moves[len(self.history.moves) :]:
            self.play(move)
            self.replayed += 1
        self.history, self.pending, self.menu = history, None, []
        if pending is not None:
            observation = self.send(pending)
            menu = parse_menu(observation)
            if menu is None:
                raise ReplayError(f"replaying {pending!r}: expected a disambiguation menu")
            self.pending, self.menu = pending, menu

    def close(self) -> None:
        """Stop the JVM."""
        with contextlib.suppress(Exception):
            self._env.close()


class SimulatorPool:
    """Up to ``size`` simulators shared by any number of environments.

    Thread-safe: ``checkout`` blocks while all ``size`` simulators are in use.

    Args:
        size: Most JVMs alive at once (each takes ~1.5 s to start and ~200 MB).
    """

    def __init__(self, size: int = 4) -> None:
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ConfigError(f"SimulatorPool(size={size!r}): use a positive integer")
        self.size = size
        self._idle: list[Simulator] = []
        self._count = 0
        self._clock = 0
        self._used: dict[int, int] = {}
        self._condition = threading.Condition()
        self._closed = False

    @property
    def simulators(self) -> int:
        """JVMs started and alive."""
        return self._count

    def start(self, n: int | None = None) -> None:
        """Start simulators now (up to ``n``, default ``size``) rather than on first use.

        Each start costs a JVM launch (~2 s); doing it up front keeps that out of
        the first SMC steps.
        """
        target = self.size if n is None else min(int(n), self.size)
        started: list[Simulator] = []
        while True:
            with self._condition:
                if self._closed or self._count >= target:
                    break
                self._count += 1
            try:
                started.append(Simulator())
            except BaseException:
                with self._condition:
                    self._count -= 1
                raise
        with self._condition:
            self._idle.extend(started)
            self._condition.notify_all()

    def _pick(self, history: History, pending: str | None) -> Simulator | None:
        def rank(sim: Simulator) -> tuple[int, int, int]:
            exact = sim.history == history and sim.pending == pending
            prefix = (
                sim.history is not None and sim.pending is None and history.extends(sim.history)
            )
            depth = len(sim.history.moves) if prefix and sim.history is not None else -1
            return (int(exact), depth, -self._used.get(id(sim), 0))

        if not self._idle:
            return None
        best = max(self._idle, key=rank)
        exact_or_prefix = rank(best)[0] == 1 or rank(best)[1] >= 0
        if not exact_or_prefix and self._count < self.size:
            return None  # better to start a fresh JVM than to evict a useful state
        return best

    @contextlib.contextmanager
    def checkout(self, history: History, pending: str | None = None) -> Iterator[Simulator]:
        """A simulator at ``history`` for the duration of the ``with`` block.

        Raises:
            ConfigError: If the pool is closed.
        """
        simulator = self._acquire(history, pending)
        try:
            simulator.goto(history, pending)
            yield simulator
        except BaseException:
            # A failed replay leaves the JVM in an unknown state: forget its history.
            simulator.history, simulator.pending = None, None
            raise
        finally:
            self._release(simulator)

    def _acquire(self, history: History, pending: str | None) -> Simulator:
        with self._condition:
            while True:
                if self._closed:
                    raise ConfigError("the ScienceWorld simulator pool is closed")
                simulator = self._pick(history, pending)
                if simulator is not None:
                    self._idle.remove(simulator)
                    return simulator
                if self._count < self.size:
                    self._count += 1
                    break
                self._condition.wait()
        try:
            return Simulator()
        except BaseException:
            with self._condition:
                self._count -= 1
                self._condition.notify()
            raise

    def _release(self, simulator: Simulator) -> None:
        with self._condition:
            self._clock += 1
            self._used[id(simulator)] = self._clock
            if self._closed:
                simulator.close()
                self._count -= 1
            else:
                self._idle.append(simulator)
            self._condition.notify()

    def close(self) -> None:
        """Stop every idle JVM; ones in use stop when returned."""
        with self._condition:
            self._closed = True
            for simulator in self._idle:
                simulator.close()
                self._count -= 1
            self._idle.clear()
            self._condition.notify_all()


_DEFAULT_POOL: list[SimulatorPool] = []
_DEFAULT_LOCK = threading.Lock()


def default_pool() -> SimulatorPool:
    """The process-wide pool (size 4) that environments use unless given one."""
    with _DEFAULT_LOCK:
        if not _DEFAULT_POOL or _DEFAULT_POOL[0]._closed:
            pool = SimulatorPool(4)
            _DEFAULT_POOL[:] = [pool]
            atexit.register(pool.close)
        return _DEFAULT_POOL[0]
