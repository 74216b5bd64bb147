"""Markdown and self-contained HTML reports with plots.

``write_report(out_dir, report)`` writes ``report.md``, ``report.html`` (PNG
plots embedded as data URIs, so it opens in a browser with no network) and the
PNGs themselves, plus one page per task under ``tasks/`` (see
:mod:`agentmc.eval.pages`: every method's outcome, the SMC genealogy of its
particles as inline SVG, the selected trajectory), linked from the report's
per-task table. The header names the critic (backend, version, training data,
validation metrics). Plots, each drawn only when the data for it exists:

- success vs K per method family (with 95% intervals);
- success vs policy calls per task (the cost frontier; methods with the same
  cost are spread apart and labelled, so none hides another);
- ESS / K over steps for SMC methods;
- critic calibration (reliability diagram);
- a per-task win/loss grid (tasks x methods), tasks ordered from solved by
  every method to solved by none.

Every table states the split and the selection mode of each method; results of
synthetic stand-in policies are labelled as such.
"""

from __future__ import annotations

import base64
import html
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agentmc.errors import require
from agentmc.eval.pages import STYLE, task_href, task_table, task_table_html, write_task_pages
from agentmc.eval.summary import Comparison, MethodSummary, Row

SELECTION_MEANING = {
    "reward": "the environment's true final reward picks the answer (simulator planning; "
    "comparable to pass@K, not deployable)",
    "weight": "sampled from the final SMC weights (deployable: no true reward used)",
    "critic": "highest critic value (deployable: no true reward used)",
    "first": "the first sample (deployable)",
    "none": "a single run, nothing to select",
}


@dataclass
class Report:
    """Everything a report shows."""

    title: str
    summaries: list[MethodSummary]
    comparisons: list[Comparison]
    rows: list[Row]
    details: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    ess: dict[str, list[list[float]]] = field(default_factory=dict)
    calibration: tuple[np.ndarray, np.ndarray] | None = None
    records: list[dict[str, Any]] = field(default_factory=list)
    """Result rows with the full episode under ``"episode"`` (for the per-task pages)."""
    critic: dict[str, Any] | None = None
    """What the critic was: backend, version, data, metrics (see :func:`critic_details`)."""


def critic_details(path: str | Path | None) -> dict[str, Any] | None:
    """The critic's identity from its artifact's ``critic.json``, for report headers.

    Returns:
        ``None`` without a critic; otherwise ``path``, ``backend``, ``version`` (agentmc
        version and creation time), ``target``, ``data`` (fingerprint, trajectories,
        synthetic or not) and ``metrics`` (validation metrics at training time). A missing
        or unreadable artifact gives ``{"path", "error"}``.
    """
    import json

    if path is None:
        return None
    meta_path = Path(path) / "critic.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        return {"path": str(path), "error": f"cannot read {meta_path}: {error}"}
    provenance = meta.get("provenance") or {}
    fingerprint = str(provenance.get("data_fingerprint") or "?")
    data = f"fingerprint {fingerprint[:12]}, {provenance.get('n_trajectories', '?')} trajectories"
    if provenance.get("synthetic_data"):
        data += " (from a synthetic stand-in policy)"
    metrics = provenance.get("metrics") or {}
    return {
        "path": str(path),
        "backend": str(meta.get("backend", "?")),
        "version": (
            f"agentmc {meta.get('agentmc_version', '?')}, trained {meta.get('created', '?')}"
        ),
        "target": str(provenance.get("target", "?")),
        "data": data,
        "metrics": {
            str(k): v for k, v in metrics.items() if isinstance(v, int | float | str) or v is None
        },
    }


#: Validation metrics the header shows first (within-task ranking is what SMC uses).
HEADLINE_METRICS = ("within", "pairwise", "auroc", "spearman", "mse", "brier", "calibration")


