"""``agentmc.smc`` is numpy only: it imports with torch, httpx and openai unavailable."""

from __future__ import annotations

import subprocess
import sys

BLOCKED = ["torch", "httpx", "openai", "sklearn", "transformers", "tyro", "rich"]

SCRIPT = f"""
import sys
for name in {BLOCKED!r}:
    sys.modules[name] = None  # makes 'import name' raise ImportError
import numpy as np
import agentmc.smc as smc
from agentmc.smc import SMCConfig, TreeModel, random_tree, run_smc
problem = random_tree(3, 2, np.random.default_rng(0))
config = SMCConfig(n_particles=4, max_steps=3)
result = run_smc(TreeModel(problem), config, np.random.default_rng(1))
leaked = sorted(
    name for name in sys.modules
    if name.split(".")[0] == "agentmc" and name.split(".")[1:2]
    and name.split(".")[1] in ("envs", "policies", "critics", "steer", "rl", "eval", "cli")
)
assert not leaked, leaked
print("ok", len(result.states))
"""


def test_smc_imports_without_optional_dependencies():
    completed = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "ok 4"


def test_blocking_really_blocks():
    """The harness above would be vacuous if a blocked import still succeeded."""
    completed = subprocess.run(
        [sys.executable, "-c", "import sys; sys.modules['torch'] = None; import torch"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode != 0
    assert "ImportError" in completed.stderr or "ModuleNotFoundError" in completed.stderr
