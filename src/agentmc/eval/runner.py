"""Run many independent units of work concurrently into a run directory.

A *unit* is one piece of work that produces exactly one record (one rollout,
one AMC search on one task, ...). ``run_units`` skips units whose key is
already in the store (so an interrupted run resumes where it stopped; a unit
that was cut off half-way simply runs again, deterministically, because its
randomness comes from its key, not from execution order), runs the rest with
at most ``workers`` in flight, writes each record as soon as its unit
finishes, shows a progress bar with a running summary, and compacts the
record file into canonical order at the end.

Failures outside the agent's control never become results. A unit whose
environment fails is retried (``env_attempts``); one that still fails, or
whose episode lost every particle to policy errors after the policy's own
retries, is recorded as :data:`FAILED_KIND`: summaries do not read it, a
resumed run retries it, and :attr:`RunCounts.failed` counts it so the command
can exit non-zero (:func:`check_complete`). A
:class:`~agentmc.errors.FatalPolicyError` (bad key, unknown model) stops the
run at once.

Example:
    >>> import asyncio, tempfile
    >>> from agentmc.data.store import RunStore
from agentmc.errors import FatalPolicyError, IncompleteRunError, InfrastructureError, PolicyError

log = logging.getLogger("agentmc")
    >>> store = RunStore.create_or_resume(tempfile.mkdtemp(), command="x", seed=0, config={})
    >>> async def square(unit):
    ...     return "square", {"value": unit.payload ** 2}
    >>> units = [Unit(f"sq/{i}", i) for i in range(3)]
    >>> asyncio.run(run_units(store, units, square, progress=False)).ran
    3
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from agentmc.data.store import RunStore
from agentmc.errors import FatalPolicyError, IncompleteRunError, InfrastructureError, PolicyError

log = logging.getLogger("agentmc")


@dataclass(frozen=True)
class Unit:
    """One unit of work: a unique key (also its record key) and what to work on."""

    key: str
    payload: Any


@dataclass(frozen=True)
class RunCounts:
    """What ``run_units`` did.

    Attributes:
        ran: Units run this time (finished or failed).
        skipped: Units already done before (resumed).
        failed: Units that have no result after this run because they failed for
            infrastructure reasons (recorded as :data:`FAILED_KIND`; a re-run retries them).
    """

    ran: int
    skipped: int
    failed: int = 0


#: Record kind of a unit that failed for infrastructure reasons. It is no result
#: (summaries never read it) and does not mark the unit done, so a resumed run
#: retries the unit; the record keeps what went wrong.
FAILED_KIND = "failed-infrastructure"

#: Attempts at a unit whose environment fails (:class:`InfrastructureError`).
ENV_ATTEMPTS = 3

Work = Callable[[Unit], Awaitable[tuple[str, dict[str, Any]]]]


def completed_keys(store: RunStore) -> set[str]:
    """Keys of the units that have a result (failed-infrastructure records do not count)."""
    return {
        r["key"] for r in store.records() if r.get("key") is not None and r["kind"] != FAILED_KIND
    }


def check_complete(counts: RunCounts, total: int, what: str = "units") -> None:
    """Raise :class:`IncompleteRunError` if some units failed for infrastructure reasons."""
    if counts.failed:
        raise IncompleteRunError(
            f"{counts.failed} of {total} {what} failed for infrastructure reasons (policy or "
            f"environment errors after retries; records of kind {FAILED_KIND!r} say why); "
            "they are left out of the results: re-run the same command to retry them"
        )


async def _attempt(unit: Unit, work: Work, env_attempts: int) -> tuple[str, dict[str, Any]]:
    """``work(unit)``, retried on environment faults; a failure becomes a FAILED_KIND record."""
    for attempt in range(1, env_attempts + 1):
        try:
            kind, data = await work(unit)
        except FatalPolicyError:
            raise  # bad key or unknown model: stop the whole run
        except InfrastructureError as error:
            log.warning(
                "%s: environment fault (attempt %d of %d): %s",
                unit.key,
                attempt,
                env_attempts,
                error,
            )
            reason = f"environment: {error}"
            continue
        except PolicyError as error:  # the policy already retried this call
            return FAILED_KIND, {"error": f"policy: {error}", "attempts": attempt}
        if isinstance(data, dict) and _infrastructure_failed(data):
            return FAILED_KIND, {"result_kind": kind, **data}
        return kind, data
    return FAILED_KIND, {"error": reason, "attempts": env_attempts}


def _infrastructure_failed(data: dict[str, Any]) -> bool:
    """A result row or trajectory whose every particle failed outside the agent's control."""
    if data.get("infrastructure_failed"):
        return True
    episode = data.get("episode")
    if isinstance(episode, dict) and (episode.get("diagnostics") or {}).get(
        "infrastructure_failed"
    ):
        return True
    # a plain rollout: a trajectory cut short by a policy error
    return "turns" in data and bool(data.get("error"))


async def run_units(
    store: RunStore,
    units: Sequence[Unit],
    work: Work,
    *,
    workers: int = 4,
    description: str = "running",
    progress: bool = True,
    summary: Callable[[list[dict[str, Any]]], str] | None = None,
    env_attempts: int = ENV_ATTEMPTS,
) -> RunCounts:
    """Run the units that are not done yet; see the module docstring.

    A unit whose environment fails (:class:`~agentmc.errors.InfrastructureError`)
    is tried ``env_attempts`` times; a unit that still fails, or whose episode
    lost every particle to policy errors, is recorded as :data:`FAILED_KIND` and
    counted in :attr:`RunCounts.failed` (it stays to do). A
    :class:`~agentmc.errors.FatalPolicyError` stops the run at once; the records
    already written stay.

    Args:
        store: Where records go (and which keys are done).
        units: All units of the run, done or not.
        work: Coroutine mapping a unit to ``(record kind, record data)``.
        workers: Units in flight at once.
        description: Progress bar label.
        progress: Show a progress bar.
        summary: Maps the records written so far to a short running summary.
        env_attempts: Attempts at a unit whose environment fails.
    """
    done = completed_keys(store)
    todo = [unit for unit in units if unit.key not in done]
    finished: list[dict[str, Any]] = []
    failed: list[str] = []
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

        stop: list[BaseException] = []

        async def one(unit: Unit) -> None:
            async with limit:
                if stop:
                    return  # a fatal error elsewhere: start nothing new
                try:
                    kind, data = await _attempt(unit, work, max(1, env_attempts))
                except BaseException as error:
                    stop.append(error)
                    raise
            store.append(kind, data, key=unit.key)
            if kind == FAILED_KIND:
                failed.append(unit.key)
            else:
                finished.append(data)
            text = summary(finished) if summary else ""
            if failed:
                text += f"  failed-infrastructure {len(failed)}"
            bar.update(task, advance=1, summary=text)

        running = [asyncio.ensure_future(one(unit)) for unit in todo]
        try:
            await asyncio.gather(*running)
        except BaseException:
            for future in running:  # stop the units in flight too; their records were not due
                future.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            raise
    if todo:
        store.compact()
    return RunCounts(ran=len(todo), skipped=len(units) - len(todo), failed=len(failed))
