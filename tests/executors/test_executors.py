from __future__ import annotations

import asyncio
import sys

import pytest

from agentmc.cli.common import ExecutorOptions
from agentmc.envs import task_ids
from agentmc.errors import ConfigError, MissingExtraError, UnknownNameError
from agentmc.executors import EpisodeJob, LocalExecutor, make_executor, run_rollouts
from agentmc.policies.expert import NoisyExpertPolicy

# Six test tasks spread over crafting depths; a tight step cap so some fail.
_IDS = task_ids("textcraft", "test")
JOBS = [
    EpisodeJob("textcraft", task_id, seed=100 + i, env_kwargs={"max_steps": 8})
    for i, task_id in enumerate(_IDS[:: len(_IDS) // 6][:6])
]


def _run(executor, jobs, **kwargs):
    policy = NoisyExpertPolicy(mistake_prob=0.3, waste_prob=0.2)
    return asyncio.run(executor.rollouts(jobs, policy, **kwargs))


def test_local_executor_plays_jobs_in_order_and_reports_each():
    seen = []
    with make_executor("local") as executor:
        trajectories = _run(
            executor, JOBS, max_concurrency=2, on_result=lambda i, t: seen.append(i)
        )
    assert [t.task_id for t in trajectories] == [job.task_id for job in JOBS]
    assert sorted(seen) == list(range(len(JOBS)))
    assert all(t.synthetic and t.turns and t.seed is not None for t in trajectories)
    # Noisy enough that the jobs do not all look alike: the seeds matter.
    assert len({tuple(t.actions) for t in trajectories}) == len(JOBS)


def test_same_jobs_same_trajectories_regardless_of_concurrency():
    executor = LocalExecutor()
    assert _run(executor, JOBS, max_concurrency=1) == _run(executor, JOBS, max_concurrency=32)


def test_a_failing_environment_is_recorded_and_the_others_go_on():
    jobs = [JOBS[0], EpisodeJob("textcraft", "99999", seed=1), JOBS[1]]
    good, bad, other = _run(LocalExecutor(), jobs)
    assert good.turns and other.turns
    assert not bad.turns and "UnknownNameError" in bad.error and "99999" in bad.error


def test_names_and_options():
    with pytest.raises(UnknownNameError, match="local, ray"):
        make_executor("dask")
    with pytest.raises(ConfigError, match="--ray-workers"):
        ExecutorOptions(ray_workers=0)
    with pytest.raises(ConfigError, match="--executor ray"):
        ExecutorOptions(ray_address="ray://x:10001")
    with pytest.raises(ConfigError, match="max_concurrency"):
        asyncio.run(run_rollouts(LocalExecutor(), JOBS, NoisyExpertPolicy(), max_concurrency=0))
    assert isinstance(ExecutorOptions().make(), LocalExecutor)


def test_ray_missing_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(MissingExtraError, match=r"agentmc\[ray\]"):
        make_executor("ray", n_workers=2)


def test_an_unreachable_ray_cluster_is_a_quick_config_error():
    import socket

    from agentmc.executors.ray_executor import _check_reachable

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for address in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}"):
        with pytest.raises(ConfigError, match=f"cannot reach the Ray cluster at '{address}'"):
            _check_reachable(address, timeout_s=1.0)
    _check_reachable("auto")  # forms Ray resolves itself are left to it


@pytest.fixture(scope="module")
def ray_executor():
    pytest.importorskip("ray")
    executor = make_executor("ray", n_workers=2)
    yield executor
    executor.close()


def test_ray_results_equal_local_for_the_same_seeds(ray_executor):
    local = _run(LocalExecutor(), JOBS)
    remote = _run(ray_executor, JOBS, max_concurrency=4)
    assert remote == local
    assert sum(t.success for t in local) not in (0, len(JOBS))  # a mix, not a trivial case


def test_ray_remote_env_protocol_and_errors(ray_executor):
    from agentmc.envs import check_env

    env = ray_executor.make_env("textcraft", task_id="150", worker=1)
    assert (env.env_id, env.task_id) == ("textcraft", "150")
    check_env(env, make_fresh=lambda: ray_executor.make_env("textcraft", task_id="150", worker=0))
    with pytest.raises(UnknownNameError, match="unknown textcraft task id"):
        ray_executor.make_env("textcraft", task_id="99999")
    with pytest.raises(ConfigError, match="max_steps"):
        ray_executor.make_env("textcraft", task_id="0", max_steps=0)
    env.close()
    with pytest.raises(ConfigError, match="closed"):
        env.step("inventory")
    failed = _run(ray_executor, [EpisodeJob("textcraft", "99999", seed=1), JOBS[0]])
    assert "UnknownNameError" in failed[0].error and failed[1].turns


def test_an_unreachable_server_is_recorded_and_the_others_go_on():
    pytest.importorskip("httpx2")
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    jobs = [EpisodeJob("agentgym", "0", seed=1, env_kwargs={"base_url": url, "retries": 1})]
    down, up = _run(LocalExecutor(), [*jobs, JOBS[0]])
    assert not down.turns and "EnvServerError" in down.error and url in down.error
    assert up.turns and up.error is None


def test_ray_particle_population_equals_local(ray_executor):
    import numpy as np

    from agentmc.envs import make
    from agentmc.smc import SMCConfig, run_smc
    from agentmc.steer import AgentModel

    config = SMCConfig(n_particles=4, beta=0.5, schedule="every", max_steps=8)
    policy = NoisyExpertPolicy(mistake_prob=0.3, waste_prob=0.2)
    results = []
    for env in (
        make("textcraft", task_id=JOBS[3].task_id, max_steps=8),
        ray_executor.make_env("textcraft", task_id=JOBS[3].task_id, max_steps=8),
    ):
        model = AgentModel(env, policy)
        result = run_smc(model, config, np.random.default_rng(7))
        results.append(
            (result.returns.tolist(), [model.trajectory(s).actions for s in result.states])
        )
    assert results[0] == results[1]
