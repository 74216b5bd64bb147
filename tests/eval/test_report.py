import re

import numpy as np
import pytest

from agentmc.eval.report import Report, write_report
from agentmc.eval.summary import compare, summarize


def fake_rows(
    rng,
    methods=(
        ("single", "none", 0.4),
        ("bon-k4", "reward", 0.6),
        ("bon-k8", "reward", 0.7),
        ("amc-k4", "critic", 0.55),
        ("amc-k8", "critic", 0.65),
    ),
    n_tasks=30,
):
    rows = []
    for method, selection, rate in methods:
        for task in range(n_tasks):
            success = bool(rng.random() < rate)
            rows.append(
                {
                    "method": method,
                    "selection": selection,
                    "split": "test",
                    "task_id": str(task),
                    "success": success,
                    "return": float(success),
                    "steps": 6,
                    "calls": 6 * (1 if method == "single" else int(method[-1])),
                    "tokens": 100,
                    "cost": None if method == "amc-k8" else 0.01,
                    "wall_s": 0.5,
                    "synthetic": True,
                }
            )
    return rows


def test_report_is_self_contained_and_labels_selection_and_synthetic(tmp_path):
    rng = np.random.default_rng(0)
    rows = fake_rows(rng)
    summaries = summarize(rows, rng)
    report = Report(
        title="Demo",
        summaries=summaries,
        rows=rows,
        comparisons=[compare(rows, "amc-k8", "bon-k8", rng)],
        details={"split": "test", "policy": "noisy-expert"},
        notes=["AMC fell back to Best-of-N: critic did not beat it on validation."],
        ess={"amc-k4": [[1.0, 0.6, 0.4], [1.0, 0.8]]},
        calibration=(rng.random(100), (rng.random(100) < 0.5).astype(float)),
    )
    md, html = write_report(tmp_path, report)
    text = html.read_text()
    for png in [
        "success_vs_k.png",
        "success_vs_cost.png",
        "ess.png",
        "calibration.png",
        "tasks.png",
    ]:
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert png in md.read_text()
    assert text.count("data:image/png;base64,") == 5
    assert not re.search(r"(src|href)=['\"]?(https?:|//)", text)  # opens offline
    assert "(synthetic)" in text and "simulator planning" in text and "fell back" in text
    amc8 = next(s for s in summaries if s.method == "amc-k8")
    assert amc8.cost.n == 0 and "unknown" in md.read_text()  # unknown cost is not zero


@pytest.mark.parametrize(
    ("label", "family"),
    [
        ("amc@critic-k8", ("amc@critic", 8.0)),
        ("amc@critic-k16-beta0.1", ("amc@critic-beta0.1", 16.0)),
        ("single", ("single", None)),
        ("amc→bon@critic-k4", ("amc→bon@critic", 4.0)),
    ],
)
def test_method_family_and_k(label, family):
    from agentmc.eval.report import _family

    assert _family(label) == family
