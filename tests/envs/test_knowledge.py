"""Environments own their knowledge: prompt, state space and expert come with the registry entry."""

from __future__ import annotations

import ast
import asyncio
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from agentmc.envs import registry
from agentmc.envs.knowledge import EnvPrompt, Example, ExpertPlan, StateSpace
from agentmc.envs.registry import knowledge, register
from agentmc.errors import ConfigError, MissingExtraError, UnknownNameError
from agentmc.policies import make_policy
from agentmc.policies.expert import NoisyExpertPolicy, expert_plan, unloadable_experts
from agentmc.policies.prompts import PromptFormat, env_prompt, register_env_prompt
from agentmc.rl.states import STATE_SPACES, get_state_space, register_state_space, state_keys
from agentmc.rollout import rollout
from agentmc.types import Message
from climb_env import ClimbEnv

SRC = Path(__file__).resolve().parents[2] / "src"
#: Modules of agentmc.envs that know no particular environment.
GENERIC = {"agentmc.envs", "agentmc.envs.checker", "agentmc.envs.core", "agentmc.envs.knowledge",
           "agentmc.envs.registry"}  # fmt: skip

PROMPT = EnvPrompt(
    "Say up until you reach the top.",
    (Example("Climb 1 step.", (("", "up", "You reached the top!"),)),),
)


def climbed(level: int, action: str, observation: str) -> int:
    return level + 1 if observation.startswith(("Level", "You reached")) else level


LEVELS = StateSpace(start=lambda task: 0, advance=climbed, render=lambda level: f"level {level}",
                    description="how high the climber is")  # fmt: skip


def climb_expert(task, steps):
    """Always up; knows only climbing tasks."""
    if not task.startswith("Climb"):
        return None
    done = any(observation == "You reached the top!" for _, observation in steps)
    return ExpertPlan(() if done else ("up",), done=done, valid_actions=lambda: ("up", "down"))


@pytest.fixture
def climb_registered():
    register("climb-own", lambda task_id, **kw: ClimbEnv(**kw), lambda split: ["0"],
             description="test: climbing, with its own knowledge", overwrite=True,
             prompt=PROMPT, state_space=LEVELS, expert=climb_expert)  # fmt: skip
    yield "climb-own"
    registry._REGISTRY.pop("climb-own")  # no unregister(): keep other tests' registry as it was


