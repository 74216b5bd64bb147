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