def critic_line(critic: dict[str, Any], limit: int = 8) -> str:
    """The critic in one line, for the report header.

    At most ``limit`` numeric validation metrics are named, the ranking ones first.
    """
    if "error" in critic:
        return f"{critic['path']} ({critic['error']})"
    numeric = {
        k: v
        for k, v in critic["metrics"].items()
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    }

    def rank(name: str) -> int:
        return next((i for i, key in enumerate(HEADLINE_METRICS) if key in name), 99)

    names = sorted(numeric, key=lambda n: (rank(n), n))
    shown = [f"{n} {numeric[n]:.3g}" for n in names[:limit]]
    if len(names) > limit:
        shown.append(f"and {len(names) - limit} more in critic.json")
    metrics = ", ".join(shown)
    return (
        f"{critic['backend']} backend, target {critic['target']}; {critic['version']}; "
        f"{critic['data']}; validation metrics: {metrics or 'none recorded'} ({critic['path']})"
    )


def _fmt(value: float, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "unknown"
    if math.isinf(value):
        return "inf"
    return f"{value:.{digits}f}"


def _spend(estimate: Any, digits: int) -> str:
    return "0" if estimate is None else _fmt(estimate.value, digits)


def _spends(summaries: Sequence[MethodSummary], name: str) -> bool:
    """Whether some method spent anything on ``name`` (a critic cost column)."""
    return any(getattr(s, name) is not None and getattr(s, name).value > 0 for s in summaries)


def summary_table(summaries: Sequence[MethodSummary]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the main comparison table.

    Agent calls, and when any method spent them, LLM-judge calls, their total and the
    critic's CPU seconds, each per task.
    """
    judged, timed = _spends(summaries, "judge_calls"), _spends(summaries, "critic_cpu_s")
    header = [
        "method",
        "selection",
        "split",
        "tasks",
        "success % [95% CI]",
        "mean return",
        "steps to success",
        "agent calls/task",
        *(["judge calls/task", "total calls/task"] if judged else []),
        *(["critic CPU s/task"] if timed else []),
        "tokens/task",
        "cost/task $",
        "wall s/task",
        "cost/success $",
        "failed",
    ]
    body = []
    for s in summaries:
        label = s.method + (" (synthetic)" if s.synthetic else "")
        body.append(
            [
                label,
                s.selection,
                s.split,
                str(s.n_tasks),
                s.success.format(percent=True, digits=1),
                s.mean_return.format(),
                _fmt(s.steps_to_success.value, 1),
                _fmt(s.calls.value, 1),
                *([_spend(s.judge_calls, 1), _spend(s.total_calls, 1)] if judged else []),
                *([_spend(s.critic_cpu_s, 3)] if timed else []),
                _fmt(s.tokens.value, 0),
                _fmt(s.cost.value, 4),
                _fmt(s.wall_s.value, 2),
                _fmt(s.cost_per_success, 4),
                str(s.failures),
            ]
        )
    return header, body


def comparison_table(comparisons: Sequence[Comparison]) -> tuple[list[str], list[list[str]]]:
    header = ["A vs B", "tasks", "success diff A-B (pp) [95% CI]", "only A", "only B", "McNemar p"]
    body = [
        [
            f"{c.a} vs {c.b}",
            str(c.n_tasks),
            c.difference.format(percent=True, digits=1),
            str(c.test.only_a),
            str(c.test.only_b),
            f"{c.test.p_value:.3g}",
        ]
        for c in comparisons
    ]
    return header, body


def _markdown_table(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


def _html_table(header: list[str], body: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in body
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


# -- plots --------------------------------------------------------------------------------


def _family(method: str) -> tuple[str, float | None]:
    """Split "amc@critic-k8-beta0.1" into ("amc@critic-beta0.1", 8.0); no K gives (name, None)."""
    match = re.search(r"-k(\d+)", method)
    if match is None:
        return method, None
    return method[: match.start()] + method[match.end() :], float(match.group(1))


def _save(plt, fig, ax, path: Path, *, legend_size: float | None = None) -> bool:
    """Legend, grid, tight layout; write ``path`` and free the figure."""
    ax.legend(fontsize=legend_size)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _plot_success_vs_k(plt, summaries, path: Path) -> bool:
    families: dict[str, list[tuple[float, MethodSummary]]] = {}
    for s in summaries:
        family, k = _family(s.method)
        families.setdefault(family, []).append((1.0 if k is None else k, s))
    if not any(len(v) > 1 for v in families.values()):
        return False
    fig, ax = plt.subplots(figsize=(6, 4))
    for family, points in families.items():
        points.sort(key=lambda p: p[0])
        ks = [p[0] for p in points]
        values = [100 * p[1].success.value for p in points]
        lows = [100 * (p[1].success.value - p[1].success.low) for p in points]
        highs = [100 * (p[1].success.high - p[1].success.value) for p in points]
        errors = np.nan_to_num(np.array([lows, highs]))
        ax.errorbar(ks, values, yerr=errors, marker="o", capsize=3, label=family)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("K (particles / samples)")
    ax.set_ylabel("success % (95% CI)")
    return _save(plt, fig, ax, path)


def _dodge(
    xs: Sequence[float], *, log: bool, spread: float = 0.06
) -> tuple[list[float], list[int]]:
    """Spread points that share (nearly) the same x so that none hides another.

    Points within ``spread`` (relative on a log axis, of the range otherwise) of each other
    form a group, and the group is fanned out symmetrically around its x.

    Returns:
        The new x of every point, and its rank within its group (to stagger labels).

    Example:
        >>> xs, ranks = _dodge([80.0, 10.0, 81.0], log=True)
        >>> xs[1], ranks, xs[0] < xs[2]
        (10.0, [0, 0, 1], True)
    """
    values = [float(v) for v in xs]
    if not values:
        return [], []
    order = sorted(range(len(values)), key=lambda i: values[i])
    span = (max(values) - min(values)) or 1.0
    groups: list[list[int]] = [[order[0]]]
    for i in order[1:]:
        last = values[groups[-1][-1]]
        close = (
            abs(values[i] - last) <= spread * max(abs(last), 1e-9)
            if log
            else abs(values[i] - last) <= spread * span
        )
        if close:
            groups[-1].append(i)
        else:
            groups.append([i])
    out = list(values)
    ranks = [0] * len(values)
    for group in groups:
        for rank, i in enumerate(group):
            offset = (rank - (len(group) - 1) / 2) * spread
            out[i] = values[i] * (1 + offset) if log else values[i] + offset * span
            ranks[i] = rank
    return out, ranks


MARKERS = "osD^v<>pPX*h"


def _plot_cost(plt, summaries, path: Path) -> bool:
    points = [s for s in summaries if math.isfinite(s.calls.value)]
    if not points:
        return False
    fig, ax = plt.subplots(figsize=(7, 4.5))
    log = min(s.calls.value for s in points) > 0
    xs, ranks = _dodge([s.calls.value for s in points], log=log)
    middle = float(np.median(xs))
    for index, (s, x) in enumerate(zip(points, xs, strict=True)):
        y = 100 * s.success.value
        ax.errorbar(
            x,
            y,
            yerr=np.nan_to_num(
                [
                    [100 * (s.success.value - s.success.low)],
                    [100 * (s.success.high - s.success.value)],
                ]
            ),
            marker=MARKERS[index % len(MARKERS)],
            capsize=3,
            label=f"{s.method} ({s.selection})",
        )
        right = x >= middle  # labels of the right-hand points go to their left
        ax.annotate(
            s.method,
            (x, y),
            textcoords="offset points",
            xytext=(-10 if right else 10, 8 + 11 * ranks[index]),
            ha="right" if right else "left",
            fontsize=7,
            arrowprops={"arrowstyle": "-", "lw": 0.5, "color": "grey"},
        )
    if log:
        ax.set_xscale("log")
    ax.set_xlabel("policy calls per task (points with equal cost are spread apart)")
    ax.set_ylabel("success % (95% CI)")
    return _save(plt, fig, ax, path, legend_size=7)


def _plot_ess(plt, ess: dict[str, list[list[float]]], path: Path) -> bool:
    if not ess:
        return False
    fig, ax = plt.subplots(figsize=(6, 4))
    for method, traces in ess.items():
        length = max(len(t) for t in traces)
        grid = np.full((len(traces), length), np.nan)
        for i, trace in enumerate(traces):
            grid[i, : len(trace)] = trace
        ax.plot(np.arange(1, length + 1), np.nanmean(grid, axis=0), marker=".", label=method)
    ax.set_xlabel("step")
    ax.set_ylabel("mean ESS / K (before resampling)")
    ax.set_ylim(0, 1.05)
    return _save(plt, fig, ax, path)


def _plot_calibration(plt, calibration, path: Path) -> bool:
    if calibration is None or len(calibration[0]) == 0:
        return False
    predicted, outcome = (np.asarray(x, dtype=float) for x in calibration)
    edges = np.linspace(predicted.min(), predicted.max() + 1e-9, 11)
    index = np.clip(np.digitize(predicted, edges) - 1, 0, 9)
    xs, ys, ns = [], [], []
    for b in range(10):
        mask = index == b
        if mask.any():
            xs.append(predicted[mask].mean())
            ys.append(outcome[mask].mean())
            ns.append(int(mask.sum()))
    fig, ax = plt.subplots(figsize=(5, 4))
    low, high = min(edges[0], 0.0), max(edges[-1], 1.0)
    ax.plot([low, high], [low, high], "--", color="grey", label="perfect")
    ax.scatter(xs, ys, s=[10 + 3 * n for n in ns], label="bins (size = count)")
    ax.set_xlabel("critic value")
    ax.set_ylabel("observed outcome")
    return _save(plt, fig, ax, path)


def grid_order(rows: Sequence[Row], methods: Sequence[str]) -> list[str]:
    """Tasks in win/loss-grid order: solved by the most methods first.

    Ties go by the first method that differs (so each method's wins and losses form
    blocks), then by id.

    Example:
        >>> rows = [{"task_id": t, "method": m, "success": s} for t, m, s in
        ...         [("1", "a", 0), ("1", "b", 0), ("2", "a", 1), ("2", "b", 1),
        ...          ("3", "a", 0), ("3", "b", 1)]]
        >>> grid_order(rows, ["a", "b"])
        ['2', '3', '1']
    """
    from agentmc.data.store import natural_key

    outcome: dict[str, dict[str, float]] = {}
    for r in rows:
        if r["method"] in methods:
            outcome.setdefault(str(r["task_id"]), {})[r["method"]] = float(r["success"])

    def key(task: str) -> tuple:
        solved = outcome[task]
        pattern = tuple(-solved.get(m, -1.0) for m in methods)
        return (-sum(v > 0 for v in solved.values()), pattern, natural_key(task))

    return sorted(outcome, key=key)


def _plot_grid(plt, rows: Sequence[Row], methods: list[str], path: Path) -> bool:
    tasks = grid_order(rows, methods)
    if not tasks or not methods:
        return False
    grid = np.full((len(methods), len(tasks)), np.nan)
    for r in rows:
        if r["method"] in methods:
            grid[methods.index(r["method"]), tasks.index(str(r["task_id"]))] = float(r["success"])
    fig, ax = plt.subplots(figsize=(max(6, 0.12 * len(tasks) + 2), 0.45 * len(methods) + 1.2))
    cmap = plt.get_cmap("RdYlGn").with_extremes(bad="lightgrey")
    ax.imshow(
        np.ma.masked_invalid(grid),
        aspect="auto",
        cmap=cmap,
        vmin=0,
        vmax=1,
        interpolation="nearest",
    )
    ax.set_yticks(range(len(methods)), methods)
    step = max(1, len(tasks) // 25)
    ax.set_xticks(range(0, len(tasks), step), tasks[::step], rotation=90, fontsize=6)
    ax.set_xlabel(
        "task, most-solved first (green = solved, red = failed, grey = not run)", fontsize=8
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def draw_plots(out_dir: Path, report: Report) -> list[tuple[str, Path]]:
    """Write the PNG plots; returns (caption, path) for each plot drawn."""
    matplotlib = require("matplotlib", "report")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = [s.method for s in report.summaries]
    wanted = [
        (
            "Success vs K",
            "success_vs_k.png",
            lambda p: _plot_success_vs_k(plt, report.summaries, p),
        ),
        ("Success vs cost", "success_vs_cost.png", lambda p: _plot_cost(plt, report.summaries, p)),
        ("ESS over steps", "ess.png", lambda p: _plot_ess(plt, report.ess, p)),
        (
            "Critic calibration",
            "calibration.png",
            lambda p: _plot_calibration(plt, report.calibration, p),
        ),
        (
            "Per-task wins and losses",
            "tasks.png",
            lambda p: _plot_grid(plt, report.rows, methods, p),
        ),
    ]
    drawn = []
    for caption, name, draw in wanted:
        path = out_dir / name
        if draw(path):
            drawn.append((caption, path))
    return drawn


# -- documents ----------------------------------------------------------------------------


def _selection_lines(summaries: Sequence[MethodSummary]) -> list[str]:
    modes = sorted({s.selection for s in summaries})
    return [f"- `{m}`: {SELECTION_MEANING.get(m, m)}" for m in modes]


def write_report(out_dir: str | Path, report: Report) -> tuple[Path, Path]:
    """Write ``report.md``, ``report.html``, the plots and ``tasks/*.html`` into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = draw_plots(out_dir, report)
    header, body = summary_table(report.summaries)
    cheader, cbody = comparison_table(report.comparisons)
    info = dict(report.details)
    info["critic"] = (
        "none (zero critic)" if report.critic is None else critic_line(report.critic)
    )
    details = [f"- **{k}**: {v}" for k, v in info.items()]
    synthetic = any(s.synthetic for s in report.summaries)
    methods = [s.method for s in report.summaries]
    pages = write_task_pages(out_dir, report.records, methods, report.title)
    theader, trows = task_table(report.records, methods)

    md = [f"# {report.title}", ""]
    if synthetic:
        md += ["> Results marked *(synthetic)* come from a stand-in policy, not a real LLM.", ""]
    md += details + ["", "## Results", "", _markdown_table(header, body), ""]
    md += ["Selection modes:", *_selection_lines(report.summaries), ""]
    if cbody:
        md += ["## Paired comparisons (same tasks)", "", _markdown_table(cheader, cbody), ""]
    if report.notes:
        md += ["## Notes", "", *[f"- {n}" for n in report.notes], ""]
    if trows:
        md += [
            "## Per task",
            "",
            "Each task links to its page: every method's particles (SMC genealogy) and the "
            "selected trajectory.",
            "",
            _markdown_table(
                theader,
                [[f"[{t}]({task_href(t)})", *cells] for t, cells in trows],
            ),
            "",
        ]
    for caption, path in plots:
        md += [f"## {caption}", "", f"![{caption}]({path.name})", ""]
    md_path = out_dir / "report.md"
    md_path.write_text("\n".join(md), encoding="utf-8")

    figures = "".join(
        f"<h2>{html.escape(caption)}</h2><img alt='{html.escape(caption)}' "
        f"src='data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()}'/>"
        for caption, path in plots
    )
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(report.title)}"
        f"</title><style>{STYLE}</style></head><body><h1>{html.escape(report.title)}</h1>"
    ]
    if synthetic:
        parts.append(
            "<p class='warn'>Results marked <em>(synthetic)</em> come from a stand-in "
            "policy, not a real LLM.</p>"
        )
    parts.append(
        "<ul>"
        + "".join(
            f"<li class='detail-{html.escape(str(k))}'><b>{html.escape(str(k))}</b>: "
            f"{html.escape(str(v))}</li>"
            for k, v in info.items()
        )
        + "</ul>"
    )
    parts.append("<h2>Results</h2>" + _html_table(header, body))
    parts.append(
        "<p>Selection modes:</p><ul>"
        + "".join(
            f"<li><code>{html.escape(m)}</code>: {html.escape(SELECTION_MEANING.get(m, m))}</li>"
            for m in sorted({s.selection for s in report.summaries})
        )
        + "</ul>"
    )
    if cbody:
        parts.append("<h2>Paired comparisons (same tasks)</h2>" + _html_table(cheader, cbody))
    if report.notes:
        parts.append(
            "<h2>Notes</h2><ul>"
            + "".join(f"<li>{html.escape(n)}</li>" for n in report.notes)
            + "</ul>"
        )
    if trows:
        parts.append(
            f"<h2>Per task</h2><p>{len(pages)} task pages: click a task for every method's "
            "particles (SMC genealogy) and the selected trajectory.</p>"
            + task_table_html(report.records, methods)
        )
    parts.append(figures + "</body></html>")
    html_path = out_dir / "report.html"
    html_path.write_text("".join(parts), encoding="utf-8")
    return md_path, html_path
