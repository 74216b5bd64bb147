import json

import pytest

from agentmc.data.store import PARTIAL_FILE, RunStore, natural_key
from agentmc.data.trajectory import Trajectory, Turn
from agentmc.errors import DataError
from agentmc.types import Usage


def make_trajectory(task_id="0", reward=1.0):
    turn = Turn(
        "get 1 log",
        "get 1 log",
        "Got 1 log",
        reward,
        terminated=True,
        usage=Usage(calls=1, prompt_tokens=5, completion_tokens=2, cost=None),
    )
    return Trajectory("climb", task_id, "Climb.", (turn,), "scripted", True, success=True, seed=3)


def test_trajectory_round_trips_through_the_store(tmp_path):
    store = RunStore.create_or_resume(tmp_path / "run", command="rollout", seed=1, config={"a": 1})
    trajectory = make_trajectory()
    store.write_trajectory(trajectory, key="t/0")
    again = RunStore.open(tmp_path / "run")
    assert again.trajectories() == [trajectory]
    assert again.trajectories()[0].usage.cost is None  # unknown cost stays unknown
    assert again.meta.seed == 1 and again.meta.config == {"a": 1}


def test_resume_requires_the_same_settings(tmp_path):
    RunStore.create_or_resume(tmp_path, command="rollout", seed=1, config={"a": 1, "w": 2})
    RunStore.create_or_resume(
        tmp_path, command="rollout", seed=1, config={"a": 1, "w": 8}, mutable=["w"]
    )
    with pytest.raises(DataError, match="a=1 \\(now 2\\)"):
        RunStore.create_or_resume(tmp_path, command="rollout", seed=1, config={"a": 2, "w": 2})
    with pytest.raises(DataError, match="seed"):
        RunStore.create_or_resume(tmp_path, command="rollout", seed=2, config={"a": 1, "w": 2})


def test_truncated_last_line_is_reported_skipped_and_kept_aside(tmp_path, caplog):
    store = RunStore.create_or_resume(tmp_path, command="x", seed=0, config={})
    store.write_trajectory(make_trajectory("0"), key="t/0")
    with store.records_path.open("a") as handle:
        handle.write('{"kind": "trajectory", "key": "t/1", "data": {"env_')  # killed mid-write
    assert [t.task_id for t in store.trajectories()] == ["0"]
    assert "truncated" in caplog.text
    store.write_trajectory(make_trajectory("2"), key="t/2")
    assert [t.task_id for t in store.trajectories()] == ["0", "2"]
    assert '"key": "t/1"' in (tmp_path / PARTIAL_FILE).read_text()  # nothing lost


def test_corrupt_middle_line_is_an_error_and_the_file_is_untouched(tmp_path):
    store = RunStore.create_or_resume(tmp_path, command="x", seed=0, config={})
    store.write_trajectory(make_trajectory("0"), key="t/0")
    with store.records_path.open("a") as handle:
        handle.write("garbage\n")
    store.write_trajectory(make_trajectory("1"), key="t/1")
    before = store.records_path.read_bytes()
    with pytest.raises(DataError, match="records.jsonl:2"):
        store.trajectories()
    assert store.records_path.read_bytes() == before


def test_other_format_version_is_rejected(tmp_path):
    RunStore.create_or_resume(tmp_path, command="x", seed=0, config={})
    meta = json.loads((tmp_path / "run.json").read_text())
    meta["format_version"] = 999
    (tmp_path / "run.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match="format 999"):
        RunStore.open(tmp_path)


def test_not_a_run_directory(tmp_path):
    with pytest.raises(DataError, match="not an agentmc run directory"):
        RunStore.open(tmp_path)


def test_unwritable_path_is_a_data_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(DataError, match="cannot write"):
        RunStore.create_or_resume(blocker / "run", command="x", seed=0, config={})


def test_compact_orders_records_canonically(tmp_path):
    store = RunStore.create_or_resume(tmp_path, command="x", seed=0, config={})
    for key in ["t/10", "t/2", "t/1"]:
        store.append("n", {"k": key}, key=key)
    store.compact()
    assert [r["key"] for r in store.records()] == ["t/1", "t/2", "t/10"]
    assert natural_key("a/2") < natural_key("a/10")


def test_torn_multibyte_tail_is_skipped_and_moved_aside(tmp_path):
    store = RunStore.create_or_resume(tmp_path, command="x", seed=0, config={})
    store.append("note", {"text": "ångström ✓"}, key="n/0")
    line = json.dumps({"kind": "note", "key": "n/1", "data": {"text": "✓✓✓"}}, ensure_ascii=False)
    raw = line.encode("utf-8")
    cut = raw.index("✓".encode()) + 1  # killed inside a three-byte character
    with store.records_path.open("ab") as handle:
        handle.write(raw[:cut])
    assert store.done_keys() == {"n/0"}
    store.append("note", {"text": "é"}, key="n/2")
    assert store.done_keys() == {"n/0", "n/2"}
    assert (tmp_path / PARTIAL_FILE).read_bytes() == raw[:cut] + b"\n"  # nothing lost


def test_non_utf8_middle_line_is_named_by_file_and_line(tmp_path):
    store = RunStore.create_or_resume(tmp_path, command="x", seed=0, config={})
    store.append("note", {"text": "a"}, key="n/0")
    with store.records_path.open("ab") as handle:
        handle.write(b'{"kind": "note", "key": "n/1", "data": {"text": "\xff\xfe"}}\n')
    store.append("note", {"text": "b"}, key="n/2")
    before = store.records_path.read_bytes()
    with pytest.raises(DataError, match="records.jsonl:2"):
        store.done_keys()
    assert store.records_path.read_bytes() == before


def test_records_without_metadata_are_not_adopted(tmp_path):
    (tmp_path / "records.jsonl").write_text('{"kind": "x", "key": "k", "data": {}}\n')
    with pytest.raises(DataError, match="no run.json"):
        RunStore.create_or_resume(tmp_path, command="x", seed=0, config={})
    assert not (tmp_path / "run.json").exists()


def test_unreadable_records_are_a_data_error(tmp_path):
    store = RunStore.create_or_resume(tmp_path, command="x", seed=0, config={})
    store.records_path.mkdir()
    with pytest.raises(DataError, match="records.jsonl"):
        store.done_keys()
    with pytest.raises(DataError, match="records.jsonl"):
        store.append("note", {}, key="n/0")


def test_compact_of_a_canonical_file_writes_nothing(tmp_path, monkeypatch):
    store = RunStore.create_or_resume(tmp_path, command="x", seed=0, config={})
    store.append("note", {}, key="n/2")
    store.append("note", {}, key="n/10")
    store.compact()
    written = []
    monkeypatch.setattr(type(store.records_path), "replace", lambda *a: written.append(a))
    store.compact()
    assert written == []
