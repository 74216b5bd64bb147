"""The test server itself, through plain HTTP (the SDK-level behaviour is in test_openai_compat)."""

from __future__ import annotations

import http.client
import json
import threading
import time

import pytest

from agentmc.errors import ConfigError
from agentmc.testing import Fault, OpenAITestServer


def post(server: OpenAITestServer, path: str, body: dict, headers: dict | None = None):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    connection.request(
        "POST",
        "/v1" + path,
        json.dumps(body),
        {"Content-Type": "application/json", **(headers or {})},
    )
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, dict(response.getheaders()), data


def test_replies_cycle_and_usage_counts_words():
    with OpenAITestServer(replies=["a b", "c"]) as server:
        status, _, data = post(
            server, "/completions", {"model": "test-model", "prompt": "x y z", "n": 3}
        )
    payload = json.loads(data)
    assert status == 200
    assert [c["text"] for c in payload["choices"]] == ["a b", "c", "a b"]
    assert payload["usage"] == {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}


def test_stop_and_max_tokens_are_applied():
    with OpenAITestServer(replies=["one two three\nfour"]) as server:
        _, _, data = post(
            server, "/completions", {"model": "test-model", "prompt": "p", "stop": "\n"}
        )
        assert json.loads(data)["choices"][0]["text"] == "one two three"
        _, _, data = post(
            server, "/completions", {"model": "test-model", "prompt": "p", "max_tokens": 2}
        )
        choice = json.loads(data)["choices"][0]
    assert choice["text"] == "one two" and choice["finish_reason"] == "length"


def test_responder_function_sees_the_request():
    with OpenAITestServer(replies=lambda body: body["messages"][-1]["content"].upper()) as server:
        _, _, data = post(
            server,
            "/chat/completions",
            {"model": "test-model", "messages": [{"role": "user", "content": "hi"}]},
        )
    assert json.loads(data)["choices"][0]["message"]["content"] == "HI"


def test_rate_limit_fault_sends_retry_after_and_is_recorded():
    with OpenAITestServer() as server:
        server.inject(Fault("rate_limit", retry_after=2.5))
        status, headers, _ = post(server, "/completions", {"model": "test-model", "prompt": "p"})
        status2, _, _ = post(server, "/completions", {"model": "test-model", "prompt": "p"})
        faults = [r.fault for r in server.requests]
    assert (status, headers["Retry-After"], status2) == (429, "2.5", 200)
    assert faults == ["rate_limit", None]


def test_errors_for_unknown_model_bad_key_and_bad_body():
    with OpenAITestServer(api_key="k") as server:
        assert (
            post(
                server, "/completions", {"model": "x", "prompt": "p"}, {"Authorization": "Bearer k"}
            )[0]
            == 404
        )
        assert post(server, "/completions", {"model": "test-model", "prompt": "p"})[0] == 401
        assert (
            post(server, "/completions", {"model": "test-model"}, {"Authorization": "Bearer k"})[0]
            == 400
        )
        assert not server.requests[1].authorized


def test_random_faults_are_seeded():
    def kinds(seed):
        with OpenAITestServer(fault_rates={"server_error": 0.5}, seed=seed) as server:
            return [
                post(server, "/completions", {"model": "test-model", "prompt": "p"})[0]
                for _ in range(12)
            ]

    assert kinds(1) == kinds(1) and 500 in kinds(1) and 200 in kinds(1)


def test_stop_cuts_hanging_requests_short():
    server = OpenAITestServer().start()
    server.inject(Fault("timeout", delay_s=30))
    outcome = []

    def call():
        try:
            post(server, "/completions", {"model": "test-model", "prompt": "p"})
        except (OSError, http.client.HTTPException) as error:
            outcome.append(type(error).__name__)

    thread = threading.Thread(target=call)
    thread.start()
    time.sleep(0.2)
    start = time.monotonic()
    server.stop()
    thread.join(timeout=5)
    assert time.monotonic() - start < 3 and not thread.is_alive()
    assert outcome  # the client saw the connection drop


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"replies": []}, "replies"),
        ({"latency_s": -1}, "latency_s"),
        ({"fault_rates": {"boom": 0.1}}, "fault_rates"),
        ({"fault_rates": {"timeout": 0.8, "latency": 0.8}}, "fault_rates"),
    ],
)
def test_server_validation(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        OpenAITestServer(**kwargs)


def test_fault_validation():
    with pytest.raises(ConfigError, match="kind"):
        Fault("explode")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="status"):
        Fault("server_error", status=404)


def test_base_url_needs_a_running_server():
    with pytest.raises(ConfigError, match="not running"):
        _ = OpenAITestServer().base_url
