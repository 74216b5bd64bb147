"""The report's per-task table, task pages and critic header, checked in a real browser.

The browser test renders the pages with headless Chromium (Debian's
``/usr/bin/chromium``; ``.ci/run`` installs it) and inspects the DOM it built,
so what is checked is what a reader's browser shows, not just our strings.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from agentmc.critics.artifact import save
from agentmc.critics.fit import FitConfig, fit
from agentmc.data.store import RunStore
from agentmc.envs import make, task_ids
from agentmc.eval.harness import Entry, Evaluation, Plan, build_report
from agentmc.eval.pages import task_slug
from agentmc.eval.report import critic_details, grid_order, write_report
from agentmc.policies import make_policy
from agentmc.rollout import rollout

CHROMIUM = Path("/usr/bin/chromium")
METHODS = ("single", "bon:3", "amc:4")


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    """A small evaluation with a trained critic, and its report."""
    root = tmp_path_factory.mktemp("report")
    policy = make_policy("noisy-expert")
    rng = np.random.default_rng(0)
    prior = [
        rollout(make("textcraft", task_id=t), policy, rng)
        for t in task_ids("textcraft", "train")[:12]
    ]
    critic_path = save(fit(prior, FitConfig(backend="hashed")).critic, root / "critic")
    from agentmc.critics.artifact import load

    critic = load(critic_path, env_id="textcraft")
    tasks = tuple(task_ids("textcraft", "test")[:3])
    plan = Plan(
        entries=tuple(Entry.parse(m) for m in METHODS), split="test", task_ids=tasks, seed=3
    )
    store = RunStore.create_or_resume(
        root / "run",
        command="eval",
        seed=3,
        config={"methods": [e.label for e in plan.entries], "critic": str(critic_path)},
    )
    run = Evaluation(
        plan,
        store,
        make_env=lambda t: make("textcraft", task_id=t),
        make_policy=lambda spec: policy,
        critic=critic,
        workers=2,
        progress=False,
    )
    asyncio.run(run.run())
    write_report(store.path, build_report(store, np.random.default_rng(0), critic=critic))
    return store.path, tasks


def test_report_links_every_task_to_a_self_contained_page(report_dir):
    out, tasks = report_dir
    html = (out / "report.html").read_text()
    for task in tasks:
        href = f"tasks/{task_slug(task)}.html"
        assert f"href='{href}'" in html
        page = (out / href).read_text()
        assert not re.search(r"(src|href)=['\"]?(https?:|//)", page)  # opens offline
        assert "<script" not in page
        assert page.count("<section class='method'") == len(METHODS)
        assert page.count("<svg class='genealogy'") == 2  # bon and amc, not single
    assert "](tasks/" in (out / "report.md").read_text()
    md_rows = [line for line in (out / "report.md").read_text().splitlines() if "tasks/" in line]
    assert len(md_rows) == len(tasks)


def test_header_names_the_critic(report_dir):
    out, _ = report_dir
    html = (out / "report.html").read_text()
    critic = re.search(r"<li class='detail-critic'>(.*?)</li>", html).group(1)
    assert "hashed backend" in critic and "agentmc " in critic and "fingerprint" in critic
    assert "validation metrics" in critic and "none recorded" not in critic


def test_critic_details_of_a_missing_artifact_says_so(tmp_path):
    assert critic_details(None) is None
    assert "cannot read" in critic_details(tmp_path / "gone")["error"]


def test_grid_orders_tasks_from_solved_by_all_to_solved_by_none():
    rows = [
        {"task_id": t, "method": m, "success": s}
        for t, outcomes in {"1": (0, 0), "2": (1, 0), "10": (1, 1), "3": (0, 1)}.items()
        for m, s in zip(("a", "b"), outcomes, strict=True)
    ]
    assert grid_order(rows, ["a", "b"]) == ["10", "2", "3", "1"]


class Elements(HTMLParser):
    """Collect (tag, classes, attributes) of every element in a DOM dump."""

    def __init__(self):
        super().__init__()
        self.found: list[tuple[str, set[str], dict[str, str]]] = []

    def handle_starttag(self, tag, attrs):
        attributes = {k: v or "" for k, v in attrs}
        self.found.append((tag, set(attributes.get("class", "").split()), attributes))

    def having(self, tag, cls):
        return [a for t, c, a in self.found if t == tag and cls in c]


def render(path: Path) -> Elements:
    """The DOM that headless Chromium builds for ``path``."""
    done = subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            f"--user-data-dir={path.parent / '.chromium-profile'}",
            "--dump-dom",
            path.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "<html" in done.stdout
    elements = Elements()
    elements.feed(done.stdout)
    return elements


@pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium; "
    ".ci/run installs it)",
)
def test_pages_render_in_a_browser_with_the_genealogy(report_dir, tmp_path):
    out, tasks = report_dir
    report = render(out / "report.html")
    links = report.having("a", "task-link")
    assert [a["href"] for a in links] == [f"tasks/{task_slug(t)}.html" for t in tasks]
    assert report.having("table", "per-task") and report.having("li", "detail-critic")
    for link in links:
        page = render(out / link["href"])
        genealogies = page.having("svg", "genealogy")
        assert len(genealogies) == 2
        particles = page.having("circle", "particle")
        # bon:3 and amc:4 draw K particles at every step they ran
        assert len(particles) >= 3 + 4
        assert {p["data-slot"] for p in particles} >= {"0", "1", "2", "3"}
        assert page.having("path", "edge")
        assert page.having("circle", "selected") and page.having("path", "selected")
        assert page.having("text", "selected-label")
        assert page.having("text", "critic-value")  # the amc run's critic values
        assert page.having("table", "turns")
    # resampling happened somewhere (amc:4 resamples every step until particles finish)
    every = [render(out / a["href"]) for a in links]
    assert any(p.having("g", "resample") for p in every)


def test_terminal_table_prints_bracketed_labels_verbatim(capsys):
    from agentmc.cli.eval import print_report
    from agentmc.eval.report import Report
    from agentmc.eval.summary import summarize

    rows = [
        {"method": m, "selection": "none", "split": "test", "task_id": str(t), "success": True,
         "return": 1.0, "steps": 3, "calls": 3, "tokens": 0, "cost": 0.0, "wall_s": 0.1}
        for m in ("single", "single[trained:g2po]", "single[bold]")
        for t in range(2)
    ]  # fmt: skip
    summaries = summarize(rows, np.random.default_rng(0))
    print_report(Report("t [x]", summaries, [], rows))
    out = capsys.readouterr().out
    assert "single[trained:g2po]" in out and "single[bold]" in out and "t [x]" in out
