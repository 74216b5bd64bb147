"""Serve any agentmc environment over the AgentGym HTTP protocol.

AgentGym (Xi et al., 2024) runs each environment family as a small HTTP
server; agents talk to it with five calls. This module speaks the same
protocol, so frameworks built for AgentGym can use agentmc environments, and
agentmc's own :class:`~agentmc.envs.agentgym.client.AgentGymEnv` can use ours:

==========================  =====================================================
``POST /create``            ``{}`` -> ``{"id": N}`` (a new, empty session)
``POST /reset``             ``{"id", "data_idx"}`` -> ``{"observation", ...}``
``POST /step``              ``{"id", "action"}`` -> ``{"observation", "reward",
                            "done", "terminated", "truncated", "info"}``
``GET /observation?id=N``   the session's last observation (a JSON string)
``POST /close``             ``{"id"}`` -> ``{"closed": true}``
``GET /tasks``              ``{"tasks": [...]}``: what ``data_idx`` indexes
==========================  =====================================================

``env_idx`` is accepted wherever ``id`` is (the WebShop/ALFWorld servers'
spelling), ``session_id`` wherever ``data_idx`` is, and ``task_id`` (a task
name) instead of an index. Every error is a JSON object ``{"error": message}``
with a 4xx status: 400 malformed request, 401 missing token, 404 unknown
session or task, 413 body too large, 503 session limit reached.

Safety: the server binds 127.0.0.1 by default; binding any other address
requires a token, which clients send as ``Authorization: Bearer TOKEN``.
Request bodies are capped, the number of sessions is capped, and sessions
idle for longer than ``idle_timeout_s`` are closed (their ids answer 404 with
the reason). Environment calls run in worker threads, one at a time per
session, so a slow environment does not stall the others.

Example:
    >>> from agentmc.envs.agentgym.client import AgentGymConfig, AgentGymEnv
    >>> app = create_app(make_env, task_ids, ServerConfig())  # doctest: +SKIP
    >>> with BackgroundServer(app) as server:  # doctest: +SKIP
    ...     env = AgentGymEnv(AgentGymConfig(base_url=server.url), task_id="0")
    ...     observation, info = env.reset(seed=0)

References:
    Xi et al. "AgentGym: Evolving Large Language Model-based Agents across
    Diverse Environments." arXiv:2406.04151, 2024.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import json
import math
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from agentmc.envs.core import StepResult, TextEnv
from agentmc.errors import ConfigError, require

EnvFactory = Callable[[str], TextEnv]
"""Makes the environment for one task id."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ServerConfig:
    """Settings of an environment server (``agentmc serve``)."""

    host: str = "127.0.0.1"
    """Address to bind. Anything but a loopback address requires ``token``."""
    port: int = 36001
    """TCP port (0 picks a free one)."""
    token: str | None = None
    """Shared secret clients must send as ``Authorization: Bearer TOKEN``."""
    max_body_bytes: int = 65536
    """Largest request body accepted (413 beyond)."""
    idle_timeout_s: float = 600.0
    """Close sessions that received no request for this long."""
    max_envs: int = 256
    """Most sessions open at once (503 beyond)."""

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be in 0..65535, not {self.port}")
        if self.max_body_bytes < 256:
            raise ConfigError(f"max_body_bytes must be at least 256, not {self.max_body_bytes}")
        if not (self.idle_timeout_s > 0 and math.isfinite(self.idle_timeout_s)):
            raise ConfigError(
                f"idle_timeout_s must be a positive number of seconds, not {self.idle_timeout_s}"
            )
        if self.max_envs < 1:
            raise ConfigError(f"max_envs must be at least 1, not {self.max_envs}")
        if self.token is not None and len(self.token) < 8:
            raise ConfigError("token must be at least 8 characters long")
        if not is_loopback(self.host) and not self.token:
            raise ConfigError(
                f"host {self.host!r} accepts connections from other machines: set a token "
                "(--token, at least 8 characters) or bind 127.0.0.1"
            )


class RequestError(Exception):
    """A request the server refuses; becomes ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Session:
    """One client's environment: created empty, bound to a task by ``reset``."""

    env: TextEnv | None = None
    observation: str = ""
    done: bool = False
    last_used: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


def json_safe(value: Any) -> Any:
    """``value`` with everything JSON cannot carry turned into strings."""
    return json.loads(json.dumps(value, default=str))


