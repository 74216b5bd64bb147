"""AgentGym client against our own server over real loopback HTTP, plus fault tests."""

from __future__ import annotations

import json
import socket
import time

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx2")

from agentmc.envs.agentgym import (  # noqa: E402
    AgentGymConfig,
    AgentGymEnv,
    BackgroundServer,
    EnvServerError,
    ServerConfig,
    create_app,
    tasks_from_server,
)
from agentmc.envs.core import StepResult  # noqa: E402
from agentmc.errors import ConfigError  # noqa: E402


class LockEnv:
    """Open a lock by saying its digits in order; 'peek' shows the next digit.

    Deterministic given (task, seed); the seed shifts the combination, so replays
    with the wrong seed are detectable.
    """

    env_id = "lock"

    def __init__(self, task_id: str, offset: int = 0) -> None:
        self.task_id = task_id
        self.offset = offset
        self.closed = False

    def reset(self, *, seed=None, options=None):
        base = int(self.task_id) + (seed or 0) + self.offset
        self.code = [str((base + k) % 10) for k in range(3)]
        self.position, self.steps = 0, 0
        return f"Lock {self.task_id}: say 3 digits.", {"length": 3}

    def step(self, action: str) -> StepResult:
        self.steps += 1
        truncated = self.steps >= 8
        if action == "peek":
            return StepResult(f"next {self.code[self.position]}", 0.0, False, truncated, {})
        if action == self.code[self.position]:
            self.position += 1
            if self.position == 3:
                return StepResult("open", 1.0, True, False, {"success": True})
            return StepResult(f"click {self.position}", 0.0, False, truncated, {})
        self.position = 0
        return StepResult("wrong, start again", 0.0, False, truncated, {"wrong": action})

    def snapshot(self):
        return (tuple(self.code), self.position, self.steps)

    def restore(self, snapshot) -> None:
        code, self.position, self.steps = snapshot
        self.code = list(code)

    def close(self) -> None:
        self.closed = True