def test_importing_policies_and_rl_loads_no_environment():
    code = (
        "import sys, agentmc.policies, agentmc.rl; "
        "print(sorted(m for m in sys.modules if m.startswith('agentmc.envs')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
        env={"PYTHONPATH": str(SRC), "PATH": ""},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = set(ast.literal_eval(done.stdout.strip()))
    assert loaded and loaded <= GENERIC, sorted(loaded - GENERIC)


def _imports(path: Path, *, top_only: bool) -> set[str]:
    """Modules a file imports (absolute names); function-level ones too unless ``top_only``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_only else ast.walk(tree)
    out: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.add(node.module)
            out.update(f"{node.module}.{alias.name}" for alias in node.names)
    return out


def _module(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_policies_and_rl_name_no_environment_module_even_lazily():
    offenders = [
        f"{_module(path)} imports {name}"
        for package in ("policies", "rl")
        for path in sorted((SRC / "agentmc" / package).rglob("*.py"))
        for name in _imports(path, top_only=False)
        if name.startswith("agentmc.envs.")
        and name not in GENERIC  # the module itself ...
        and name.rsplit(".", 1)[0] not in GENERIC  # ... or a name imported from it
    ]
    assert offenders == []


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (module -> modules it imports), or None."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def _graph(*, top_only: bool, skip: tuple[str, ...] = ()) -> dict[str, set[str]]:
    paths = {_module(p): p for p in (SRC / "agentmc").rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        if name.startswith(skip):
            continue
        targets = set()
        for imported in _imports(path, top_only=top_only):
            parts = imported.split(".")
            # importing a.b.c runs a/__init__ and a/b/__init__ first
            for k in range(2, len(parts) + 1):
                target = ".".join(parts[:k])
                if target in paths and target != name and not name.startswith(target + "."):
                    targets.add(target)
        graph[name] = targets
    return graph


def test_no_import_cycle_in_src():
    # at import time, nowhere
    assert _cycle(_graph(top_only=True)) is None
    # nor through imports deferred into functions
    assert _cycle(_graph(top_only=False)) is None


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_a_custom_environment_brings_its_prompt_states_and_expert(climb_registered):
    env_id = climb_registered
    assert knowledge(env_id, "prompt") is PROMPT and env_prompt(env_id) is PROMPT
    text = PromptFormat(env_id=env_id).completion([Message("user", "Climb 3 steps.")])
    assert text.startswith("Say up until you reach the top.") and "> up\nYou reached" in text

    assert get_state_space(env_id) is LEVELS
    steps = [("up", "Level 1."), ("jump", "Unknown action 'jump'"), ("up", "Level 2.")]
    keys = state_keys(env_id, "Climb 3 steps.", steps)
    assert keys == ["level 0", "level 1", "level 1", "level 2"]

    # the noisy expert follows the registered expert: noise-free, it climbs straight up
    trajectory = rollout(registry.make(env_id, task_id="0"), NoisyExpertPolicy(0.0, 0.0),
                         np.random.default_rng(0), temperature=0)  # fmt: skip
    assert trajectory.success and [t.action for t in trajectory.turns] == ["up", "up", "up"]
    assert expert_plan([Message("user", "Climb 2 steps.")]).plan == ("up",)
    # its slips come from the expert's own list when the environment lists none
    always_slips = make_policy("noisy-expert:eps=1")
    picks = asyncio.run(always_slips.complete([Message("user", "Climb 2.")], n=50, seed=3))
    assert {c.text for c in picks} == {"up", "down"}


def test_overrides_by_id_win_over_the_registry_entry(climb_registered):
    other = EnvPrompt("Climb carefully.")
    register_env_prompt(climb_registered, other)
    register_state_space(climb_registered, StateSpace())
    try:
        assert env_prompt(climb_registered) is other
        assert get_state_space(climb_registered).description.startswith("the latest observation")
    finally:
        del STATE_SPACES[climb_registered]
        from agentmc.policies.prompts import ENV_PROMPTS

        del ENV_PROMPTS[climb_registered]
    assert env_prompt(climb_registered) is PROMPT and get_state_space(climb_registered) is LEVELS


def test_textcraft_registers_its_knowledge_lazily_and_unknown_ids_have_none():
    entry = registry.spec("textcraft")
    kinds = ("prompt", "state_space", "expert")
    assert all(isinstance(getattr(entry, kind), str) for kind in kinds)  # nothing imported yet
    assert "craft" in knowledge("textcraft", "prompt").instructions.lower()
    assert knowledge("guess-number", "expert") is None
    assert knowledge("no-such-env", "prompt") is None
    with pytest.raises(UnknownNameError, match="unknown knowledge"):
        knowledge("textcraft", "reward")


def test_bad_knowledge_is_one_clear_error(climb_registered):
    lister = registry.spec(climb_registered).task_lister
    with pytest.raises(ConfigError, match="prompt='just text' must be an EnvPrompt or"):
        register("bad-kn", ClimbEnv, lister, description="x", prompt="just text")  # no colon
    with pytest.raises(ConfigError, match="prompt must be an EnvPrompt"):
        register("bad-kn", ClimbEnv, lister, description="x", prompt=42)
    with pytest.raises(ConfigError, match="expert must be a callable"):
        register("bad-kn", ClimbEnv, lister, description="x", expert=42)
    with pytest.raises(ConfigError, match="state_space must be a StateSpace"):
        register("bad-kn", ClimbEnv, lister, description="x", state_space=PROMPT)
    assert "bad-kn" not in registry.env_ids()

    # lazy strings are checked when first used; an expert that cannot load knows no task
    register("lazy-kn", ClimbEnv, lister, description="x", overwrite=True,
             prompt="agentmc.envs.knowledge:StateSpace",  # a class, not an EnvPrompt
             expert="agentmc_no_such_module:expert")  # fmt: skip
    try:
        with pytest.raises(ConfigError, match="prompt must be an EnvPrompt"):
            env_prompt("lazy-kn")
        with pytest.raises(MissingExtraError, match="lazy-kn"):
            knowledge("lazy-kn", "expert")
        assert any(line.startswith("lazy-kn: ") for line in unloadable_experts())
        assert expert_plan([Message("user", "Climb 1 step.")]) is not None  # others still answer
        with pytest.raises(ConfigError, match="could not be loaded: lazy-kn"):
            asyncio.run(NoisyExpertPolicy().complete([Message("user", "Fly to the moon.")]))
    finally:
        registry._REGISTRY.pop("lazy-kn")


def test_llm_policies_frame_the_environment_they_play(climb_registered):
    """``make_policy(env_id=...)`` gives local and openai: policies that env's prompt."""
    for spec in ("local", "local:choose", "openai:some-model"):
        policy = make_policy(spec, base_url="http://127.0.0.1:9/v1", env_id=climb_registered)
        assert policy.config.prompt.env_id == climb_registered
        text = policy.config.prompt.completion([Message("user", "Climb 2 steps.")])
        assert text.startswith("Say up until you reach the top.")
    assert make_policy("local").config.prompt.env_id == "textcraft"  # the default
