from agentmc.eval.harness import candidate_ranking


def record(method, values, rewards):
    episode = {"candidate_values": values, "candidates_rewards": rewards}
    return {"method": method, "episode": episode}


def test_candidate_ranking_compares_candidates_of_one_task_only():
    records = [
        # task A: the solved candidate scored highest; task B: scored lowest.
        record("amc@critic-k3", [0.9, 0.1, 0.2], [1.0, 0.0, 0.0]),
        record("amc@critic-k3", [0.95, 0.99, 0.0], [0.0, 1.0, 1.0]),
        # no critic values, or one candidate: nothing to rank
        record("bon@reward-k3", None, [1.0, 0.0, 0.0]),
        record("single", [0.3], [1.0]),
    ]
    text = candidate_ranking(records)
    # pairs: A (1,0),(1,0) both right; B (1,0) right, (1,0) wrong -> 3 of 4
    assert text == "amc@critic-k3: AUROC 0.75 over 4 pairs"
    assert candidate_ranking(records[2:]) == ""
