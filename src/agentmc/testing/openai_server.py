"""A real OpenAI-compatible HTTP server on 127.0.0.1 with scripted replies and faults.

Tests and benchmarks point the official ``openai`` client at it to exercise
the whole network path (connection pool, JSON, streaming, retries) offline.
It serves ``POST /v1/chat/completions``, ``POST /v1/completions`` (both with
``n``, ``stop``, ``max_tokens`` and ``stream``) and ``GET /v1/models``.

Replies come from a list (taken in turn, one per returned choice) or from a
function of the request body. Token counts are whitespace-separated words, so
usage is predictable in tests.

Faults are queued with :meth:`OpenAITestServer.inject` and hit the next
requests in arrival order, or drawn at random per request from
``fault_rates`` (seeded); setting :attr:`OpenAITestServer.outage` to a fault
makes every request fail that way until it is set back to ``None``. A wrong
key (``api_key=``) gets 401 and an unknown model 404, as from a real provider.
Kinds:

=================  ==============================================================
``rate_limit``     429 with ``Retry-After: <retry_after>`` (omitted if None)
``server_error``   ``status`` (default 500) with an error body; a 503 carries ``Retry-After``
``timeout``        hang for ``delay_s`` seconds, then drop the connection
``latency``        wait ``delay_s`` seconds, then answer normally
``malformed_json`` 200 with a cut-off JSON body
``truncated``      announce a longer body (or stream) than sent, then drop it
``disconnect``     drop the connection without any response
``echo_auth``      400 whose message quotes the Authorization header (a careless proxy)
=================  ==============================================================

Every request is recorded (path, body, fault) for assertions; the
Authorization header never is.

Example:
    >>> import json, urllib.request
    >>> with OpenAITestServer(replies=["craft 1 stick using 2 planks"]) as server:
    ...     url = server.base_url + "/models"
    ...     json.load(urllib.request.urlopen(url))["data"][0]["id"]
    'test-model'

Run one by hand: ``python -m agentmc.testing.openai_server --port 8000 --latency 0.2``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

import numpy as np

from agentmc.errors import ConfigError

__all__ = ["FAULT_KINDS", "Fault", "OpenAITestServer", "RecordedRequest"]

logger = logging.getLogger(__name__)

FaultKind = Literal[
    "rate_limit",
    "server_error",
    "timeout",
    "latency",
    "malformed_json",
    "truncated",
    "disconnect",
    "echo_auth",
]
FAULT_KINDS: tuple[str, ...] = (
    "rate_limit",
    "server_error",
    "timeout",
    "latency",
    "malformed_json",
    "truncated",
    "disconnect",
    "echo_auth",
)


@dataclass(frozen=True, slots=True)
class Fault:
    """One injected fault.

    Attributes:
        kind: One of :data:`FAULT_KINDS` (see the module docstring).
        delay_s: Seconds to wait for ``latency``; seconds to hang for ``timeout``.
        retry_after: ``Retry-After`` seconds for ``rate_limit`` and a 503 ``server_error``
            (None: no header).
        status: HTTP status for ``server_error`` (500-599).
    """

    kind: FaultKind
    delay_s: float = 30.0
    retry_after: float | None = 1.0
    status: int = 500

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ConfigError(f"Fault.kind must be one of {FAULT_KINDS}, got {self.kind!r}")
        if self.delay_s < 0:
            raise ConfigError(f"Fault.delay_s must be >= 0, got {self.delay_s}")
        if self.retry_after is not None and self.retry_after < 0:
            raise ConfigError(f"Fault.retry_after must be >= 0 or None, got {self.retry_after}")
        if not 500 <= self.status <= 599:
            raise ConfigError(f"Fault.status must be a 5xx code, got {self.status}")


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """What the server saw (never the Authorization header).

    Attributes:
        path: Request path, e.g. ``/v1/chat/completions``.
        body: The parsed JSON body (empty for GET).
        fault: The fault applied, if any.
        authorized: Whether the request carried the expected key (True if none is required).
        time: ``time.monotonic()`` on arrival.
    """

    path: str
    body: dict[str, Any]
    fault: str | None
    authorized: bool
    time: float


Responder = Callable[[dict[str, Any]], str]


def count_tokens(text: str) -> int:
    """The server's token count: whitespace-separated words."""
    return len(text.split())


