"""Per-task pages of a report: what every method did on one task, with its SMC genealogy.

``write_task_pages(out_dir, records, methods)`` writes ``tasks/<task>.html``,
one self-contained page per task (inline CSS and SVG, no script, no external
resource): for each method its outcome, calls, tokens and cost, the SMC
genealogy of its particles (:mod:`agentmc.eval.genealogy`) and the selected
trajectory turn by turn. :func:`task_table` is the report's per-task table
(method × task: outcome, calls, cost), each task linking to its page.

Records are the run store's result rows with the full episode under
``"episode"`` (what ``agentmc eval``, ``demo`` and ``run`` write).

Example:
    >>> task_slug("17"), task_slug("a/b c")
    ('17', 'a_b_c-0af99a60')
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agentmc.eval.genealogy import Genealogy, build_genealogy, genealogy_svg

__all__ = ["STYLE", "task_cell", "task_slug", "task_table", "write_task_pages"]

STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
    "table{border-collapse:collapse;font-size:0.85em}"
    "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right;vertical-align:top}"
    "td:first-child,th:first-child{text-align:left}th{background:#f3f3f3}"
    "img{max-width:100%}.warn{background:#fff3cd;padding:0.5em 1em}"
    ".ok{color:#1a7f37}.fail{color:#cf222e}.turns td,.turns th{text-align:left}"
    "section.method{border-top:2px solid #ddd;margin-top:1.5em}"
    ".genealogy-box{overflow-x:auto;border:1px solid #ddd;padding:4px;margin:0.5em 0}"
    "pre{white-space:pre-wrap;margin:0;font-size:0.9em}"
    ".particle-actions td{font-size:0.8em;text-align:left;white-space:nowrap}"
    ".particle-actions td.selected{background:#fde4c8}.particle-actions td.pruned"
    "{text-decoration:line-through;color:#999}.particle-actions td.cloned{font-weight:bold}"
)

TASKS_DIR = "tasks"


def task_slug(task_id: str) -> str:
    """A file name for a task id: the id itself when it is safe, else a cleaned id plus a hash."""
    text = str(task_id)
    if re.fullmatch(r"[A-Za-z0-9._-]{1,80}", text) and not text.startswith("."):
        return text
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:60].strip("._") or "task"
    return f"{cleaned}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def task_href(task_id: str) -> str:
    return f"{TASKS_DIR}/{task_slug(task_id)}.html"


def _money(cost: Any) -> str:
    return "cost unknown" if cost is None else f"${float(cost):.4f}"


def task_cell(record: dict[str, Any]) -> str:
    """One method on one task, in words: ``solved · 24 calls · $0.0000``."""
    outcome = "solved" if record.get("success") else "failed"
    if record.get("error"):
        outcome += " (errors)"
    return f"{outcome} · {int(record.get('calls') or 0)} calls · {_money(record.get('cost'))}"


def _by_task(records: Sequence[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    from agentmc.data.store import natural_key

    table: dict[str, dict[str, dict[str, Any]]] = {}
    for record in records:
        table.setdefault(str(record["task_id"]), {})[record["method"]] = record
    return {t: table[t] for t in sorted(table, key=natural_key)}


def task_table(
    records: Sequence[dict[str, Any]], methods: Sequence[str]
) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """Header and rows of the per-task table: ``(task id, [cell per method])`` in task order."""
    rows = []
    for task_id, by_method in _by_task(records).items():
        cells = [task_cell(by_method[m]) if m in by_method else "not run" for m in methods]
        rows.append((task_id, cells))
    return ["task", *methods], rows


def task_table_html(records: Sequence[dict[str, Any]], methods: Sequence[str]) -> str:
    """The per-task table as HTML, each task id linking to its page."""
    header, rows = task_table(records, methods)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for task_id, cells in rows:
        href = html.escape(task_href(task_id))
        link = f"<a class='task-link' href='{href}'>{html.escape(task_id)}</a>"
        tds = "".join(
            f"<td class='{'ok' if c.startswith('solved') else 'fail'}'>{html.escape(c)}</td>"
            for c in cells
        )
        body.append(f"<tr><td>{link}</td>{tds}</tr>")
    return (
        f"<table class='per-task'><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _turns_html(trajectory: dict[str, Any]) -> str:
    rows = []
    for number, turn in enumerate(trajectory.get("turns") or [], 1):
        rows.append(
            f"<tr><td>{number}</td><td><pre>{html.escape(str(turn.get('action', '')))}</pre></td>"
            f"<td><pre>{html.escape(str(turn.get('observation', '')))}</pre></td>"
            f"<td>{float(turn.get('reward', 0.0)):g}</td></tr>"
        )
    if not rows:
        return "<p>No turns.</p>"
    return (
        "<table class='turns'><thead><tr><th>step</th><th>action</th><th>observation</th>"
        f"<th>reward</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _actions_table(tree: Genealogy) -> str:
    """Every particle's action at every step (rows: particles; columns: steps)."""
    on_path = {(t + 1, slot) for t, slot in enumerate(tree.selected_path)}
    head = "".join(f"<th>{t}</th>" for t in range(1, tree.n_steps + 1))
    rows = []
    for slot in range(tree.n_particles):
        cells = []
        for row in tree.nodes:
            node = row[slot]
            classes = ["selected"] if (node.t, slot) in on_path else []
            if node.t in tree.resampled and node.children != 1:
                classes.append("pruned" if node.children == 0 else "cloned")
            text = "·" if node.action is None else node.action
            if node.t in tree.resampled and node.children > 1:
                text += f" (×{node.children})"
            if node.done and node.action is not None:
                text += " ✓" if node.success else " ✗"
            cells.append(f"<td class='{' '.join(classes)}'>{html.escape(text)}</td>")
        rows.append(f"<tr><th>p{slot}</th>{''.join(cells)}</tr>")
    return (
        "<details><summary>Every particle's action at every step (orange: the selected "
        "answer's lineage; struck out: pruned at resampling; ·: finished earlier)</summary>"
        f"<div class='genealogy-box'><table class='particle-actions'><thead><tr><th></th>{head}"
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div></details>"
    )


