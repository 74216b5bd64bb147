from __future__ import annotations

import pytest

from agentmc.envs import env_ids, make, register, task_ids
from agentmc.envs.registry import spec, unknown_task
from agentmc.envs.toy import GuessNumberEnv
from agentmc.errors import ConfigError, MissingExtraError, UnknownNameError


def test_builtin_environments_are_registered():
    assert {"textcraft", "guess-number"} <= set(env_ids())
    assert env_ids() == sorted(env_ids())
    assert spec("textcraft").description


def test_make_passes_options_and_normalises_task_id():
    env = make("textcraft", task_id=17, max_steps=7, reward="dense")
    assert (env.env_id, env.task_id) == ("textcraft", "17")
    assert env.config.max_steps == 7 and env.config.reward == "dense"


def test_unknown_environment_lists_valid_names():
    with pytest.raises(UnknownNameError, match="textcraft") as error:
        make("textcraf", task_id="0")
    assert "guess-number" in str(error.value)


def test_unknown_task_id_says_how_many_and_range():
    with pytest.raises(UnknownNameError, match=r"544 tasks with ids 0\.\.543"):
        make("textcraft", task_id="544")
    with pytest.raises(UnknownNameError, match=r"16 tasks exist \(ids 0\.\.15\)"):
        make("guess-number", task_id="banana")


def test_unknown_split_and_option():
    with pytest.raises(UnknownNameError, match="train, validation, test, all"):
        task_ids("textcraft", "dev")
    with pytest.raises(ConfigError, match="max_step"):
        make("textcraft", task_id="0", max_step=3)
    with pytest.raises(ConfigError, match="reward"):
        make("textcraft", task_id="0", reward="shaped")


def test_task_ids_splits_partition_all():
    for env_id in ("textcraft", "guess-number"):
        parts = [task_ids(env_id, s) for s in ("train", "validation", "test")]
        flat = [t for part in parts for t in part]
        assert sorted(flat, key=int) == task_ids(env_id, "all")
        assert len(set(flat)) == len(flat)


def test_unknown_task_message_examples_for_non_contiguous_ids():
    assert "e.g. 1, 5" in str(unknown_task("x", "9", ["1", "5"]))
    assert "e.g. a, b" in str(unknown_task("x", "9", ["b", "a"]))
    assert "no tasks" in str(unknown_task("x", "9", []))


def test_register_callables_lazy_strings_and_duplicates():
    def lister(split, **_):
        return ["0", "1"] if split == "all" else ["0"]

    register(
        "test-guess",
        lambda task_id, **kw: GuessNumberEnv(task_id, **kw),
        lister,
        description="test",
        overwrite=True,
    )
    assert make("test-guess", task_id="1", high=4).task_id == "1"
    assert task_ids("test-guess", "test") == ["0"]
    with pytest.raises(ConfigError, match="already registered"):
        register("test-guess", lambda **kw: None, lister, description="again")
    with pytest.raises(ConfigError, match="module:attr"):
        register("test-bad", "no_colon", lister, description="bad")
    register(
        "test-missing",
        "agentmc_no_such_module:make",
        lister,
        description="optional env whose extra is absent",
        overwrite=True,
    )
    assert "test-missing" in env_ids()  # registering did not import anything
    with pytest.raises(MissingExtraError, match="test-missing"):
        make("test-missing", task_id="0")