def _prompt_text(body: Mapping[str, Any]) -> str:
    if "messages" in body:
        return "\n".join(str(m.get("content") or "") for m in body["messages"])
    prompt = body.get("prompt", "")
    return "\n".join(map(str, prompt)) if isinstance(prompt, list) else str(prompt)


def _error(message: str, kind: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, the client's delayed ACK
    # stalls every answer by ~40 ms, which swamped latency benchmarks.
    disable_nagle_algorithm = True
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        logger.debug("test server: " + format, *args)

    # -- plumbing ---------------------------------------------------------------------------
    def _send_json(self, status: int, payload: Any, headers: Mapping[str, str] = {}) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(2)
        except OSError:
            pass

    def _read_body(self) -> dict[str, Any] | None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    def _authorized(self) -> bool:
        key = self.server.owner.api_key
        return key is None or self.headers.get("Authorization") == f"Bearer {key}"

    # -- endpoints --------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 (stdlib naming)
        owner = self.server.owner
        owner._record(self.path, {}, None, self._authorized())
        if self.path.rstrip("/") != "/v1/models":
            self._send_json(404, _error(f"no route {self.path}", "invalid_request_error"))
            return
        models = [{"id": m, "object": "model", "owned_by": "agentmc"} for m in owner.models]
        self._send_json(200, {"object": "list", "data": models})

    def do_POST(self) -> None:  # noqa: N802 (stdlib naming)
        owner = self.server.owner
        body = self._read_body()
        path = self.path.rstrip("/")
        fault = owner._next_fault()
        authorized = self._authorized()
        owner._record(path, body or {}, None if fault is None else fault.kind, authorized)
        if owner.latency_s and not owner._sleep(owner.latency_s):
            return self._drop()
        if fault is not None and fault.kind not in ("latency", "truncated", "malformed_json"):
            return self._fault(fault)
        if fault is not None and fault.kind == "latency" and not owner._sleep(fault.delay_s):
            return self._drop()
        if body is None:
            return self._send_json(
                400, _error("body is not a JSON object", "invalid_request_error")
            )
        if not authorized:
            message = "Incorrect API key provided."
            return self._send_json(401, _error(message, "invalid_request_error", "invalid_api_key"))
        if path not in ("/v1/chat/completions", "/v1/completions"):
            return self._send_json(404, _error(f"no route {self.path}", "invalid_request_error"))
        model = body.get("model")
        if model not in owner.models:
            message = f"The model `{model}` does not exist or you do not have access to it."
            return self._send_json(404, _error(message, "invalid_request_error", "model_not_found"))
        chat = path == "/v1/chat/completions"
        if chat and not isinstance(body.get("messages"), list):
            return self._send_json(400, _error("'messages' is required", "invalid_request_error"))
        if not chat and "prompt" not in body:
            return self._send_json(400, _error("'prompt' is required", "invalid_request_error"))
        choices = owner._replies(body)
        truncate = fault is not None and fault.kind == "truncated"
        if body.get("stream"):
            return self._stream(body, chat, choices, truncate)
        payload = owner._payload(body, chat, choices)
        if fault is not None and fault.kind == "malformed_json":
            data = json.dumps(payload).encode()
            return self._send_raw(200, data[: len(data) // 2], len(data) // 2)
        if truncate:
            data = json.dumps(payload).encode()
            return self._send_raw(200, data[: len(data) // 2], len(data))
        self._send_json(200, payload)

    def _send_raw(self, status: int, data: bytes, announced: int) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(announced))
        self.end_headers()
        self.wfile.write(data)
        if announced != len(data):
            self._drop()

    def _fault(self, fault: Fault) -> None:
        owner = self.server.owner
        if fault.kind == "rate_limit":
            headers = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
            message = "Rate limit reached; please retry later."
            self._send_json(429, _error(message, "requests", "rate_limit_exceeded"), headers)
        elif fault.kind == "server_error":
            # a 503 (service unavailable) says when to come back, as real gateways do
            headers = (
                {"Retry-After": f"{fault.retry_after:g}"}
                if fault.status == 503 and fault.retry_after is not None
                else {}
            )
            message = "The server had an error."
            self._send_json(fault.status, _error(message, "server_error"), headers)
        elif fault.kind == "timeout":
            owner._sleep(fault.delay_s)
            self._drop()
        elif fault.kind == "disconnect":
            self._drop()
        elif fault.kind == "echo_auth":
            header = self.headers.get("Authorization", "")
            message = f"Malformed request with header Authorization: {header}"
            self._send_json(400, _error(message, "invalid_request_error"))

    def _stream(
        self, body: dict[str, Any], chat: bool, choices: list[tuple[str, str]], truncate: bool
    ) -> None:
        owner = self.server.owner
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        common = {
            "id": f"stream-{owner._new_id()}",
            "object": "chat.completion.chunk" if chat else "text_completion",
            "created": int(time.time()),
            "model": body["model"],
        }
        events: list[dict[str, Any]] = []
        for index, (text, finish) in enumerate(choices):
            pieces = [p + " " for p in text.split(" ")]
            pieces[-1] = pieces[-1][:-1]
            for piece in pieces:
                choice: dict[str, Any]
                if chat:
                    choice = {"index": index, "delta": {"content": piece}, "finish_reason": None}
                else:
                    choice = {"index": index, "text": piece, "finish_reason": None}
                events.append({**common, "choices": [choice]})
            end: dict[str, Any] = {"index": index, "finish_reason": finish}
            if chat:
                end["delta"] = {}
            else:
                end["text"] = ""
            events.append({**common, "choices": [end]})
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append({**common, "choices": [], "usage": owner._usage(body, choices)})
        lines = [f"data: {json.dumps(e)}\n\n".encode() for e in events] + [b"data: [DONE]\n\n"]
        if truncate:
            lines = lines[: max(1, len(lines) // 2)]
        for line in lines:
            self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
            self.wfile.flush()
        if truncate:
            return self._drop()
        self.wfile.write(b"0\r\n\r\n")


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512  # 64+ clients connect at once in the benchmarks
    owner: OpenAITestServer


class OpenAITestServer:
    """An OpenAI-compatible server in a background thread (a context manager).

    Args:
        replies: Reply texts taken in turn (one per returned choice, cycling), or
            a function of the request body returning the reply.
        models: Model names served; others get a 404 ``model_not_found``.
        latency_s: Delay before every answer.
        api_key: If set, requests must carry ``Authorization: Bearer <api_key>``.
        supports_n: If False, answer one choice whatever ``n`` is (like some servers).
        fault_rates: ``{kind: probability}`` of a random fault per request.
        seed: Seed of the random faults.
        port: TCP port on 127.0.0.1 (0: a free one).
    """

    def __init__(
        self,
        replies: Sequence[str] | Responder = ("inventory",),
        *,
        models: Sequence[str] = ("test-model",),
        latency_s: float = 0.0,
        api_key: str | None = None,
        supports_n: bool = True,
        fault_rates: Mapping[str, float] | None = None,
        seed: int = 0,
        port: int = 0,
    ) -> None:
        if not callable(replies) and not list(replies):
            raise ConfigError("OpenAITestServer.replies must be a non-empty list or a function")
        if latency_s < 0:
            raise ConfigError(f"OpenAITestServer.latency_s must be >= 0, got {latency_s}")
        rates = dict(fault_rates or {})
        unknown = set(rates) - set(FAULT_KINDS)
        if unknown or any(not 0 <= p <= 1 for p in rates.values()) or sum(rates.values()) > 1:
            raise ConfigError(
                f"OpenAITestServer.fault_rates must map kinds in {FAULT_KINDS} to probabilities "
                f"summing to at most 1, got {rates}"
            )
        self._responder: Responder | None = replies if callable(replies) else None
        self._cycle = None if callable(replies) else itertools.cycle(list(replies))
        self.models = tuple(models)
        self.latency_s = float(latency_s)
        self.api_key = api_key
        self.supports_n = supports_n
        self._rates = rates
        self._rng = np.random.default_rng(seed)
        self._port = port
        self._lock = threading.Lock()
        self._faults: deque[Fault] = deque()
        self._ids = itertools.count()
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.requests: list[RecordedRequest] = []
        self.outage: Fault | None = None
        """While set, every request gets this fault (an outage), ahead of queued faults."""

    def __repr__(self) -> str:
        state = "running at " + self.base_url if self._httpd else "stopped"
        return f"OpenAITestServer({state}, models={self.models})"

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> OpenAITestServer:
        """Bind 127.0.0.1 and serve in a daemon thread; returns self."""
        if self._httpd is not None:
            return self
        self._stopping.clear()
        httpd = _HTTPServer(("127.0.0.1", self._port), _Handler)
        httpd.owner = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; hanging requests are cut short."""
        if self._httpd is None:
            return
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd, self._thread = None, None

    def __enter__(self) -> OpenAITestServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise ConfigError("OpenAITestServer is not running: call start() or use `with`")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``: pass it as the client's ``base_url``."""
        return f"http://127.0.0.1:{self.port}/v1"

    # -- control --------------------------------------------------------------------------
    def inject(self, *faults: Fault) -> None:
        """Queue faults; each hits one upcoming request, in arrival order."""
        with self._lock:
            self._faults.extend(faults)

    def clear(self) -> None:
        """Forget queued faults and recorded requests."""
        with self._lock:
            self._faults.clear()
            self.requests.clear()

    def completion_requests(self) -> list[RecordedRequest]:
        """Recorded POSTs to the two completion endpoints."""
        with self._lock:
            return [r for r in self.requests if r.path.endswith("completions")]

    # -- internals used by the handler ----------------------------------------------------
    def _sleep(self, seconds: float) -> bool:
        """Wait; False if the server is stopping."""
        return not self._stopping.wait(seconds)

    def _new_id(self) -> int:
        with self._lock:
            return next(self._ids)

    def _record(self, path: str, body: dict[str, Any], fault: str | None, authorized: bool) -> None:
        with self._lock:
            self.requests.append(RecordedRequest(path, body, fault, authorized, time.monotonic()))

    def _next_fault(self) -> Fault | None:
        with self._lock:
            if self.outage is not None:
                return self.outage
            if self._faults:
                return self._faults.popleft()
            if not self._rates:
                return None
            draw = float(self._rng.random())
        for kind, probability in sorted(self._rates.items()):
            if draw < probability:
                return Fault(kind, delay_s=2.0, retry_after=0.05)  # type: ignore[arg-type]
            draw -= probability
        return None

    def _replies(self, body: dict[str, Any]) -> list[tuple[str, str]]:
        """``(text, finish_reason)`` per choice, after ``stop`` and ``max_tokens``."""
        n = int(body.get("n") or 1) if self.supports_n else 1
        stops = body.get("stop") or []
        stops = [stops] if isinstance(stops, str) else list(stops)
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        out = []
        for _ in range(n):
            if self._responder is not None:
                text = str(self._responder(body))
            else:
                with self._lock:
                    assert self._cycle is not None
                    text = next(self._cycle)
            finish = "stop"
            for stop in stops:
                if stop and stop in text:
                    text = text[: text.index(stop)]
            words = text.split(" ")
            if limit is not None and count_tokens(text) > int(limit):
                kept, seen = [], 0
                for word in words:
                    seen += bool(word)
                    if seen > int(limit):
                        break
                    kept.append(word)
                text, finish = " ".join(kept), "length"
            out.append((text, finish))
        return out

    def _usage(self, body: dict[str, Any], choices: list[tuple[str, str]]) -> dict[str, int]:
        prompt = count_tokens(_prompt_text(body))
        completion = sum(count_tokens(text) for text, _ in choices)
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }

    def _payload(
        self, body: dict[str, Any], chat: bool, choices: list[tuple[str, str]]
    ) -> dict[str, Any]:
        if chat:
            items = [
                {
                    "index": i,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": finish,
                    "logprobs": None,
                }
                for i, (text, finish) in enumerate(choices)
            ]
        else:
            items = [
                {"index": i, "text": text, "finish_reason": finish, "logprobs": None}
                for i, (text, finish) in enumerate(choices)
            ]
        return {
            "id": f"{'chatcmpl' if chat else 'cmpl'}-{self._new_id()}",
            "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": items,
            "usage": self._usage(body, choices),
        }


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until Ctrl-C (for trying clients by hand)."""
    parser = argparse.ArgumentParser(prog="python -m agentmc.testing.openai_server")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--reply", action="append", help="reply text (repeatable, cycled)")
    parser.add_argument("--model", action="append", help="served model name (repeatable)")
    args = parser.parse_args(argv)
    server = OpenAITestServer(
        args.reply or ["inventory"],
        models=args.model or ["test-model"],
        latency_s=args.latency,
        port=args.port,
    )
    with server:
        print(f"serving {server.models} at {server.base_url} (Ctrl-C to stop)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    raise SystemExit(main())
