"""The examples in ``examples/`` run offline, and the README's Python example is one of them."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def run_example(name: str) -> str:
    """Run ``examples/<name>`` in a fresh interpreter, this checkout's ``src`` first; its stdout."""
    path = os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        capture_output=True, text=True, timeout=120, env=env, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_readme_python_example_is_examples_python_api():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Python API", 1)[1]
    snippet = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    script = (EXAMPLES / "python_api.py").read_text(encoding="utf-8")
    docstring = ast.get_docstring(ast.parse(script), clean=False)
    assert docstring is not None
    body = script.split('"""', 2)[2].lstrip("\n")  # the code after the module docstring
    assert body == snippet


def test_python_api_example_runs():
    method, selection, success, calls = run_example("python_api.py").split()
    assert (method, selection) == ("amc@critic-k8", "critic")
    assert success in ("True", "False") and int(calls) > 0


def test_custom_environment_example_runs_and_amc_beats_best_of_n():
    out = run_example("custom_environment.py")
    assert "check_env passed" in out
    assert "random agent (synthetic)" in out  # stand-in results are labelled
    # the lock's own prompt, state space and expert, registered with it, are what agentmc uses
    assert "noisy expert (synthetic) on task 5, success=True" in out
    assert "G2PO states: ['0 of 3 digits right', " in out
    assert "prompt: You are opening a combination lock." in out
    rates = {
        label: float(rate)
        for label, rate in re.findall(r"^\s+(\S+)\s+selection=\S+\s+success=([\d.]+)", out, re.M)
    }
    assert set(rates) == {"single", "bon@reward-k8", "smc@reward-k8", "amc@critic-k8-beta0.1"}
    # the click-counting critic's twist is what opens the lock (measured: 1.00 vs 0.69)
    assert rates["amc@critic-k8-beta0.1"] > rates["bon@reward-k8"] > rates["single"]
