from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from agentmc.cli.serve import Config, build
from agentmc.errors import ConfigError, UnknownNameError

httpx = pytest.importorskip("httpx2")


def test_public_host_needs_a_token_from_the_environment(monkeypatch):
    monkeypatch.delenv("MY_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="environment variable MY_TOKEN"):
        build(Config(host="0.0.0.0", token_env="MY_TOKEN"))
    monkeypatch.setenv("MY_TOKEN", "s3cret-token")
    _, ids, server = build(Config(host="0.0.0.0", token_env="MY_TOKEN", split="test"))
    assert server.token == "s3cret-token" and len(ids) > 100


def test_unknown_env_and_custom_goal_table(tmp_path):
    with pytest.raises(UnknownNameError, match="textcraft"):
        build(Config(env="nope"))
    goals = tmp_path / "goals.csv"
    goals.write_text("minecraft:oak_planks\t1\nminecraft:stick\t2\n")
    ids_file = tmp_path / "test.csv"
    ids_file.write_text("1\n")
    make_env, ids, _ = build(Config(split="test", goals_csv=goals, split_csv=ids_file))
    assert ids == ["1"]
    assert make_env("1").reset()[0].endswith("Goal: craft stick.")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_agentmc_serve_answers_the_agentgym_protocol():
    port = _free_port()
    command = [sys.executable, "-m", "agentmc.cli.main", "serve", "--port", str(port)]
    command += ["--split", "test", "--max-steps", "3"]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=os.environ
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                tasks = httpx.get(f"{url}/tasks", timeout=1).json()["tasks"]
                break
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
        session = httpx.post(f"{url}/create", json={}).json()["id"]
        reset = httpx.post(f"{url}/reset", json={"id": session, "data_idx": 0}).json()
        assert reset["task_id"] == tasks[0] and "Goal: craft" in reset["observation"]
        steps = [
            httpx.post(f"{url}/step", json={"id": session, "action": "inventory"}).json()
            for _ in range(3)
        ]
        assert steps[0]["observation"].startswith("Inventory")
        assert [s["truncated"] for s in steps] == [False, False, True]
        bad = httpx.post(f"{url}/reset", json={"id": session, "data_idx": len(tasks)})
        assert bad.status_code == 404 and "unknown task index" in bad.json()["error"]
    finally:
        process.terminate()
        output = process.communicate(timeout=10)[0]
    assert f"on http://127.0.0.1:{port} (no token)" in output
