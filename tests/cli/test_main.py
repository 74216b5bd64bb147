from __future__ import annotations

import pytest

from agentmc.cli.main import COMMANDS, main


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["nonsense"], "unknown command 'nonsense'"), (["critic"], "critic train | critic eval")],
)
def test_unknown_or_incomplete_command_is_one_line(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_help(capsys, name):
    with pytest.raises(SystemExit) as stop:
        main([*name.split(), "--help"])
    assert stop.value.code == 0
    assert "usage: agentmc" in capsys.readouterr().out
