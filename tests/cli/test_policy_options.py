"""Policy flags shared by the commands: --concurrency, --timeout, --max-attempts."""

from __future__ import annotations

import pytest

from agentmc.cli.common import PolicyOptions, parse
from agentmc.cli.main import main
from agentmc.errors import ConfigError

LOCAL = "http://127.0.0.1:9/v1"  # never contacted: the policy is only built


def test_timeout_and_max_attempts_reach_the_openai_client():
    options = parse(
        PolicyOptions,
        "run",
        ["--policy", "openai:m", "--base-url", LOCAL, "--timeout", "600", "--max-attempts", "3"],
    )
    limits = options.make().config.limits
    assert limits.deadline_s == 600 and limits.max_attempts == 3
    assert limits.request_timeout_s == 300  # one attempt may take half the deadline


def test_defaults_let_one_step_of_64_particles_go_out_at_once():
    limits = PolicyOptions(policy="openai:m", base_url=LOCAL).make().config.limits
    assert limits.max_concurrency >= 64
    assert limits.deadline_s == 120 and limits.request_timeout_s == 60 and limits.max_attempts == 8
    short = PolicyOptions(policy="openai:m", base_url=LOCAL, timeout=10).make().config.limits
    assert short.deadline_s == short.request_timeout_s == 10


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--timeout", "0"], "--timeout must be a positive number"),
        (["--timeout", "nan"], "--timeout must be a positive number"),
        (["--max-attempts", "0"], "--max-attempts must be at least 1"),
    ],
)
def test_bad_policy_flags_are_one_line_errors(tmp_path, capsys, flags, message):
    with pytest.raises(ConfigError, match=message):
        parse(PolicyOptions, "run", flags)
    out = tmp_path / "bad"
    argv = ["run", "--out", str(out), "--n-tasks", "1", *flags]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (out / "records.jsonl").exists()