def _method_section(method: str, record: dict[str, Any]) -> str:
    episode = record.get("episode") or {}
    diagnostics = episode.get("diagnostics") or {}
    config = diagnostics.get("config") or {}
    k = int(config.get("n_particles") or 1)
    anchor = "m-" + re.sub(r"[^A-Za-z0-9_-]+", "-", method)
    facts = [
        ("outcome", "solved" if record.get("success") else "not solved"),
        ("return", f"{float(record.get('return', 0.0)):g}"),
        ("selection", str(record.get("selection", "?"))),
        ("particles K", str(k)),
        ("steps", str(record.get("steps", "?"))),
        ("policy calls", str(record.get("calls", "?"))),
        ("tokens", str(record.get("tokens", "?"))),
        ("cost", _money(record.get("cost"))),
        ("resampled", f"{diagnostics.get('n_resamplings', 0)} time(s)"),
        ("stopped", str(diagnostics.get("stop_reason", "?"))),
    ]
    if record.get("synthetic"):
        facts.append(("policy", "synthetic stand-in, not a real LLM"))
    if record.get("error"):
        facts.append(("errors", str(record["error"])))
    items = " · ".join(f"<b>{html.escape(a)}</b> {html.escape(b)}" for a, b in facts)
    parts = [
        f"<section class='method' id='{anchor}'><h2>{html.escape(method)}</h2>"
        f"<p class='facts'>{items}</p>"
    ]
    tree = build_genealogy(episode)
    if tree is not None and k > 1:
        parts.append(
            "<h3>Particles (SMC genealogy)</h3><div class='genealogy-box'>"
            + genealogy_svg(tree, title=f"{method} on this task")
            + "</div><p class='legend'>Columns are steps, rows particle slots; a circle is a "
            "particle after its step (area ∝ its weight at a checkpoint; blue running, green "
            "solved, red finished unsolved, hollow: finished earlier). Curves join a particle "
            "to the one it continues or was cloned from; dashed columns are resampling events, "
            "✕ marks a pruned particle and ×n a particle cloned n times; small numbers are the "
            "critic's values at checkpoints; orange is the lineage of the selected answer. "
            "Hover a circle for its action.</p>" + _actions_table(tree)
        )
    elif k > 1:
        parts.append("<p>This run predates per-step particle records; no genealogy.</p>")
    rewards = episode.get("candidates_rewards")
    if rewards and k > 1:
        parts.append(
            "<p>Final returns of the K candidates: "
            + html.escape(", ".join(f"{float(r):g}" for r in rewards))
            + f"; selected particle {html.escape(str(diagnostics.get('selected')))}.</p>"
        )
    turns = _turns_html(episode.get("trajectory") or {})
    parts.append(
        f"<details open><summary><b>Selected trajectory</b> ({record.get('steps', '?')} "
        f"steps)</summary>{turns}</details></section>"
    )
    return "".join(parts)


def task_page(
    task_id: str, by_method: dict[str, dict[str, Any]], methods: Sequence[str], title: str
) -> str:
    """One self-contained HTML page for one task."""
    first = next(iter(by_method.values()))
    trajectory = (first.get("episode") or {}).get("trajectory") or {}
    task_text = str(trajectory.get("task", ""))
    summary = "".join(
        f"<li><a href='#m-{re.sub(r'[^A-Za-z0-9_-]+', '-', m)}'>{html.escape(m)}</a>: "
        f"{html.escape(task_cell(by_method[m]))}</li>"
        for m in methods
        if m in by_method
    )
    sections = "".join(_method_section(m, by_method[m]) for m in methods if m in by_method)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>task {html.escape(task_id)} · "
        f"{html.escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<p><a href='../report.html'>← report</a></p><h1>Task {html.escape(task_id)}</h1>"
        f"<pre class='task'>{html.escape(task_text)}</pre><ul>{summary}</ul>{sections}"
        "</body></html>"
    )


def write_task_pages(
    out_dir: str | Path, records: Sequence[dict[str, Any]], methods: Sequence[str], title: str
) -> list[Path]:
    """Write ``out_dir/tasks/<task>.html`` for every task; returns the paths written."""
    directory = Path(out_dir) / TASKS_DIR
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for task_id, by_method in _by_task(records).items():
        path = Path(out_dir) / task_href(task_id)
        path.write_text(task_page(task_id, by_method, methods, title), encoding="utf-8")
        written.append(path)
    return written
