from __future__ import annotations

import json

import numpy as np
import pytest

from agentmc.critics.artifact import META_FILE, fingerprint, load, save
from agentmc.critics.fit import FitConfig, fit
from agentmc.critics.hashed import HashedConfig
from agentmc.errors import DataError


@pytest.fixture(scope="module")
def trained(craft_data):
    return fit(craft_data, FitConfig(), HashedConfig(n_features=2**12))


def test_round_trip_gives_identical_values(trained, tmp_path):
    path = save(trained.critic, tmp_path / "critic")
    meta = json.loads((path / META_FILE).read_text())
    assert meta["format_version"] == 1 and meta["backend"] == "hashed"
    assert meta["env_id"] == "synthetic-craft"
    assert meta["provenance"]["data_fingerprint"].startswith("sha256:")
    assert "auroc_success" in meta["provenance"]["metrics"]
    assert set(meta["files"]) == {"model.npz"}
    loaded = load(path, env_id="synthetic-craft")
    histories = trained.val_examples.histories[:40]
    np.testing.assert_array_equal(loaded.values(histories), trained.critic.values(histories))
    # Saving again over an artifact replaces it.
    save(loaded, path)
    assert load(path).values(histories[:3]).shape == (3,)


def test_refuses_other_environment(trained, tmp_path):
    path = save(trained.critic, tmp_path / "critic")
    with pytest.raises(
        DataError, match="trained on environment 'synthetic-craft', not 'textcraft'"
    ):
        load(path, env_id="textcraft")


def test_refuses_corrupt_truncated_or_incompatible(trained, tmp_path):
    path = save(trained.critic, tmp_path / "critic")
    model = path / "model.npz"
    data = model.read_bytes()
    model.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="corrupt or truncated: model.npz"):
        load(path)
    model.unlink()
    with pytest.raises(DataError, match="model.npz is missing"):
        load(path)

    path = save(trained.critic, tmp_path / "critic2")
    meta_path = path / META_FILE
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(DataError, match="artifact format 99"):
        load(path)
    meta_path.write_text(meta_path.read_text()[:50])
    with pytest.raises(DataError, match="corrupt or truncated"):
        load(path)
    with pytest.raises(DataError, match="not a critic artifact"):
        load(tmp_path / "nowhere")


def test_save_does_not_clobber_other_directories(trained, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(DataError, match="not a critic artifact"):
        save(trained.critic, tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_fingerprint_ignores_order_but_not_content(craft_data):
    assert fingerprint(craft_data) == fingerprint(list(reversed(craft_data)))
    assert fingerprint(craft_data) != fingerprint(craft_data[1:])


def test_files_that_are_not_a_mapping_or_unreadable_are_data_errors(trained, tmp_path, monkeypatch):
    path = save(trained.critic, tmp_path / "critic")
    meta_path = path / META_FILE
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "files": ["model.npz"]}))
    with pytest.raises(DataError, match="'files' must map"):
        load(path)
    meta_path.write_text(json.dumps(meta))
    from pathlib import Path

    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "open", refuse)
    with pytest.raises(DataError, match="Permission denied"):
        load(path)
    monkeypatch.setattr(Path, "read_text", refuse)
    with pytest.raises(DataError, match="Permission denied"):
        load(path)


@pytest.mark.parametrize("killed_after", [0, 1, 2])
def test_a_save_killed_between_renames_is_finished_by_the_next_load(
    trained, tmp_path, monkeypatch, killed_after
):
    from pathlib import Path

    path = save(trained.critic, tmp_path / "critic")
    histories = trained.val_examples.histories[:5]
    expected = trained.critic.values(histories)
    real = Path.rename
    calls = []

    def rename(self, target):
        calls.append(target)
        if len(calls) > killed_after:
            raise KeyboardInterrupt  # the process dies here (kill -9 runs no cleanup either)
        return real(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    with pytest.raises(KeyboardInterrupt):
        save(trained.critic, path)
    monkeypatch.setattr(Path, "rename", real)
    np.testing.assert_array_equal(load(path).values(histories), expected)
    left = [p for p in tmp_path.iterdir() if p.name != "critic"]
    if killed_after == 0:  # killed while writing: a staging directory, removed once stale
        assert [p.name.startswith(".critic.tmp-") for p in left] == [True]
        import os

        os.utime(left[0], (0, 0))
        load(path)
        left = [p for p in tmp_path.iterdir() if p.name != "critic"]
    assert left == []  # no stale .critic.* directories


def test_artifacts_are_readable_by_others(trained, tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        path = save(trained.critic, tmp_path / "critic")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o755
