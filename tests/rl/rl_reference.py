"""Slow, obvious loop implementations that the vectorised estimators must match."""

from __future__ import annotations

import math

import numpy as np


def group_advantages_ref(rewards, scale="group", weights=None, eps=1e-4):
    rewards = np.asarray(rewards, dtype=float)
    n_groups, k = rewards.shape
    w = np.ones_like(rewards) if weights is None else np.broadcast_to(weights, rewards.shape)

    def stats(pairs):
        pairs = [(r, wt) for r, wt in pairs if not math.isnan(r) and wt > 0]
        total = sum(wt for _, wt in pairs)
        if total == 0:
            return 0.0, 0.0
        mean = sum(r * wt for r, wt in pairs) / total
        v2 = sum(wt * wt for _, wt in pairs)
        denominator = total - v2 / total
        if denominator <= 1e-12:
            return mean, 0.0
        return mean, math.sqrt(sum(wt * (r - mean) ** 2 for r, wt in pairs) / denominator)

    batch_std = stats([(rewards[g, i], w[g, i]) for g in range(n_groups) for i in range(k)])[1]
    out = np.zeros_like(rewards)
    for g in range(n_groups):
        mean, std = stats([(rewards[g, i], w[g, i]) for i in range(k)])
        for i in range(k):
            if math.isnan(rewards[g, i]) or w[g, i] <= 0:
                continue
            if scale == "group":
                out[g, i] = (rewards[g, i] - mean) / (std + eps)
            elif scale == "batch":
                out[g, i] = (rewards[g, i] - mean) / (batch_std + eps)
            else:
                out[g, i] = rewards[g, i] - mean
    return out


def rloo_ref(rewards):
    rewards = np.asarray(rewards, dtype=float)
    out = np.zeros_like(rewards)
    for g, row in enumerate(rewards):
        valid = [i for i, r in enumerate(row) if not math.isnan(r)]
        if len(valid) < 2:
            continue
        for i in valid:
            others = [row[j] for j in valid if j != i]
            out[g, i] = row[i] - sum(others) / len(others)
    return out


def returns_ref(rewards, gamma):
    out = [0.0] * len(rewards)
    running = 0.0
    for t in reversed(range(len(rewards))):
        running = rewards[t] + gamma * running
        out[t] = running
    return out


def gae_ref(rewards, values, gamma, lam, bootstrap=0.0):
    out = [0.0] * len(rewards)
    running = 0.0
    for t in reversed(range(len(rewards))):
        next_value = bootstrap if t == len(rewards) - 1 else values[t + 1]
        delta = rewards[t] + gamma * next_value - values[t]
        running = delta + gamma * lam * running
        out[t] = running
    return out


def _clean_returns(episode, gamma):
    return returns_ref([0.0 if math.isnan(r) else r for r in episode.rewards], gamma)


def node_values_ref(episodes, gamma):
    totals, counts = {}, {}
    for episode in episodes:
        if not episode.scorable:
            continue
        returns = _clean_returns(episode, gamma)
        seen = set()
        for t in range(episode.n_steps):
            state = episode.states[t]
            if state in seen:
                continue
            seen.add(state)
            totals[state] = totals.get(state, 0.0) + returns[t]
            counts[state] = counts.get(state, 0) + 1
    return {s: totals[s] / counts[s] for s in totals}


def g2po_edge_ref(episodes, gamma, eps):
    values = node_values_ref(episodes, gamma)
    td = {}
    for episode in episodes:
        if not episode.scorable:
            continue
        for t in range(episode.n_steps):
            s, a, s2 = episode.states[t], episode.actions[t], episode.states[t + 1]
            terminal = episode.terminated and t == episode.n_steps - 1
            nxt = 0.0 if terminal else values.get(s2, 0.0)
            td.setdefault((s, a, s2), []).append(episode.rewards[t] + gamma * nxt - values[s])
    edge_td = {e: sum(v) / len(v) for e, v in td.items()}
    mean = sum(edge_td.values()) / max(len(edge_td), 1)
    std = math.sqrt(sum((v - mean) ** 2 for v in edge_td.values()) / max(len(edge_td), 1))
    out = []
    for episode in episodes:
        steps = []
        for t in range(episode.n_steps):
            edge = (episode.states[t], episode.actions[t], episode.states[t + 1])
            if not episode.scorable or std < 1e-12:
                steps.append(0.0)
            else:
                steps.append((edge_td[edge] - mean) / (std + eps))
        out.append(np.array(steps))
    return out


def anchor_ref(episodes, gamma, scale, eps):
    groups = {}
    for i, episode in enumerate(episodes):
        if not episode.scorable:
            continue
        returns = _clean_returns(episode, gamma)
        for t in range(episode.n_steps):
            groups.setdefault(episode.states[t], []).append((i, t, returns[t]))
    out = [np.zeros(e.n_steps) for e in episodes]
    for members in groups.values():
        if len(members) < 2:
            continue
        values = [g for _, _, g in members]
        mean = sum(values) / len(values)
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
        for i, t, g in members:
            out[i][t] = (g - mean) / (std + eps) if scale == "mean_std" else g - mean
    return out
