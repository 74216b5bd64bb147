"""SMC genealogy of one episode: which particle came from which, drawn as inline SVG.

An episode's record (:meth:`agentmc.methods.EpisodeResult.to_dict`) holds what
the picture needs in its ``diagnostics``: ``particles`` (what every particle
did at every step, before resampling), ``checkpoints`` (every particle's log
weight and critic value at each checkpoint, and whether it resampled),
``genealogy`` (the ancestor indices of each resampling) and ``selected`` (the
final particle that was returned). :func:`build_genealogy` turns them into
nodes (particle ``i`` after step ``t``) and edges (parent at ``t - 1`` to child
at ``t``); :func:`genealogy_svg` draws them: steps left to right, one row per
particle slot, resampling events as dashed columns, clones marked ``×n``,
pruned particles crossed out, critic values printed at checkpoints and the
selected answer's lineage in bold. Every node carries a tooltip (SVG
``<title>``) with the action taken, the return so far, the weight and the value.

The SVG is plain markup with no script and no external resource, so a page
that inlines it stays self-contained.

Example:
    >>> record = {"diagnostics": {"config": {"n_particles": 2}, "selected": 1,
    ...     "particles": [{"t": 1, "actions": ["a", "b"], "rewards": [0.0, 1.0],
    ...                    "done": [False, True], "success": [False, True],
    ...                    "failed": [False, False]}],
    ...     "checkpoints": [{"t": 1, "resampled": False, "ess": 1.5,
    ...                      "log_weights": [0.0, 1.0], "values": [0.2, 0.0]}],
    ...     "genealogy": []}}
    >>> tree = build_genealogy(record)
    >>> tree.n_particles, tree.n_steps, tree.selected_path
    (2, 1, [1])
    >>> "class='particle" in genealogy_svg(tree)
    True
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Genealogy", "Node", "build_genealogy", "genealogy_svg"]


@dataclass(frozen=True)
class Node:
    """Particle slot ``slot`` after step ``t`` (before any resampling at ``t``).

    Attributes:
        t: Step (1-based).
        slot: Particle index.
        parent: Slot at step ``t - 1`` it descends from (``None`` at step 1: the start).
        action: The action taken at step ``t``, or ``None`` if it did not move.
        reward: True return so far.
        done: Finished (terminated, truncated or failed).
        success: Solved the task.
        failed: A policy call failed for good.
        weight: Normalised weight at a checkpoint at ``t`` (``None`` if no checkpoint).
        value: Critic value used at a checkpoint at ``t`` (``None`` if no checkpoint).
        children: Slots at ``t + 1`` that descend from it (after resampling).
    """

    t: int
    slot: int
    parent: int | None
    action: str | None
    reward: float
    done: bool
    success: bool
    failed: bool
    weight: float | None
    value: float | None
    children: int


@dataclass(frozen=True)
class Genealogy:
    """Nodes of one episode's particle system, indexed ``nodes[t - 1][slot]``.

    Attributes:
        n_particles: K.
        n_steps: Steps recorded.
        nodes: ``n_steps`` rows of K nodes.
        resampled: Steps after which the particles were resampled.
        ess: Effective sample size at each checkpoint step.
        selected_path: The selected particle's slot at steps ``1..n_steps``.
        has_values: Whether a critic contributed values.
    """

    n_particles: int
    n_steps: int
    nodes: list[list[Node]]
    resampled: list[int]
    ess: dict[int, float] = field(default_factory=dict)
    selected_path: list[int] = field(default_factory=list)
    has_values: bool = False


def _normalise(log_weights: list[float | None]) -> list[float]:
    finite = [w for w in log_weights if w is not None]
    if not finite:
        return [0.0] * len(log_weights)
    top = max(finite)
    raw = [0.0 if w is None else math.exp(w - top) for w in log_weights]
    total = sum(raw)
    return [r / total for r in raw]


def build_genealogy(record: dict[str, Any]) -> Genealogy | None:
    """The genealogy of an episode record, or ``None`` if it predates per-step records.

    Args:
        record: An episode (``EpisodeResult.to_dict()``) or anything with its ``diagnostics``.
    """
    diagnostics = record.get("diagnostics") or {}
    steps = diagnostics.get("particles")
    if not steps:
        return None
    k = len(steps[0]["actions"])
    ancestors = {
        int(e["t"]): [int(a) for a in e["ancestors"]] for e in diagnostics.get("genealogy") or []
    }
    checkpoints = {int(c["t"]): c for c in diagnostics.get("checkpoints") or []}
    nodes: list[list[Node]] = []
    for index, step in enumerate(steps):
        t = int(step["t"])
        previous = ancestors.get(t - 1) if index > 0 else None
        checkpoint = checkpoints.get(t)
        weights = values = None
        if checkpoint is not None and checkpoint.get("log_weights"):
            weights = _normalise(checkpoint["log_weights"])
            values = [float(v) for v in checkpoint.get("values") or [0.0] * k]
        children = [1] * k
        if t in ancestors:
            children = [ancestors[t].count(i) for i in range(k)]
        nodes.append(
            [
                Node(
                    t=t,
                    slot=i,
                    parent=None if index == 0 else (previous[i] if previous else i),
                    action=step["actions"][i],
                    reward=float(step["rewards"][i]),
                    done=bool(step["done"][i]),
                    success=bool(step["success"][i]),
                    failed=bool(step["failed"][i]),
                    weight=None if weights is None else weights[i],
                    value=None if values is None else values[i],
                    children=children[i],
                )
                for i in range(k)
            ]
        )
    path: list[int] = []
    selected = diagnostics.get("selected")
    if selected is not None and nodes:
        slot = int(selected)
        for row in reversed(nodes):
            path.append(slot)
            parent = row[slot].parent
            slot = slot if parent is None else parent
        path.reverse()
    has_values = any(any(v for v in (c.get("values") or [])) for c in checkpoints.values()) or bool(
        diagnostics.get("critic")
    )
    return Genealogy(
        n_particles=k,
        n_steps=len(nodes),
        nodes=nodes,
        resampled=sorted(ancestors),
        ess={t: float(c["ess"]) for t, c in checkpoints.items() if c.get("ess") is not None},
        selected_path=path,
        has_values=has_values,
    )


# -- drawing ------------------------------------------------------------------------------

_COLOURS = {"running": "#4c78a8", "solved": "#2ca02c", "unsolved": "#d62728", "error": "#555"}


def _state(node: Node) -> str:
    if node.failed:
        return "error"
    if node.done:
        return "solved" if node.success else "unsolved"
    return "running"


def _tooltip(node: Node) -> str:
    lines = [f"step {node.t}, particle {node.slot}"]
    lines.append(f"action: {node.action}" if node.action is not None else "did not move (finished)")
    lines.append(f"return so far: {node.reward:g}")
    if node.done:
        lines.append(
            "error" if node.failed else ("solved" if node.success else "finished, unsolved")
        )
    if node.weight is not None:
        lines.append(f"weight before resampling: {node.weight:.3f}")
    if node.value is not None:
        lines.append(f"critic value: {node.value:.3f}")
    if node.children != 1:
        lines.append("pruned" if node.children == 0 else f"cloned x{node.children}")
    return "\n".join(lines)


def genealogy_svg(tree: Genealogy, *, title: str = "") -> str:
    """The genealogy as an ``<svg class='genealogy'>`` element (no scripts, no links).

    Elements carry classes that tests and stylesheets can find: ``particle`` (every
    node, plus its state ``running``/``solved``/``unsolved``/``error``), ``edge``,
    ``resample`` (a resampling column), ``clone`` (a ``×n`` label), ``pruned`` (a
    cross), ``critic-value`` (a value label), ``selected`` (the answer's lineage).
    """
    k, steps = tree.n_particles, tree.n_steps
    column = max(34, min(90, 900 // max(steps, 1)))
    row = 26 if k <= 16 else 16
    left, top = 64, 40
    width = left + column * steps + 70
    height = top + row * k + 30
    radius_max = min(row, column) * 0.42

    def x(t: int) -> float:
        return left + column * t

    def y(slot: int) -> float:
        return top + row * slot + row / 2

    on_path = {(t + 1, slot) for t, slot in enumerate(tree.selected_path)}
    # value labels only where they fit; tooltips always carry them
    label_values = tree.has_values and k <= 16 and column >= 34
    parts = [
        f"<svg class='genealogy' xmlns='http://www.w3.org/2000/svg' width='{width}' "
        f"height='{height}' viewBox='0 0 {width} {height}' role='img' "
        f"aria-label='{html.escape(title or 'SMC genealogy', quote=True)}'>",
        "<style>.edge{stroke:#9aa;stroke-width:1.2;fill:none}"
        ".edge.selected{stroke:#f58518;stroke-width:3.5}"
        ".resample line{stroke:#888;stroke-dasharray:4 3}"
        ".particle.selected{stroke:#f58518;stroke-width:3}"
        "text{font:10px system-ui,sans-serif;fill:#333}"
        ".clone{fill:#7b3294;font-weight:bold}.critic-value{fill:#555;font-size:8px}"
        ".pruned{stroke:#d62728;stroke-width:1.5}</style>",
    ]
    # step axis and particle labels
    parts.append(f"<text x='{x(0) - 4}' y='{top - 22}' text-anchor='middle'>start</text>")
    for t in range(1, steps + 1):
        parts.append(f"<text x='{x(t)}' y='{top - 22}' text-anchor='middle'>{t}</text>")
    for slot in range(k):
        parts.append(f"<text x='{left - 30}' y='{y(slot) + 3}' text-anchor='end'>p{slot}</text>")
    # resampling columns
    for t in tree.resampled:
        mid = x(t) + column / 2
        ess = tree.ess.get(t)
        label = "resample" + (f" (ESS {ess:.1f}/{k})" if ess is not None else "")
        # narrow columns get a mark instead of the words (the tooltip has them)
        shown = label if column >= 110 else "↻"
        parts.append(
            f"<g class='resample' data-step='{t}'><line x1='{mid}' y1='{top - 14}' x2='{mid}' "
            f"y2='{height - 12}'/><text x='{mid}' y='{top - 6}' text-anchor='middle' "
            f"font-size='9'>{html.escape(shown)}</text><title>{html.escape(label)} after step "
            f"{t}</title></g>"
        )
    # edges: the shared start to step 1, then parent (t - 1) -> child (t)
    start_y = top + row * k / 2
    parts.append(
        f"<circle class='start' cx='{x(0) - 4}' cy='{start_y}' r='4' fill='#333'>"
        "<title>the task: every particle starts from this state</title></circle>"
    )
    for row_nodes in tree.nodes:
        for node in row_nodes:
            selected = (node.t, node.slot) in on_path
            cls = "edge selected" if selected else "edge"
            if node.parent is None:
                x0, y0 = x(0) - 4, start_y
            else:
                x0, y0 = x(node.t - 1), y(node.parent)
            parts.append(
                f"<path class='{cls}' d='M{x0:.1f},{y0:.1f} C{(x0 + x(node.t)) / 2:.1f},{y0:.1f} "
                f"{(x0 + x(node.t)) / 2:.1f},{y(node.slot):.1f} "
                f"{x(node.t):.1f},{y(node.slot):.1f}'/>"
            )
    # nodes, with their labels
    for row_nodes in tree.nodes:
        for node in row_nodes:
            state = _state(node)
            selected = (node.t, node.slot) in on_path
            weight = node.weight if node.weight is not None else 1.0 / k
            radius = 2.5 + (radius_max - 2.5) * math.sqrt(max(weight, 0.0))
            moved = node.action is not None
            classes = f"particle {state}" + (" selected" if selected else "")
            classes += "" if moved else " frozen"
            fill = _COLOURS[state] if moved or node.done else "#fff"
            parts.append(
                f"<circle class='{classes}' data-step='{node.t}' data-slot='{node.slot}' "
                f"cx='{x(node.t):.1f}' cy='{y(node.slot):.1f}' r='{radius:.1f}' fill='{fill}' "
                f"fill-opacity='{1.0 if moved else 0.35}' stroke='{_COLOURS[state]}'>"
                f"<title>{html.escape(_tooltip(node))}</title></circle>"
            )
            if label_values and node.value is not None and not node.done:
                parts.append(
                    f"<text class='critic-value' x='{x(node.t):.1f}' "
                    f"y='{y(node.slot) - radius - 1.5:.1f}' text-anchor='middle'>"
                    f"{node.value:.2f}</text>"
                )
            if node.t in tree.resampled and node.children == 0:
                cx, cy, d = x(node.t) + radius + 3, y(node.slot), 3
                parts.append(
                    f"<path class='pruned' d='M{cx - d},{cy - d} L{cx + d},{cy + d} "
                    f"M{cx - d},{cy + d} L{cx + d},{cy - d}'><title>pruned at resampling after "
                    f"step {node.t}</title></path>"
                )
            elif node.t in tree.resampled and node.children > 1:
                parts.append(
                    f"<text class='clone' x='{x(node.t) + radius + 2:.1f}' "
                    f"y='{y(node.slot) + 3:.1f}'>×{node.children}<title>cloned into "
                    f"{node.children} particles at resampling</title></text>"
                )
    if tree.selected_path:
        slot = tree.selected_path[-1]
        parts.append(
            f"<text class='selected-label' x='{x(steps) + radius_max + 4:.1f}' "
            f"y='{y(slot) + 3:.1f}' fill='#f58518' font-weight='bold'>selected</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
