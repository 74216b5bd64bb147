"""`agentmc export`: Parquet / CSV tables of a run, and optional MLflow / W&B tracking."""

from __future__ import annotations

import csv
import json
import sys

import pytest

from agentmc.cli.main import main
from agentmc.data.store import RunStore
from agentmc.eval.tracking import metric_key, run_metrics


@pytest.fixture(scope="module")
def amc_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "amc"
    args = ["--out", str(out), "--method", "amc", "--particles", "3", "--n-tasks", "2"]
    assert main(["run", *args, "--no-progress"]) == 0
    return out


def read_csv(path):
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_csv_has_one_row_per_task_per_step_and_per_particle(amc_run, tmp_path, capsys):
    out = tmp_path / "tables"
    assert main(["export", str(amc_run), "--format", "csv", "--out", str(out)]) == 0
    assert "results.csv (2 rows)" in capsys.readouterr().out
    records = [r["data"] for r in RunStore.open(amc_run).records("episode")]
    results = read_csv(out / "results.csv")
    assert [(r["method"], r["task_id"]) for r in results] == [
        (d["method"], d["task_id"]) for d in records
    ]
    assert [int(r["calls"]) for r in results] == [d["calls"] for d in records]
    assert {r["particles"] for r in results} == {"3"}
    steps = read_csv(out / "steps.csv")
    assert len(steps) == sum(d["steps"] for d in records)
    first = records[0]["episode"]["trajectory"]["turns"]
    assert [s["action"] for s in steps[: len(first)]] == [t["action"] for t in first]
    particles = read_csv(out / "particles.csv")
    recorded = [len(d["episode"]["diagnostics"]["particles"]) for d in records]
    assert len(particles) == 3 * sum(recorded)  # one row per particle per recorded step
    resampled = [p for p in particles if p["resampled"] == "True"]
    assert resampled and all(p["ancestor"] in ("0", "1", "2") for p in resampled)


def test_parquet_round_trips_through_pandas(amc_run, tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    assert main(["export", str(amc_run), "--out", str(tmp_path)]) == 0
    results = pd.read_parquet(tmp_path / "results.parquet")
    assert list(results["task_id"]) == [
        r["data"]["task_id"] for r in RunStore.open(amc_run).records("episode")
    ]
    assert results["success"].dtype == bool and results["calls"].dtype.kind == "i"
    particles = pd.read_parquet(tmp_path / "particles.parquet")
    assert set(particles["particle"]) == {0, 1, 2}
    checkpoint = particles[particles["checkpoint"]]
    assert checkpoint["log_weight"].notna().all()
    steps = pd.read_parquet(tmp_path / "steps.parquet")
    assert (steps.groupby(["method", "task_id"])["step"].min() == 1).all()


def test_rollout_runs_export_their_trajectories(tmp_path):
    out = tmp_path / "rollout"
    assert main(["rollout", "--out", str(out), "--n-tasks", "2", "--no-progress"]) == 0
    assert main(["export", str(out), "--format", "csv"]) == 0
    results = read_csv(out / "export" / "results.csv")
    assert len(results) == 2 and results[0]["method"] == "noisy-expert"
    assert not (out / "export" / "particles.csv").exists()  # no SMC here


def test_bad_input_is_one_line_and_writes_nothing(amc_run, tmp_path, capsys, monkeypatch):
    assert main(["export", str(tmp_path / "nothing")]) == 2
    assert "not an agentmc run directory" in capsys.readouterr().err
    assert main(["export", str(amc_run), "--format", "xlsx"]) == 2
    assert "\n" not in capsys.readouterr().err.strip()
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # pyarrow absent
    assert main(["export", str(amc_run), "--out", str(tmp_path / "t")]) == 2
    err = capsys.readouterr().err.strip()
    assert "agentmc[export]" in err and "\n" not in err
    assert not (tmp_path / "t").exists()


@pytest.mark.parametrize("tracker", ["mlflow", "wandb"])
def test_tracker_absent_is_a_clear_error_before_any_work(
    amc_run, tmp_path, capsys, monkeypatch, tracker
):
    monkeypatch.setitem(sys.modules, tracker, None)  # the library is not installed
    out = tmp_path / "t"
    args = ["export", str(amc_run), "--format", "csv", "--out", str(out), "--track", tracker]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert f"agentmc[{tracker}]" in err and "\n" not in err
    assert not out.exists()
    run = tmp_path / "run"
    assert main(["run", "--out", str(run), "--n-tasks", "1", "--track", tracker]) == 2
    assert not run.exists()  # refused before the run started


def test_metrics_name_every_method_with_tracker_safe_keys(amc_run):
    metrics = run_metrics(RunStore.open(amc_run))
    assert metrics[metric_key("amc@reward-k3", "tasks")] == 2.0
    assert 0.0 <= metrics[metric_key("amc@reward-k3", "success")] <= 1.0
    assert all(json.dumps(v) for v in metrics.values())
    assert metric_key("single[trained:runs/g2po]", "success") == "single_trained_runs/g2po_/success"


def test_mlflow_logs_config_metrics_and_report_to_a_local_store(
    amc_run, tmp_path, monkeypatch, capsys
):
    mlflow = pytest.importorskip("mlflow")
    uri = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "false")  # MLflow 3 refuses a folder store
    args = ["export", str(amc_run), "--format", "csv", "--out", str(tmp_path / "t")]
    assert main([*args, "--track", "mlflow"]) == 2
    err = capsys.readouterr().err.strip()
    assert "mlflow logging failed" in err and "is intact" in err and "\n" not in err
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    assert main(["report", str(amc_run)]) == 0
    assert main([*args, "--track", "mlflow", "--track-project", "agentmc-test"]) == 0
    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("agentmc-test")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.params["command"] == "run"
    assert run.data.params["config.method"] == "amc@reward-k3"
    assert run.data.metrics[metric_key("amc@reward-k3", "tasks")] == 2.0
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"report.html", "report.md", "run.json", "tasks"} <= artifacts


def test_run_and_eval_log_to_mlflow_when_asked(tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    uri = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    common = ["--n-tasks", "1", "--no-progress", "--track", "mlflow", "--track-project", "p"]
    assert main(["run", "--out", str(tmp_path / "run"), "--method", "single", *common]) == 0
    args = ["--out", str(tmp_path / "eval"), "--methods", "single", "bon:2"]
    assert main(["eval", *args, *common]) == 0
    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("p").experiment_id])
    assert sorted(r.data.params["command"] for r in runs) == ["eval", "run"]
    logged_eval = next(r for r in runs if r.data.params["command"] == "eval")
    assert metric_key("bon@reward-k2", "success") in logged_eval.data.metrics
    files = {a.path for a in client.list_artifacts(logged_eval.info.run_id)}
    assert {"report.html", "tasks"} <= files
