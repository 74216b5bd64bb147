from __future__ import annotations

from agentmc.policies.cache import RequestCache, request_key
from agentmc.policies.core import Completion
from agentmc.types import Usage


def test_key_is_stable_and_order_independent():
    a = request_key({"model": "m", "prompt": "p", "seed": 1})
    b = request_key({"seed": 1, "prompt": "p", "model": "m"})
    assert a == b and len(a) == 64
    assert request_key({"model": "m", "prompt": "p", "seed": 2}) != a


def test_round_trip_keeps_text_logprob_and_usage(tmp_path):
    cache = RequestCache(tmp_path)
    completions = [Completion("x", -1.5, Usage(1, 10, 2, None)), Completion("y", None, Usage())]
    cache.put("ab" * 32, completions)
    assert RequestCache(tmp_path).get("ab" * 32) == completions
    assert len(cache) == 1


def test_corrupt_or_foreign_entries_are_misses(tmp_path, caplog):
    cache = RequestCache(tmp_path)
    key = "cd" * 32
    cache.put(key, [Completion("x")])
    path = next(tmp_path.rglob("*.json"))
    path.write_text('{"format": 1, "compl')
    assert cache.get(key) is None and "unreadable" in caplog.text
    path.write_text('{"format": 999, "completions": []}')
    assert cache.get(key) is None
    path.write_text('{"format": 1, "completions": [{"no_text": 1}]}')
    assert cache.get(key) is None


def test_no_temporary_files_left(tmp_path):
    cache = RequestCache(tmp_path)
    for i in range(5):
        cache.put(request_key({"i": i}), [Completion(str(i))])
    assert not list(tmp_path.rglob(".tmp-*"))
