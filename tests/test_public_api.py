"""The public API in ``agentmc.__all__``: every name resolves, lazily, to its home object."""

from __future__ import annotations

import ast
import doctest
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import agentmc

INIT = Path(agentmc.__file__)
PUBLIC = [name for name in agentmc.__all__ if name != "__version__"]


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_name_is_its_home_modules_object(name):
    home = importlib.import_module(agentmc._EXPORTS[name])
    assert getattr(agentmc, name) is getattr(home, name)
    assert name in dir(agentmc)


def test_all_lists_each_name_once_and_unknown_names_raise_attribute_error():
    assert len(set(agentmc.__all__)) == len(agentmc.__all__)
    assert "__version__" in agentmc.__all__ and isinstance(agentmc.__version__, str)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        agentmc.nope  # noqa: B018
    assert not hasattr(agentmc, "nope")


def test_no_public_name_shadows_a_submodule():
    """``agentmc.X`` must mean one thing whatever was imported first."""
    package = INIT.parent
    submodules = {path.stem for path in package.glob("*.py")} | {
        path.parent.name for path in package.glob("*/__init__.py")
    }
    assert not set(PUBLIC) & submodules


def test_type_checking_imports_match_the_lazy_table():
    """What type checkers see (the TYPE_CHECKING block) is what ``__getattr__`` returns."""
    tree = ast.parse(INIT.read_text(encoding="utf-8"))
    [block] = [
        node
        for node in tree.body
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING"
    ]
    seen = {
        alias.asname or alias.name: node.module
        for node in block.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert seen == agentmc._EXPORTS


def test_import_agentmc_loads_no_submodule_or_heavy_dependency():
    code = (
        "import sys, agentmc; "
        "print(sorted(m for m in sys.modules if m.startswith('agentmc.') "
        "or m.split('.')[0] in ('numpy', 'torch', 'llama_cpp', 'ray', 'sklearn')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert out.strip() == "[]"


def test_module_docstring_example_runs():
    assert doctest.testmod(agentmc, optionflags=doctest.ELLIPSIS).failed == 0
