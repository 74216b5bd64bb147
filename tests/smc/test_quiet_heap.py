"""The sampler keeps particle states out of the garbage collector's scans while it runs."""

from __future__ import annotations

import asyncio
import gc
import weakref

import numpy as np

from agentmc.smc import SMC, SMCConfig
from agentmc.smc.exact import TreeModel, random_tree
from agentmc.smc.sampler import QUIET_HEAP_PARTICLES

#: Enough particles for the sampler to quiet the collector.
K = QUIET_HEAP_PARTICLES


def sampler(seed: int = 0, k: int = K) -> SMC:
    model = TreeModel(random_tree(depth=3, branching=2, rng=np.random.default_rng(seed)))
    return SMC(model, SMCConfig(n_particles=k, max_steps=3), np.random.default_rng(seed))


def test_collection_is_back_on_and_nothing_frozen_after_runs():
    assert gc.isenabled() and gc.get_freeze_count() == 0
    seen = []

    class Watching(TreeModel):
        async def propose(self, t, states, rng):
            seen.append((gc.isenabled(), gc.get_freeze_count() > 0))
            return await super().propose(t, states, rng)

    model = Watching(random_tree(depth=3, branching=2, rng=np.random.default_rng(0)))
    smc = SMC(model, SMCConfig(n_particles=K, max_steps=3), np.random.default_rng(0))

    async def overlapping():  # two runs at once: the heap stays quiet until both end
        return await asyncio.gather(smc.run(), sampler(1).run())

    first, second = asyncio.run(overlapping())
    assert seen and all(state == (False, True) for state in seen)
    assert gc.isenabled() and gc.get_freeze_count() == 0
    assert first.n_steps == 3 and second.n_steps == 3


def test_cyclic_garbage_made_during_runs_is_reclaimed_after():
    class Node:
        pass

    refs = []

    class Littering(TreeModel):
        async def propose(self, t, states, rng):
            a, b = Node(), Node()
            a.other, b.other = b, a  # a cycle: only the collector can free it
            refs.append(weakref.ref(a))
            return await super().propose(t, states, rng)

    model = Littering(random_tree(depth=3, branching=2, rng=np.random.default_rng(0)))
    asyncio.run(SMC(model, SMCConfig(n_particles=K, max_steps=3), np.random.default_rng(0)).run())
    assert len(refs) == 3
    gc.collect()
    assert all(ref() is None for ref in refs)


def test_small_runs_leave_the_collector_alone():
    seen = []

    class Watching(TreeModel):
        async def propose(self, t, states, rng):
            seen.append((gc.isenabled(), gc.get_freeze_count()))
            return await super().propose(t, states, rng)

    model = Watching(random_tree(depth=3, branching=2, rng=np.random.default_rng(0)))
    asyncio.run(SMC(model, SMCConfig(n_particles=8, max_steps=3), np.random.default_rng(0)).run())
    assert seen == [(True, 0)] * 3


def test_a_process_that_froze_objects_itself_is_left_alone():
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        asyncio.run(sampler().run())
        assert gc.get_freeze_count() >= frozen - 1000 and gc.isenabled()  # still frozen
    finally:
        gc.unfreeze()
