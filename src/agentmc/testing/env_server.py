"""A fault-injecting AgentGym-protocol environment server (a stand-in, for tests and benchmarks).

:class:`AgentGymTestServer` serves any agentmc environment over the AgentGym
HTTP protocol (``POST /create``, ``/reset``, ``/step``, ``/close``,
``GET /observation``, ``GET /tasks``) from a background thread, with the
standard library only, and answers like a third-party server would when it
breaks: plain HTTP 500s, dropped connections. It shares nothing with
:mod:`agentmc.envs.agentgym.server` except the session bookkeeping, so the
client is tested against a server we did not tune for it.

Faults are queued per path with :meth:`AgentGymTestServer.inject` and hit the
next requests to that path in arrival order; :attr:`AgentGymTestServer.down`
makes every request to the listed paths fail (an outage) until cleared.

Example:
    >>> from agentmc.envs import make
    >>> from agentmc.envs.agentgym.client import AgentGymConfig, AgentGymEnv
    >>> with AgentGymTestServer(lambda task: make("textcraft", task_id=task), ["0"]) as server:
    ...     server.inject("/step", EnvFault(status=500))
    ...     env = AgentGymEnv(AgentGymConfig(base_url=server.url), task_id="0")
    ...     _ = env.reset(seed=0)
    ...     env.step("inventory").observation.startswith("Inventory")
    ...     env.close()
    True
"""

from __future__ import annotations

import json
import logging
import threading
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, urlparse

from agentmc.envs.agentgym.server import RequestError, SessionPool
from agentmc.errors import ConfigError

__all__ = ["AgentGymTestServer", "EnvFault"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EnvFault:
    """One injected fault: an HTTP error status (text body, as many servers send) or a drop."""

    kind: Literal["status", "disconnect"] = "status"
    status: int = 500

    def __post_init__(self) -> None:
        if self.kind not in ("status", "disconnect"):
            raise ConfigError(f"EnvFault.kind must be 'status' or 'disconnect', got {self.kind!r}")
        if not 400 <= self.status <= 599:
            raise ConfigError(f"EnvFault.status must be a 4xx or 5xx code, got {self.status}")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        logger.debug("env test server: " + format, *args)

    def _send(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _fault(self, fault: EnvFault) -> None:
        if fault.kind == "disconnect":
            self.close_connection = True
            try:
                self.connection.shutdown(2)
            except OSError:
                pass
            return
        data = b"Internal Server Error"
        self.send_response(fault.status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str) -> None:
        owner = self.server.owner
        url = urlparse(self.path)
        path = url.path.rstrip("/") or "/"
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        fault = owner._next_fault(path)
        owner._count(path, fault)
        if fault is not None:
            return self._fault(fault)
        try:
            body = json.loads(raw or b"{}") if method == "POST" else {}
            if method == "GET":
                body = {k: v[0] for k, v in parse_qs(url.query).items()}
            self._send(200, owner._route(method, path, body))
        except RequestError as error:
            self._send(error.status, {"error": error.message})
        except (ValueError, TypeError, KeyError) as error:
            self._send(400, {"error": f"bad request: {error}"})

    def do_GET(self) -> None:  # noqa: N802 (stdlib naming)
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802 (stdlib naming)
        self._handle("POST")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: AgentGymTestServer


class AgentGymTestServer:
    """Serve ``make_env``'s environments over the AgentGym protocol with faults (context manager).

    Args:
        make_env: Makes the environment for a task id.
        task_ids: Tasks that ``data_idx`` indexes, in order.
        port: TCP port on 127.0.0.1 (0: a free one).
    """

    def __init__(
        self, make_env: Callable[[str], Any], task_ids: Sequence[str], *, port: int = 0
    ) -> None:
        self.pool = SessionPool(make_env, task_ids, max_envs=1024, idle_timeout_s=3600.0)
        self._port = port
        self._lock = threading.Lock()
        self._faults: dict[str, deque[EnvFault]] = defaultdict(deque)
        self.down: set[str] = set()
        """Paths that fail with HTTP 500 on every request (an outage) while listed."""
        self.requests: dict[str, int] = defaultdict(int)
        """Requests seen per path."""
        self.faults_served: int = 0
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: the client's ``base_url``."""
        if self._httpd is None:
            raise ConfigError("AgentGymTestServer is not running: call start() or use `with`")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> AgentGymTestServer:
        if self._httpd is None:
            self._httpd = _Server(("127.0.0.1", self._port), _Handler)
            self._httpd.owner = self
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd, self._thread = None, None
        self.pool.close_all()

    def __enter__(self) -> AgentGymTestServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def inject(self, path: str, *faults: EnvFault) -> None:
        """Queue faults for the next requests to ``path`` (e.g. ``"/step"``)."""
        with self._lock:
            self._faults[path].extend(faults or (EnvFault(),))

    # -- internals used by the handler ------------------------------------------------
    def _next_fault(self, path: str) -> EnvFault | None:
        with self._lock:
            if path in self.down:
                return EnvFault()
            queue = self._faults.get(path)
            return queue.popleft() if queue else None

    def _count(self, path: str, fault: EnvFault | None) -> None:
        with self._lock:
            self.requests[path] += 1
            self.faults_served += fault is not None

    def _route(self, method: str, path: str, body: dict[str, Any]) -> Any:
        pool = self.pool
        if (method, path) == ("POST", "/create"):
            return {"id": pool.create()}
        if (method, path) == ("GET", "/tasks"):
            return {"tasks": pool.task_ids}
        session = int(body.get("id", body.get("env_idx")))
        if (method, path) == ("POST", "/reset"):
            task = pool.resolve_task(body.get("data_idx"), body.get("task_id"))
            return pool.reset(session, task, body.get("seed"))
        if (method, path) == ("POST", "/step"):
            return pool.step(session, str(body["action"]))
        if (method, path) == ("GET", "/observation"):
            return pool.get(session).observation
        if (method, path) == ("POST", "/close"):
            return {"closed": pool.close(session)}
        raise RequestError(404, f"no route {method} {path}")
