"""Test helpers that ship with agentmc: a local OpenAI-compatible server with fault injection.

Example:
    >>> from agentmc.testing import OpenAITestServer
    >>> with OpenAITestServer(replies=["get 1 oak logs"]) as server:
    ...     server.base_url.startswith("http://127.0.0.1:")
    True
"""

from __future__ import annotations

from agentmc.testing.openai_server import Fault, OpenAITestServer, RecordedRequest

__all__ = ["Fault", "OpenAITestServer", "RecordedRequest"]