class SessionPool:
    """Sessions by id, with limits and idle closing. Thread-safe.

    Args:
        make_env: Makes the environment for a task id.
        task_ids: The tasks ``data_idx`` indexes, in order.
        max_envs: Most sessions open at once.
        idle_timeout_s: Sessions unused for this long are closed by ``close_idle``.
        clock: Monotonic time source (seconds).
    """

    def __init__(
        self,
        make_env: EnvFactory,
        task_ids: Sequence[str],
        *,
        max_envs: int,
        idle_timeout_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.make_env = make_env
        self.task_ids = [str(task) for task in task_ids]
        self.task_index = {task: index for index, task in enumerate(self.task_ids)}
        self.max_envs = max_envs
        self.idle_timeout_s = idle_timeout_s
        self.clock = clock
        self.sessions: dict[int, Session] = {}
        self.closed: dict[int, str] = {}
        self.next_id = 0
        self.guard = threading.Lock()

    def create(self) -> int:
        self.close_idle()
        with self.guard:
            if len(self.sessions) >= self.max_envs:
                raise RequestError(
                    503, f"session limit reached ({self.max_envs} open); close some first"
                )
            session_id = self.next_id
            self.next_id += 1
            self.sessions[session_id] = Session(last_used=self.clock())
            return session_id

    def get(self, session_id: int) -> Session:
        with self.guard:
            session = self.sessions.get(session_id)
            if session is None:
                reason = self.closed.get(
                    session_id, "unknown to this server (it may have restarted)"
                )
                raise RequestError(404, f"environment id {session_id} is {reason}")
            session.last_used = self.clock()
            return session

    def resolve_task(self, data_idx: Any, task_id: Any) -> str:
        if task_id is not None:
            if not isinstance(task_id, str) or task_id not in self.task_index:
                raise RequestError(404, f"unknown task_id {task_id!r}; GET /tasks lists them")
            return task_id
        if data_idx is None:
            data_idx = 0
        if isinstance(data_idx, bool) or not isinstance(data_idx, int):
            raise RequestError(400, f"data_idx must be an integer, not {data_idx!r}")
        if not 0 <= data_idx < len(self.task_ids):
            last = len(self.task_ids) - 1
            raise RequestError(
                404, f"unknown task index {data_idx}: this server has tasks 0..{last}"
            )
        return self.task_ids[data_idx]

    def reset(self, session_id: int, task_id: str, seed: int | None) -> dict[str, Any]:
        session = self.get(session_id)
        with session.lock:
            if session.env is not None and session.env.task_id != task_id:
                session.env.close()
                session.env = None
            if session.env is None:
                session.env = self.make_env(task_id)
            observation, info = session.env.reset(seed=seed)
            session.observation, session.done = observation, False
        return {
            "id": session_id,
            "task_id": task_id,
            "observation": observation,
            "reward": 0.0,
            "done": False,
            "info": json_safe(info),
        }

    def step(self, session_id: int, action: str) -> dict[str, Any]:
        session = self.get(session_id)
        with session.lock:
            if session.env is None:
                raise RequestError(400, f"environment id {session_id} needs /reset before /step")
            result: StepResult = session.env.step(action)
            session.observation = result.observation
            session.done = bool(result.terminated or result.truncated)
        return {
            "observation": result.observation,
            "reward": float(result.reward),
            "done": session.done,
            "terminated": bool(result.terminated),
            "truncated": bool(result.truncated),
            "info": json_safe(result.info),
        }

    def close(self, session_id: int, reason: str = "closed") -> bool:
        with self.guard:
            session = self.sessions.pop(session_id, None)
            if session is None:
                return False
            self.closed[session_id] = reason
        with session.lock:
            if session.env is not None:
                session.env.close()
        return True

    def close_idle(self) -> list[int]:
        """Close sessions idle for longer than ``idle_timeout_s``; returns their ids."""
        now = self.clock()
        with self.guard:
            idle = [
                key
                for key, session in self.sessions.items()
                if now - session.last_used > self.idle_timeout_s
            ]
        reason = f"closed after {self.idle_timeout_s:g} s without requests"
        return [key for key in idle if self.close(key, reason)]

    def close_all(self) -> None:
        for key in list(self.sessions):
            self.close(key, "closed (server shut down)")


def create_app(make_env: EnvFactory, task_ids: Sequence[str], config: ServerConfig):
    """The ASGI application (Starlette) serving ``make_env``'s environments.

    Args:
        make_env: Makes the environment for a task id.
        task_ids: Tasks that ``data_idx`` indexes, in order.
        config: Limits and the token.

    Returns:
        A Starlette application; ``app.state.pool`` is its :class:`SessionPool`.

    Raises:
        MissingExtraError: Starlette is not installed (extra ``server``).
    """
    require("starlette", "server")
    require("anyio", "server")
    import anyio.to_thread
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    pool = SessionPool(
        make_env, task_ids, max_envs=config.max_envs, idle_timeout_s=config.idle_timeout_s
    )
    expected = f"Bearer {config.token}".encode() if config.token else None

    def check_token(request: Request) -> None:
        if expected is None:
            return
        given = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            raise RequestError(401, "missing or wrong token (send Authorization: Bearer TOKEN)")

    too_large = f"request body larger than {config.max_body_bytes} bytes"

    async def read_body(request: Request) -> dict[str, Any]:
        # The limit is enforced here, not by Starlette's max_body_size, whose 413 is text/plain.
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > config.max_body_bytes:
            raise RequestError(413, too_large)
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > config.max_body_bytes:
                raise RequestError(413, too_large)
            chunks.append(chunk)
        raw = b"".join(chunks)
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as error:
            raise RequestError(400, f"malformed JSON body: {error}") from None
        except RecursionError:
            raise RequestError(400, "malformed JSON body: nested too deeply") from None
        if not isinstance(body, dict):
            raise RequestError(400, "the JSON body must be an object")
        return body

    def session_id(source: dict[str, Any]) -> int:
        value = source.get("id", source.get("env_idx"))
        if isinstance(value, str) and value.lstrip("-").isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise RequestError(400, f"'id' must be an integer session id, not {value!r}")
        return value

    def endpoint(handler):
        async def wrapped(request: Request) -> JSONResponse:
            try:
                check_token(request)
                return JSONResponse(await handler(request))
            except RequestError as error:
                return JSONResponse({"error": error.message}, status_code=error.status)

        return wrapped

    async def hello(request: Request) -> Any:
        return f"This is an agentmc environment server ({len(pool.task_ids)} tasks)."

    async def create(request: Request) -> Any:
        await read_body(request)
        return {"id": pool.create()}

    async def reset(request: Request) -> Any:
        body = await read_body(request)
        key = session_id(body)
        task = pool.resolve_task(body.get("data_idx", body.get("session_id")), body.get("task_id"))
        seed = body.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise RequestError(400, f"seed must be an integer or null, not {seed!r}")
        return await anyio.to_thread.run_sync(pool.reset, key, task, seed)

    async def step(request: Request) -> Any:
        body = await read_body(request)
        key = session_id(body)
        action = body.get("action")
        if not isinstance(action, str):
            raise RequestError(400, f"'action' must be a string, not {action!r}")
        return await anyio.to_thread.run_sync(pool.step, key, action)

    async def observation(request: Request) -> Any:
        return pool.get(session_id(dict(request.query_params))).observation

    async def close(request: Request) -> Any:
        body = await read_body(request)
        key = session_id(body)
        pool.get(key)
        return {"closed": await anyio.to_thread.run_sync(pool.close, key)}

    async def tasks(request: Request) -> Any:
        return {"tasks": pool.task_ids}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        period = min(max(config.idle_timeout_s / 4, 0.05), 30.0)

        async def sweep() -> None:
            while True:
                await asyncio.sleep(period)
                await anyio.to_thread.run_sync(pool.close_idle)

        sweeper = asyncio.create_task(sweep())
        try:
            yield
        finally:
            sweeper.cancel()
            pool.close_all()

    routes = [
        Route("/", endpoint(hello), methods=["GET"]),
        Route("/create", endpoint(create), methods=["POST"]),
        Route("/reset", endpoint(reset), methods=["POST"]),
        Route("/step", endpoint(step), methods=["POST"]),
        Route("/observation", endpoint(observation), methods=["GET"]),
        Route("/close", endpoint(close), methods=["POST"]),
        Route("/tasks", endpoint(tasks), methods=["GET"]),
    ]

    async def http_error(request: Request, error: Exception) -> JSONResponse:
        # Starlette's own refusals (405 wrong method, 404 no route)
        # answer in JSON like every other error of this server, not text/plain.
        status = int(getattr(error, "status_code", 500))
        detail = str(getattr(error, "detail", "") or "error")
        headers = getattr(error, "headers", None)
        return JSONResponse({"error": detail}, status_code=status, headers=headers)

    app = Starlette(
        routes=routes, lifespan=lifespan, exception_handlers={HTTPException: http_error}
    )
    app.state.pool = pool
    return app


class BackgroundServer:
    """Run an ASGI app with uvicorn in a daemon thread (tests, benchmarks, notebooks).

    Args:
        app: The application (from :func:`create_app`).
        host: Address to bind.
        port: Port; 0 picks a free one (read it from ``port`` after start).
        start_timeout_s: How long to wait for the server to accept connections.
    """

    def __init__(
        self, app: Any, host: str = "127.0.0.1", port: int = 0, start_timeout_s: float = 20.0
    ) -> None:
        uvicorn = require("uvicorn", "server")
        self.host = host
        self.port = port
        self.start_timeout_s = start_timeout_s
        self.server = uvicorn.Server(
            uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
        )
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> BackgroundServer:
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + self.start_timeout_s
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise ConfigError(f"could not start a server on {self.host}:{self.port}")
            time.sleep(0.01)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=10)
            self.thread = None

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(make_env: EnvFactory, task_ids: Sequence[str], config: ServerConfig) -> None:
    """Serve until interrupted (Ctrl-C); what ``agentmc serve`` runs."""
    uvicorn = require("uvicorn", "server")
    app = create_app(make_env, task_ids, config)
    uvicorn.run(app, host=config.host, port=config.port, log_level="info", lifespan="on")
