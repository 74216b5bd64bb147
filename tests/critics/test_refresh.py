from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from agentmc.critics.fit import FitConfig, fit
from agentmc.critics.hashed import HashedConfig, HashedCritic
from agentmc.critics.refresh import refresh
from agentmc.critics.targets import make_examples
from agentmc.errors import ConfigError, DataError

SMALL = HashedConfig(n_features=2**12)


@pytest.fixture(scope="module")
def parent(make_trajectories):
    return fit(make_trajectories(30, 4, seed=1), FitConfig(seed=0), SMALL).critic


def test_refresh_holds_out_only_unseen_tasks_and_records_lineage(parent, make_trajectories):
    new_data = make_trajectories(50, 4, seed=5)  # tasks 0-29 seen by the parent, 30-49 not
    result = refresh(parent, new_data, parent_path="critics/v1", source="runs/day2")
    seen = set(parent.provenance.train_tasks) | set(parent.provenance.val_tasks)
    assert result.heldout_tasks and not set(result.heldout_tasks) & seen
    assert set(result.train_tasks) & seen  # seen tasks may be trained on again
    provenance = result.critic.provenance
    assert provenance.version == 2 and provenance.parent["path"] == "critics/v1"
    assert [entry["version"] for entry in provenance.lineage] == [1, 2]
    assert provenance.lineage[-1]["data"] == "runs/day2"
    assert set(provenance.val_tasks) >= set(result.heldout_tasks)
    assert provenance.metrics["refresh"]["heldout_tasks"] == len(result.heldout_tasks)
    assert "within_task_auroc" in result.parent_metrics
    # Same states for both: the comparison is paired.
    assert result.metrics["n_states"] == result.parent_metrics["n_states"]


def test_warm_start_pulls_towards_the_parent_not_towards_zero(parent, make_trajectories):
    new_data = make_trajectories(50, 4, seed=5)[30 * 4 :]
    stiff = HashedCritic(
        dataclasses.replace(SMALL, strengths=(1e9,)),
        kind=parent.kind,
        coef=parent.coef,
        intercept=parent.intercept,
        bounds=parent.bounds,
        strength=parent.strength,
        provenance=parent.provenance,
    )
    result = refresh(stiff, new_data)
    states = make_examples(new_data).histories[:50]
    # An infinitely stiff prior keeps the parent's ranking (only the intercept moves);
    # a penalty towards zero would flatten every prediction to a constant instead.
    ours, theirs = result.critic.values(states), parent.values(states)
    assert np.ptp(ours) > 0.5 * np.ptp(theirs)
    assert np.corrcoef(ours, theirs)[0, 1] > 0.99


def test_refresh_refuses_what_it_cannot_warm_start(parent, make_trajectories):
    with pytest.raises(DataError, match="never saw"):
        refresh(parent, make_trajectories(30, 4, seed=9))
    success = fit(make_trajectories(30, 4, seed=1), FitConfig(target="success"), SMALL)
    with pytest.raises(ConfigError, match="ridge"):
        refresh(success.critic, make_trajectories(50, 4, seed=5)[120:])
    with pytest.raises(ConfigError, match="hashed"):
        refresh(object(), make_trajectories(50, 4, seed=5)[120:])
