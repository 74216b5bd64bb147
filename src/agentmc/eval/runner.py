"""Run many independent units of work concurrently into a run directory.

A *unit* is one piece of work that produces exactly one record (one rollout,
one AMC search on one task, ...). ``run_units`` skips units whose key is
already in the store (so an interrupted run resumes where it stopped; a unit
that was cut off half-way simply runs again, deterministically, because its
randomness comes from its key, not from execution order), runs the rest with
at most ``workers`` in flight, writes each record as soon as its unit
finishes, shows a progress bar with a running summary, and compacts the
record file into canonical order at the end.

Example:
    >>> import asyncio, tempfile
    >>> from agentmc.data.store import RunStore
    >>> store = RunStore.create_or_resume(tempfile.mkdtemp(), command="x", seed=0, config={})
    >>> async def square(unit):
    ...     return "square", {"value": unit.payload ** 2}
    >>> units = [Unit(f"sq/{i}", i) for i in range(3)]
    >>> asyncio.run(run_units(store, units, square, progress=False)).ran
    3
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from agentmc.data.store import RunStore


@dataclass(frozen=True)
class Unit:
    """One unit of work: a unique key (also its record key) and what to work on."""

    key: str
    payload: Any


@dataclass(frozen=True)
class RunCounts:
    """What ``run_units`` did."""

    ran: int
    skipped: int


Work = Callable[[Unit], Awaitable[tuple[str, dict[str, Any]]]]


async def run_units(
    store: RunStore,
    units: Sequence[Unit],
    work: Work,
    *,
    workers: int = 4,
    description: str = "running",
    progress: bool = True,
    summary: Callable[[list[dict[str, Any]]], str] | None = None,
) -> RunCounts:
    """Run the units that are not done yet; see the module docstring.

    Args:
        store: Where records go (and which keys are done).
        units: All units of the run, done or not.
        work: Coroutine mapping a unit to ``(record kind, record data)``.
        workers: Units in flight at once.
        description: Progress bar label.
        progress: Show a progress bar.
        summary: Maps the records written so far to a short running summary.
    """
    done = store.done_keys()
    todo = [unit for unit in units if unit.key not in done]
    finished: list[dict[str, Any]] = []
    limit = asyncio.Semaphore(max(1, workers))
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[summary]}"),
    )
    with Progress(*columns, disable=not progress, transient=False) as bar:
        task = bar.add_task(
            description, total=len(units), completed=len(units) - len(todo), summary=""
        )

        async def one(unit: Unit) -> None:
            async with limit:
                kind, data = await work(unit)
            store.append(kind, data, key=unit.key)
            finished.append(data)
            bar.update(task, advance=1, summary=summary(finished) if summary else "")

        await asyncio.gather(*(one(unit) for unit in todo))
    store.compact()
    return RunCounts(ran=len(todo), skipped=len(units) - len(todo))