TASKS = [str(k) for k in range(5)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(offset: int = 0, port: int = 0, **settings) -> BackgroundServer:
    app = create_app(lambda task: LockEnv(task, offset), TASKS, ServerConfig(port=port, **settings))
    return BackgroundServer(app, port=port).start()


@pytest.fixture
def server():
    running = start()
    yield running
    running.stop()


def client(server, task_id="2", **options) -> AgentGymEnv:
    return AgentGymEnv(AgentGymConfig(base_url=server.url, **options), task_id=task_id)


def play(env, actions, seed=0):
    first, _ = env.reset(seed=seed)
    return [first] + [tuple(env.step(action)[:4]) for action in actions]


ACTIONS = ["peek", "2", "peek", "9", "3", "4"]


def test_remote_episode_equals_the_in_process_one(server):
    remote = client(server)
    assert play(remote, ACTIONS) == play(LockEnv("2"), ACTIONS)
    remote.close()


def test_info_and_flags_travel(server):
    remote = client(server, task_id="0")
    remote.reset(seed=0)
    assert remote.step("7").info == {"wrong": "7"}
    final = [remote.step(a) for a in ["0", "1", "2"]][-1]
    assert final.terminated and final.reward == 1.0 and final.info == {"success": True}
    remote.close()


def test_snapshot_restores_by_replay_in_the_same_and_another_session(server):
    original = client(server)
    original.reset(seed=1)
    original.step("3")
    saved = original.snapshot()
    after = original.step("peek")
    original.step("9")  # moves on
    original.restore(saved)
    assert original.step("peek") == after
    clone = client(server)
    clone.restore(saved)
    assert clone.step("peek") == after
    assert clone.replayed_steps == 1
    # forward restore on the same session only steps the missing suffix
    later = client(server)
    later.reset(seed=1)
    before = later.replayed_steps
    later.restore(saved)
    assert later.replayed_steps - before == 1
    for env in (original, clone, later):
        env.close()


def test_restore_rejects_another_task(server):
    env = client(server, task_id="1")
    env.reset(seed=0)
    other = client(server, task_id="2")
    other.reset(seed=0)
    with pytest.raises(ConfigError, match="task 2 into task 1"):
        env.restore(other.snapshot())


def test_webshop_style_field_names(server):
    env = client(server, id_field="env_idx", task_field="session_id")
    assert play(env, ACTIONS[:3]) == play(LockEnv("2"), ACTIONS[:3])
    env.close()


def test_task_names_and_task_list(server):
    env = client(server, task_id="4", task_field="task_id")
    assert env.reset(seed=0)[0].startswith("Lock 4")
    assert tasks_from_server(AgentGymConfig(base_url=server.url)) == TASKS


def test_server_restart_mid_episode_reconnects_and_replays():
    port = free_port()
    first = start(port=port)
    env = client(first)
    expected = play(LockEnv("2"), ACTIONS)
    got = play(env, ACTIONS[:3])
    first.stop()
    second = start(port=port)
    try:
        got += [tuple(env.step(action)[:4]) for action in ACTIONS[3:]]
        assert got == expected
        assert env.replayed_steps == 3
    finally:
        env.close()
        second.stop()


def test_server_restart_without_reconnect_is_a_clear_error():
    port = free_port()
    first = start(port=port)
    env = client(first, reconnect=False)
    play(env, ACTIONS[:2])
    first.stop()
    second = start(port=port)
    try:
        with pytest.raises(EnvServerError, match="session lost.*reconnect is off"):
            env.step("peek")
    finally:
        second.stop()


def test_restart_into_a_different_server_is_detected_not_replayed_silently():
    port = free_port()
    first = start(port=port)
    env = client(first)
    play(env, ["peek", "2"])
    first.stop()
    changed = start(offset=1, port=port)  # same tasks, different combinations
    try:
        with pytest.raises(EnvServerError, match="diverged|starts differently"):
            env.step("peek")
    finally:
        changed.stop()


def test_unreachable_server_is_a_clear_error():
    env = AgentGymEnv(
        AgentGymConfig(base_url=f"http://127.0.0.1:{free_port()}", retries=2), task_id="0"
    )
    started = time.monotonic()
    with pytest.raises(EnvServerError, match="cannot reach the environment server.*2 attempts"):
        env.reset(seed=0)
    assert time.monotonic() - started < 10


def test_malformed_json_from_the_server_is_a_clear_error():
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def broken(request):
        return PlainTextResponse("<html>oops</html>")

    app = Starlette(routes=[Route(p, broken, methods=["POST", "GET"]) for p in ("/create",)])
    with BackgroundServer(app) as running:
        env = client(running)
        with pytest.raises(EnvServerError, match="malformed JSON"):
            env.reset(seed=0)


def test_unknown_task_is_a_clear_error(server):
    env = client(server, task_id="99")
    with pytest.raises(EnvServerError, match="unknown task index 99: this server has tasks 0..4"):
        env.reset(seed=0)
    with pytest.raises(EnvServerError, match="unknown task_id 'nope'"):
        client(server, task_id="nope", task_field="task_id").reset()


def test_index_task_ids_must_be_integers():
    with pytest.raises(ConfigError, match="task_id must be an integer"):
        AgentGymEnv(AgentGymConfig(), task_id="abc")


# -- the server, spoken to directly ----------------------------------------------------


def test_server_answers_bad_requests_with_json_errors(server):
    with httpx.Client(base_url=server.url) as http:
        malformed = http.post("/step", content=b"{not json")
        assert malformed.status_code == 400 and "malformed JSON" in malformed.json()["error"]
        unknown = http.post("/step", json={"id": 12345, "action": "peek"})
        assert unknown.status_code == 404 and "12345" in unknown.json()["error"]
        session = http.post("/create").json()["id"]
        early = http.post("/step", json={"id": session, "action": "peek"})
        assert early.status_code == 400 and "reset" in early.json()["error"]
        no_action = http.post("/step", json={"id": session})
        assert no_action.status_code == 400
        big = http.post("/step", json={"id": session, "action": "x" * 100_000})
        assert big.status_code == 413
        reset = http.post("/reset", json={"id": session, "data_idx": 1}).json()
        assert reset["observation"].startswith("Lock 1")
        assert http.get("/observation", params={"id": session}).json() == reset["observation"]
        assert http.post("/close", json={"id": session}).json() == {"closed": True}
        again = http.post("/step", json={"id": session, "action": "peek"})
        assert again.status_code == 404 and "closed" in again.json()["error"]


def test_token_is_required_when_configured():
    running = start(token="s3cret-token")
    try:
        with httpx.Client(base_url=running.url) as http:
            assert http.post("/create").status_code == 401
            wrong = {"Authorization": "Bearer nope"}
            assert http.post("/create", headers=wrong).status_code == 401
        env = client(running, token="s3cret-token")
        assert env.reset(seed=0)[0].startswith("Lock 2")
        with pytest.raises(EnvServerError, match="token"):
            client(running).reset(seed=0)
    finally:
        running.stop()


def test_session_limit_and_idle_closing():
    running = start(max_envs=2, idle_timeout_s=0.3)
    try:
        with httpx.Client(base_url=running.url) as http:
            ids = [http.post("/create").json()["id"] for _ in range(2)]
            full = http.post("/create")
            assert full.status_code == 503 and "limit" in full.json()["error"]
            pool = running.server.config.app.state.pool
            envs = []
            http.post("/reset", json={"id": ids[0], "data_idx": 0})
            envs.append(pool.sessions[ids[0]].env)
            deadline = time.monotonic() + 5
            while pool.sessions and time.monotonic() < deadline:
                time.sleep(0.05)
            gone = http.post("/step", json={"id": ids[0], "action": "peek"})
            assert gone.status_code == 404 and "without requests" in gone.json()["error"]
            assert envs[0].closed
            assert http.post("/create").status_code == 200
    finally:
        running.stop()


def test_server_config_refuses_public_binding_without_token():
    with pytest.raises(ConfigError, match="token"):
        ServerConfig(host="0.0.0.0")
    assert ServerConfig(host="0.0.0.0", token="long-enough").token
    assert ServerConfig(host="::1").host == "::1"
    with pytest.raises(ConfigError, match="max_body_bytes"):
        ServerConfig(max_body_bytes=10)


def test_registered_as_agentgym_with_server_task_lists(server):
    from agentmc.envs import make, task_ids
    from agentmc.errors import UnknownNameError

    assert task_ids("agentgym", "all", base_url=server.url) == TASKS
    assert task_ids("agentgym", "test", splits={"test": ["3", "1"]}) == ["3", "1"]
    parts = [task_ids("agentgym", s, base_url=server.url) for s in ("train", "validation", "test")]
    assert sorted(sum(parts, []), key=int) == TASKS and len(parts[2]) == 1  # our 20% test split
    with pytest.raises(UnknownNameError, match="unknown split"):
        task_ids("agentgym", "dev", base_url=server.url)
    env = make("agentgym", task_id="2", base_url=server.url)
    assert env.reset(seed=0)[0] == "Lock 2: say 3 digits."
    assert env.step("2").observation == "click 1"
    env.close()


def test_env_name_presets_and_task_ranges(tmp_path):
    from agentmc.envs import make, task_ids
    from agentmc.envs.agentgym.client import default_split, parse_task_range
    from agentmc.errors import UnknownNameError

    env = make("agentgym", task_id="7", base_url="http://127.0.0.1:1", env_name="webshop")
    assert (env.config.id_field, env.config.task_field) == ("env_idx", "session_id")
    assert env.config.env_id == "agentgym/webshop"
    # a known server's range needs no request; a given range overrides it
    everything = task_ids("agentgym", "all", base_url="http://127.0.0.1:1", env_name="textcraft")
    assert everything == [str(i) for i in range(544)]
    test = task_ids("agentgym", "test", env_name="textcraft")
    assert len(test) == round(0.2 * 544) and test == default_split(everything, "test")
    assert task_ids("agentgym", "all", task_range="10-12") == ["10", "11", "12"]
    ids = tmp_path / "test_idx.json"
    ids.write_text(json.dumps([5, 6, 9]))
    chosen = task_ids("agentgym", "test", task_range="0-9", split_files={"test": ids})
    assert chosen == ["5", "6", "9"]
    assert parse_task_range("4") == ["0", "1", "2", "3"]
    with pytest.raises(ConfigError, match="START-END"):
        parse_task_range("a-b")
    with pytest.raises(UnknownNameError, match="textcraft"):
        make("agentgym", task_id="0", env_name="nethack")


def test_cli_takes_the_server_url_name_and_range(server, tmp_path, capsys):
    from agentmc.cli.main import main

    args = ["--env", "agentgym", "--env-url", server.url, "--env-name", "agentmc"]
    assert main(["tasks", *args, "--show", "ids", "--split", "all"]) == 0
    assert capsys.readouterr().out.split() == TASKS
    assert main(["tasks", *args, "--task-range", "0-2", "--split", "all", "--show", "ids"]) == 0
    assert capsys.readouterr().out.split() == ["0", "1", "2"]
    assert main(["tasks", "--env", "textcraft", "--env-url", server.url]) == 2
    assert "--env-url is an AgentGym option" in capsys.readouterr().err


def test_refusals_are_json_and_deep_nesting_is_a_400(server):
    with httpx.Client(base_url=server.url) as http:
        deep = http.post("/step", content=b"[" * 100_000 + b"]" * 100_000)
        assert deep.status_code in (400, 413) and "error" in deep.json()
        nested = http.post("/step", content=b'{"a":' + b"[" * 5000 + b"]" * 5000 + b"}")
        assert nested.status_code == 400 and "nested too deeply" in nested.json()["error"]
        big = http.post("/step", json={"id": 0, "action": "x" * 100_000})
        assert big.status_code == 413
        assert big.headers["content-type"].startswith("application/json") and big.json()["error"]
        wrong = http.get("/step")
        assert wrong.status_code == 405
        assert wrong.headers["content-type"].startswith("application/json")
        assert wrong.json()["error"]


# -- faults of a server we did not write (agentmc.testing.AgentGymTestServer) ---------------


def _lock_server():
    from agentmc.testing.env_server import AgentGymTestServer

    return AgentGymTestServer(lambda task: LockEnv(task), TASKS)


def test_a_text_500_on_step_is_recovered_by_replay():
    from agentmc.testing.env_server import EnvFault

    with _lock_server() as faulty:
        env = AgentGymEnv(AgentGymConfig(base_url=faulty.url), task_id="2")
        reference = play(env, ACTIONS)
        faulty.inject("/step", EnvFault(status=500))
        assert play(env, ACTIONS) == reference
        env.close()


def test_a_fault_during_recovery_is_an_env_server_error():
    from agentmc.testing.env_server import EnvFault

    with _lock_server() as faulty:
        env = AgentGymEnv(AgentGymConfig(base_url=faulty.url), task_id="2")
        env.reset(seed=0)
        env.step("peek")
        faulty.inject("/step", EnvFault(kind="disconnect"))  # recovery starts: replay
        faulty.inject("/reset", EnvFault(kind="disconnect"))  # and fails in the replay
        with pytest.raises(EnvServerError, match="step"):
            env.step("2")
        env.close()
