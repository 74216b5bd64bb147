"""Units whose policy or environment fails for good are recorded apart and retried on resume."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from agentmc.data.store import RunStore
from agentmc.envs import make, task_ids
from agentmc.errors import FatalPolicyError, IncompleteRunError, PolicyError
from agentmc.eval.runner import FAILED_KIND, RunCounts, Unit, check_complete, run_units
from agentmc.methods import MethodSpec, arun_method
from agentmc.policies.scripted import ScriptedPolicy

TASKS = task_ids("textcraft", "validation")[:3]


class FailingPolicy:
    """Every call fails after its (pretend) retries: an outage."""

    name = "down"
    synthetic = True

    def __init__(self, error: type[PolicyError] = PolicyError) -> None:
        self.error = error
        self.calls = 0

    async def complete(self, messages, **kwargs):
        self.calls += 1
        raise self.error("HTTP 500 after 3 attempts", attempts=3)


def units():
    return [Unit(f"bon/{t}", t) for t in TASKS]


def work_with(policy, make_env=None):
    async def work(unit):
        result = await arun_method(
            MethodSpec("bon", 2),
            make_env or (lambda: make("textcraft", task_id=unit.payload, max_steps=3)),
            policy,
            np.random.default_rng(0),
            task_id=unit.payload,
        )
        return "episode", {"episode": result.to_dict()}

    return work


def test_all_particles_failing_is_failed_infrastructure_and_retried(tmp_path):
    store = RunStore.create_or_resume(tmp_path, command="t", seed=0, config={})
    counts = asyncio.run(run_units(store, units(), work_with(FailingPolicy()), progress=False))
    assert counts == RunCounts(ran=3, skipped=0, failed=3)
    records = list(store.records())
    assert {r["kind"] for r in records} == {FAILED_KIND}
    assert all(r["data"]["episode"]["diagnostics"]["attempts"] == 6 for r in records)
    with pytest.raises(IncompleteRunError, match="3 of 3 tasks") as caught:
        check_complete(counts, 3, "tasks")
    assert caught.value.exit_code == 3

    fine = ScriptedPolicy(lambda messages: {"inventory": 1.0})
    counts = asyncio.run(run_units(store, units(), work_with(fine), progress=False))
    assert counts == RunCounts(ran=3, skipped=0, failed=0)
    assert len(list(store.records("episode"))) == 3


def test_a_fatal_policy_error_stops_the_run(tmp_path):
    store = RunStore.create_or_resume(tmp_path, command="t", seed=0, config={})
    policy = FailingPolicy(FatalPolicyError)
    with pytest.raises(FatalPolicyError):
        asyncio.run(run_units(store, units(), work_with(policy), workers=1, progress=False))
    assert policy.calls == 2 and list(store.records()) == []  # the first episode's 2 particles


def test_environment_server_faults_cost_at_most_the_episode(tmp_path):
    pytest.importorskip("httpx2")
    from agentmc.envs.agentgym.client import AgentGymConfig, AgentGymEnv
    from agentmc.testing.env_server import AgentGymTestServer, EnvFault

    policy = ScriptedPolicy(lambda messages: {"inventory": 1.0})
    with AgentGymTestServer(lambda t: make("textcraft", task_id=t, max_steps=3), TASKS) as server:

        def work(unit):
            index = str(TASKS.index(unit.payload))
            config = AgentGymConfig(base_url=server.url)
            return work_with(policy, lambda: AgentGymEnv(config, task_id=index))(unit)

        store = RunStore.create_or_resume(tmp_path / "a", command="t", seed=0, config={})
        server.inject("/step", EnvFault(status=500))  # one fault: recovered by replay
        counts = asyncio.run(run_units(store, units(), work, progress=False))
        assert counts.failed == 0 and len(list(store.records("episode"))) == 3

        store = RunStore.create_or_resume(tmp_path / "b", command="t", seed=0, config={})
        server.down = {"/step"}  # an outage: every episode fails, the run does not
        counts = asyncio.run(run_units(store, units(), work, progress=False, env_attempts=2))
        assert counts == RunCounts(ran=3, skipped=0, failed=3)
        failed = list(store.records(FAILED_KIND))
        assert all(
            r["data"]["attempts"] == 2 and "environment" in r["data"]["error"] for r in failed
        )
        server.down = set()
        counts = asyncio.run(run_units(store, units(), work, progress=False))
        assert counts == RunCounts(ran=3, skipped=0, failed=0)
