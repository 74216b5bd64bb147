"""Fixtures for policy tests: the local OpenAI-compatible server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agentmc.testing import OpenAITestServer


@pytest.fixture
def openai_server() -> Iterator[OpenAITestServer]:
    """A test server on an ephemeral port, replying "get 1 oak logs"; stopped afterwards."""
    with OpenAITestServer(replies=["get 1 oak logs"], models=("test-model",)) as server:
        yield server
