"""A policy backed by any OpenAI-compatible server (OpenAI, vLLM, llama.cpp, Ollama, ...).

:class:`OpenAIPolicy` speaks the OpenAI HTTP protocol with everything a long
evaluation needs:

- **A lean client.** By default (``transport="aiohttp"``) each request body is
  built once as plain JSON and posted with ``aiohttp``; replies are read as
  plain JSON. That costs a fraction of a millisecond of CPU per call, where the
  ``openai`` SDK spends milliseconds validating and transforming parameters
  (growing with the conversation), which at K = 64 particles made the client,
  not the server, the bottleneck. ``transport="sdk"`` goes through the
  official ``AsyncOpenAI`` client instead (with its aiohttp transport when
  ``openai[aiohttp]`` is installed); both share retries, errors and usage.
- **Identical prompts share one request.** Concurrent ``n=1`` calls whose
  requests are identical (all particles at the first step of a task, the
  clones of one parent after resampling) are sent as one request with
  ``n=count`` (``group_requests``); each caller gets one of the completions,
  the first caller carries the request's usage (the prompt is billed once).
  A server that does not honour ``n`` gets one request per caller (below).

- **Two endpoints.** ``mode="chat"`` sends the conversation as chat messages
  (system prompt and worked examples from :mod:`agentmc.policies.prompts`);
  ``mode="completion"`` sends one transcript to ``/v1/completions`` and stops
  at the end of the action (better for small base models).
- **n samples.** ``n`` is asked in one request where the server honours it;
  a server that answers fewer choices (or rejects ``n``) is remembered and
  asked one request per sample (``samples_per_request="auto"``).
- **Limits.** At most ``max_concurrency`` requests in flight (a semaphore),
  plus optional requests- and tokens-per-minute limits (``aiolimiter``).
- **One retry policy.** The SDK's own retries are off; ``tenacity`` retries
  429, 408/409, 5xx, timeouts, dropped connections, malformed JSON and
  truncated streams with exponential backoff and jitter, honouring
  ``Retry-After``, bounded by ``max_attempts`` and a total ``deadline_s`` per
  call. The deadline counts time at the server (attempts in flight and the
  waits between them), not time queued behind our own concurrency or rate
  limits, so a slow single-slot server fails no call that is merely waiting
  its turn. Other errors (unknown model, bad key, bad request) fail at once. A
  call that fails for good raises :class:`~agentmc.errors.PolicyError` with a
  one-line message and the number of requests it sent; rollouts record it and
  move on. A bad key or an unknown model raises its subclass
  :class:`~agentmc.errors.FatalPolicyError`, which stops a run. Requests that
  failed before a call succeeded ride on its usage as ``failed_attempts``.
- **Usage and cost.** Each request's tokens and dollar cost (from a
  :class:`~agentmc.policies.pricing.PriceTable`; ``None`` when the model's
  price is unknown) ride on the first completion of that request;
  :attr:`OpenAIPolicy.usage` is the running total actually spent, and
  ``max_cost_usd`` stops a run that would exceed its budget.
- **Resumable.** With ``cache_dir`` set, seeded requests are stored on disk
  (:mod:`agentmc.policies.cache`) and an interrupted evaluation pays once.
- **The key stays secret.** It is read from the environment variable named by
  ``api_key_env`` (default ``OPENAI_API_KEY``) when the policy is built, and
  appears in no repr, log line, record, cache entry or error message (server
  error texts are scrubbed of it).

A client is made per event loop, so the policy also works under repeated
``asyncio.run`` calls.

Example:
    >>> import asyncio
    >>> from agentmc.testing import OpenAITestServer
    >>> from agentmc.types import Message
    >>> with OpenAITestServer(replies=["Action: get 1 oak logs"]) as server:
    ...     policy = OpenAIPolicy(
    ...         OpenAIConfig(model="test-model", base_url=server.base_url, allow_no_key=True)
    ...     )
    ...     replies = asyncio.run(policy.complete([Message("user", "Goal: craft stick.")], n=2))
    >>> [r.text for r in replies]
    ['Action: get 1 oak logs', 'Action: get 1 oak logs']
    >>> replies[0].usage.calls, replies[1].usage.calls, replies[0].usage.cost is None
    (1, 0, True)
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import logging
import math
import os
import time
import weakref
from collections.abc import AsyncGenerator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from agentmc.errors import ConfigError, FatalPolicyError, PolicyError, require
from agentmc.policies.cache import RequestCache, request_key
from agentmc.policies.core import Completion
from agentmc.policies.pricing import DEFAULT_PRICES, PriceTable
from agentmc.policies.prompts import PromptFormat
from agentmc.types import Message, Usage

__all__ = ["ClientLimits", "OpenAIConfig", "OpenAIPolicy", "config_summary"]

logger = logging.getLogger(__name__)

_NO_KEY = "not-needed"  # what the SDK sends when allow_no_key is set and no key exists
_DEFAULT_BASE_URL = "https://api.openai.com/v1"


@dataclass(frozen=True)
class ClientLimits:
    """Concurrency, rate limits, retries and budget of one policy.

    Attributes:
        max_concurrency: Requests in flight at once (the default lets one step of
            up to 256 particles go out at once).
        requests_per_minute: Request rate limit (None: unlimited).
        tokens_per_minute: Token rate limit, counting an estimate of prompt tokens
            (4 characters each) plus ``max_tokens`` per sample (None: unlimited).
        request_timeout_s: Seconds one HTTP attempt may take.
        deadline_s: Seconds one ``complete`` call may spend at the server in all:
            attempts in flight plus the waits between retries. Time queued behind
            ``max_concurrency`` or the rate limits is not counted.
        max_attempts: Attempts per request before giving up.
        backoff_initial_s: First retry delay; doubles each retry, plus up to this much jitter.
        backoff_max_s: Largest retry delay (a server's Retry-After is honoured as given).
        max_cost_usd: Stop (PolicyError) once this much has been spent (None: no budget).
    """

    max_concurrency: int = 256
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    request_timeout_s: float = 60.0
    deadline_s: float = 120.0
    max_attempts: int = 8
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    max_cost_usd: float | None = None

    def __post_init__(self) -> None:
        if self.max_concurrency < 1:
            raise ConfigError(
                f"ClientLimits.max_concurrency must be >= 1, got {self.max_concurrency}"
            )
        for name in ("requests_per_minute", "tokens_per_minute", "max_cost_usd"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ConfigError(f"ClientLimits.{name} must be > 0 or None, got {value}")
        for name in ("request_timeout_s", "deadline_s", "backoff_max_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"ClientLimits.{name} must be a positive number, got {value}")
        if self.backoff_initial_s < 0:
            raise ConfigError(
                f"ClientLimits.backoff_initial_s must be >= 0, got {self.backoff_initial_s}"
            )
        if self.max_attempts < 1:
            raise ConfigError(f"ClientLimits.max_attempts must be >= 1, got {self.max_attempts}")


@dataclass(frozen=True)
class OpenAIConfig:
    """What to call and how.

    Attributes:
        model: Model name as the server knows it.
        base_url: Server URL ending in ``/v1`` (None: the SDK default, OpenAI, or
            ``$OPENAI_BASE_URL``).
        api_key_env: Environment variable holding the API key.
        allow_no_key: Allow a missing key (local servers such as vLLM or Ollama).
        mode: ``"chat"`` (``/v1/chat/completions``) or ``"completion"`` (``/v1/completions``).
        prompt: Instructions, examples and reply style added to the conversation.
        max_tokens: Most tokens per sampled reply.
        samples_per_request: ``"auto"`` (ask ``n`` at once, fall back to one request
            per sample if the server does not honour ``n``), ``"n"`` or ``"single"``.
        stream: Receive replies as server-sent events (a stream cut short is retried).
        logprobs: Ask for token log-probabilities and report each reply's total.
        cache_dir: Directory of the on-disk request cache (None: no cache).
        limits: Concurrency, rate limits, retries and budget.
        transport: ``"aiohttp"`` (post prebuilt JSON with aiohttp, the fast path) or
            ``"sdk"`` (the ``openai`` SDK's ``AsyncOpenAI``).
        group_requests: Send concurrent ``n=1`` calls with identical requests as one
            request with ``n=count`` (needs ``samples_per_request`` other than ``"single"``).
    """

    model: str
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    allow_no_key: bool = False
    mode: Literal["chat", "completion"] = "chat"
    prompt: PromptFormat = field(default_factory=lambda: PromptFormat(style="react"))
    max_tokens: int = 256
    samples_per_request: Literal["auto", "n", "single"] = "auto"
    stream: bool = False
    logprobs: bool = False
    cache_dir: str | None = None
    limits: ClientLimits = field(default_factory=ClientLimits)
    transport: Literal["aiohttp", "sdk"] = "aiohttp"
    group_requests: bool = True

    def __post_init__(self) -> None:
        if not self.model:
            raise ConfigError("OpenAIConfig.model must name a model, e.g. 'gpt-4o-mini'")
        if not self.api_key_env:
            raise ConfigError("OpenAIConfig.api_key_env must name an environment variable")
        if self.mode not in ("chat", "completion"):
            raise ConfigError(
                f"OpenAIConfig.mode must be 'chat' or 'completion', got {self.mode!r}"
            )
        if self.samples_per_request not in ("auto", "n", "single"):
            raise ConfigError(
                "OpenAIConfig.samples_per_request must be 'auto', 'n' or 'single', "
                f"got {self.samples_per_request!r}"
            )
        if self.transport not in ("aiohttp", "sdk"):
            raise ConfigError(
                f"OpenAIConfig.transport must be 'aiohttp' or 'sdk', got {self.transport!r}"
            )
        if self.max_tokens < 1:
            raise ConfigError(f"OpenAIConfig.max_tokens must be >= 1, got {self.max_tokens}")
        if self.base_url is not None and not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"OpenAIConfig.base_url must start with http:// or https://, got {self.base_url!r}"
            )


class _Retryable(Exception):
    """A failure worth another attempt; ``describe`` is safe to show (key scrubbed)."""

    def __init__(self, describe: str, retry_after: float | None = None) -> None:
        super().__init__(describe)
        self.describe = describe
        self.retry_after = retry_after


class _Fatal(Exception):
    """A failure that no retry can fix (bad request, unknown model, bad key).

    ``run_wide`` marks the failures that every other request would hit too (a bad
    key, an unknown model): they stop a whole run, not just one call.
    """

    def __init__(self, message: str, *, run_wide: bool = False) -> None:
        super().__init__(message)
        self.run_wide = run_wide


class _NUnsupported(Exception):
    """The server rejected ``n`` > 1."""


_Answer = tuple[list[str], list[float | None], list[bool], Usage | None]
"""Texts, log-probabilities, finished flags (one per choice) and the request's usage."""


@dataclass
class _Clock:
    """Seconds a call has spent at the server (attempts plus retry waits) and its budget."""

    budget: float
    used: float = 0.0


@dataclass
class _Group:
    """Concurrent ``n=1`` calls with the same request, served by one request."""

    messages: tuple[Message, ...]
    temperature: float
    seeds: list[int | None] = field(default_factory=list)
    futures: list[asyncio.Future[Completion]] = field(default_factory=list)


@dataclass
class _LoopState:
    """Per-event-loop objects: the HTTP client, the asyncio primitives, pending groups."""

    client: Any
    semaphore: asyncio.Semaphore
    request_limiter: Any
    token_limiter: Any
    pending: dict[tuple[Any, ...], _Group] = field(default_factory=dict)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    keeper: AsyncGenerator[None, None] | None = None


async def _close_at_shutdown(state: _LoopState) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            await state.client.close()


class _AioHttpClient:
    """A pooled aiohttp session posting to one server's two completion endpoints."""

    def __init__(self, aiohttp: Any, base_url: str, key: str, max_concurrency: int) -> None:
        from agentmc import __version__

        base = base_url.rstrip("/")
        self._urls = {True: f"{base}/chat/completions", False: f"{base}/completions"}
        headers = {
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": f"agentmc/{__version__}",
        }
        for variable, header in (
            ("OPENAI_ORG_ID", "OpenAI-Organization"),
            ("OPENAI_PROJECT_ID", "OpenAI-Project"),
        ):
            if os.environ.get(variable):
                headers[header] = os.environ[variable]
        # Plain http (a local server) needs no TLS context, whose set-up costs ~0.3 s.
        tls = None if base.startswith("https://") else False
        connector = aiohttp.TCPConnector(
            limit=max_concurrency, limit_per_host=max_concurrency, ssl=tls
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=None),  # the caller's asyncio.timeout rules
            skip_auto_headers=("Accept-Encoding",),
            raise_for_status=False,
        )

    def post(self, chat: bool, data: bytes) -> Any:
        return self._session.post(self._urls[chat], data=data)

    async def close(self) -> None:
        await self._session.close()


def _retry_after(headers: Any) -> float | None:
    """Seconds from ``retry-after-ms`` / ``Retry-After`` (seconds or an HTTP date)."""
    if headers is None:
        return None
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            return max(0.0, float(value) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return None if parsed is None else max(0.0, parsed.timestamp() - time.time())


def _server_message(error: Any) -> str:
    body = getattr(error, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, dict) else None
        if message:
            return " ".join(str(message).split())
    return " ".join(str(getattr(error, "message", "") or error).split())


class OpenAIPolicy:
    """Samples replies from an OpenAI-compatible server.

    Args:
        config: What to call and how.
        prices: Price table for the cost of each call (default :data:`DEFAULT_PRICES`).

    Raises:
        ConfigError: The key variable is unset (and ``allow_no_key`` is False), or
            ``max_cost_usd`` is set for a model without a price.
        MissingExtraError: The ``openai`` extra is not installed.
    """

    synthetic = False

    def __init__(self, config: OpenAIConfig, *, prices: PriceTable | None = None) -> None:
        if config.transport == "aiohttp":
            self._aiohttp = require("aiohttp", "openai")
            self._openai = None
        else:
            self._openai = require("openai", "openai")
        self._tenacity = require("tenacity", "openai")
        self._aiolimiter = require("aiolimiter", "openai")
        self.config = config
        self.name = config.model
        self.prices = DEFAULT_PRICES if prices is None else prices
        key = os.environ.get(config.api_key_env, "").strip()
        if not key and not config.allow_no_key:
            raise ConfigError(
                f"no API key: the environment variable {config.api_key_env} is not set. "
                f"Export {config.api_key_env}=<your key>, name another variable with "
                "api_key_env, or allow_no_key for a local server"
            )
        self._key = key or _NO_KEY
        if config.limits.max_cost_usd is not None and config.model not in self.prices:
            raise ConfigError(
                f"ClientLimits.max_cost_usd needs the price of {config.model!r}, which the price "
                "table lacks: add it with PriceTable.with_prices or a price file"
            )
        self._cache = None if config.cache_dir is None else RequestCache(Path(config.cache_dir))
        self._states: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = (
            weakref.WeakKeyDictionary()
        )
        self._n_supported: bool | None = {"auto": None, "n": True, "single": False}[
            config.samples_per_request
        ]
        self._base_url = (
            config.base_url or os.environ.get("OPENAI_BASE_URL") or _DEFAULT_BASE_URL
        )
        self.usage = Usage()
        #: requests sent (attempts), retries, cache hits, calls that failed for good,
        #: and the ``n=1`` calls that were served by a shared (grouped) request.
        self.stats = {
            "requests": 0,
            "retries": 0,
            "cache_hits": 0,
            "failures": 0,
            "grouped_calls": 0,
        }

    def __repr__(self) -> str:
        where = self.config.base_url or "default OpenAI endpoint"
        config = self.config
        return f"OpenAIPolicy(model={config.model!r}, base_url={where!r}, mode={config.mode!r})"

    # -- plumbing ---------------------------------------------------------------------------
    @property
    def _where(self) -> str:
        return self.config.base_url or "the OpenAI API"

    def _scrub(self, text: str) -> str:
        if self._key != _NO_KEY and len(self._key) >= 4:
            text = text.replace(self._key, "***")
        return text

    async def _state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        state = self._states.get(loop)
        if state is None:
            state = self._new_state()
            self._states[loop] = state
            # An async generator parked at a ``yield`` is closed by ``asyncio.run``'s
            # ``shutdown_asyncgens``, which then closes the HTTP session on its own
            # loop: no "unclosed session" warning when a caller never calls aclose.
            state.keeper = _close_at_shutdown(state)
            await anext(state.keeper)
        return state

    def _new_state(self) -> _LoopState:
        limits = self.config.limits
        limiter = self._aiolimiter.AsyncLimiter
        if self.config.transport == "aiohttp":
            client: Any = _AioHttpClient(
                self._aiohttp, self._base_url, self._key, limits.max_concurrency
            )
        else:
            openai = self._openai
            http_client = None
            aiohttp_client = getattr(openai, "DefaultAioHttpClient", None)
            if aiohttp_client is not None:
                try:
                    http_client = aiohttp_client(timeout=limits.request_timeout_s)
                except RuntimeError:  # openai[aiohttp] is not installed: the SDK's httpx
                    http_client = None
            client = openai.AsyncOpenAI(
                api_key=self._key,
                base_url=self.config.base_url,
                max_retries=0,  # tenacity is the one retry policy
                timeout=limits.request_timeout_s,
                http_client=http_client,
            )
        return _LoopState(
            client=client,
            semaphore=asyncio.Semaphore(limits.max_concurrency),
            request_limiter=None
            if limits.requests_per_minute is None
            else limiter(limits.requests_per_minute, 60.0),
            token_limiter=None
            if limits.tokens_per_minute is None
            else limiter(limits.tokens_per_minute, 60.0),
        )

    async def aclose(self) -> None:
        """Close the HTTP client of the running event loop."""
        state = self._states.pop(asyncio.get_running_loop(), None)
        if state is not None:
            await state.client.close()
            if state.keeper is not None:
                await state.keeper.aclose()

    def _request(self, messages: Sequence[Message], temperature: float) -> dict[str, Any]:
        config = self.config
        request: dict[str, Any] = {
            "model": config.model,
            "temperature": temperature,
            "max_tokens": config.max_tokens,
        }
        if config.mode == "chat":
            request["messages"] = config.prompt.chat(messages)
            if config.prompt.style == "react":
                request["stop"] = list(config.prompt.stop)
            if config.logprobs:
                request["logprobs"] = True
        else:
            request["prompt"] = config.prompt.completion(messages)
            request["stop"] = list(config.prompt.stop)
            if config.logprobs:
                request["logprobs"] = 1
        return request

    def _estimate_tokens(self, request: dict[str, Any], n: int) -> float:
        text = request.get("prompt") or "".join(m["content"] for m in request["messages"])
        return len(text) / 4.0 + n * self.config.max_tokens

    # -- the public call --------------------------------------------------------------------
    async def complete(
        self,
        messages: Sequence[Message],
        *,
        n: int = 1,
        temperature: float = 1.0,
        seed: int | None = None,
        candidates: Sequence[str] | None = None,
    ) -> list[Completion]:
        """Sample ``n`` replies (``candidates`` is not used by this policy).

        Raises:
            PolicyError: The server failed for good, the deadline passed, or the
                budget is spent.
            ConfigError: ``n`` or ``temperature`` is invalid.
        """
        if n < 1:
            raise ConfigError(f"n must be >= 1, got {n}")
        if not (math.isfinite(temperature) and temperature >= 0):
            raise ConfigError(f"temperature must be >= 0, got {temperature}")
        if n == 1 and self._grouping:
            return await self._grouped(tuple(messages), temperature, seed)
        request = self._request(messages, temperature)
        key = self._cache_key(request, n, seed)
        if key is not None:
            cached = self._cache.get(key) if self._cache is not None else None
            if cached is not None and len(cached) == n:
                self.stats["cache_hits"] += 1
                return cached
        seeds = [_sample_seed(seed, i) for i in range(n)]
        completions = await self._sample(request, seeds, _Clock(self.config.limits.deadline_s))
        if key is not None and self._cache is not None:
            self._cache.put(key, completions)
        return completions

    @property
    def _grouping(self) -> bool:
        return self.config.group_requests and self._n_supported is not False

    def _cache_key(self, request: dict[str, Any], n: int, seed: int | None) -> str | None:
        if self._cache is None or seed is None:
            return None
        description = {
            "base_url": self.config.base_url,
            "mode": self.config.mode,
            "n": n,
            "seed": seed,
            **request,
        }
        return request_key(description)

    async def _grouped(
        self, messages: tuple[Message, ...], temperature: float, seed: int | None
    ) -> list[Completion]:
        """Join the group of identical requests made in this turn of the event loop."""
        state = await self._state()
        group_key = (messages, temperature)
        group = state.pending.get(group_key)
        if group is None:
            group = _Group(messages, temperature)
            state.pending[group_key] = group
            if len(state.pending) == 1:
                # Runs after every task already scheduled in this turn (asyncio's ready
                # queue is FIFO): all particles of one ``gather`` join before it.
                asyncio.get_running_loop().call_soon(self._flush, state)
        future: asyncio.Future[Completion] = asyncio.get_running_loop().create_future()
        group.seeds.append(seed)
        group.futures.append(future)
        return [await future]

    def _flush(self, state: _LoopState) -> None:
        groups, state.pending = list(state.pending.values()), {}
        for group in groups:
            task = asyncio.get_running_loop().create_task(self._serve(group))
            state.tasks.add(task)
            task.add_done_callback(state.tasks.discard)

    async def _serve(self, group: _Group) -> None:
        """One request (``n`` = group size) for a group; one completion to each member."""
        try:
            request = self._request(group.messages, group.temperature)
            completions: list[Completion | None] = [None] * len(group.seeds)
            missing = list(range(len(group.seeds)))
            keys = [self._cache_key(request, 1, s) for s in group.seeds]
            if self._cache is not None:
                for i, key in enumerate(keys):
                    cached = None if key is None else self._cache.get(key)
                    if cached is not None and len(cached) == 1:
                        self.stats["cache_hits"] += 1
                        completions[i] = cached[0]
                missing = [i for i in missing if completions[i] is None]
            if missing:
                if len(missing) > 1:
                    self.stats["grouped_calls"] += len(missing)
                fresh = await self._sample(
                    request,
                    [group.seeds[i] for i in missing],
                    _Clock(self.config.limits.deadline_s),
                )
                for i, completion in zip(missing, fresh, strict=True):
                    completions[i] = completion
                    key = keys[i]
                    if key is not None and self._cache is not None:
                        self._cache.put(key, [completion])
        except Exception as error:  # noqa: BLE001 (handed to every member, which re-raises)
            for future in group.futures:
                if not future.done():
                    future.set_exception(error)
            return
        for future, completion in zip(group.futures, completions, strict=True):
            if not future.done():
                future.set_result(completion)

    async def _sample(
        self, request: dict[str, Any], seeds: Sequence[int | None], clock: _Clock
    ) -> list[Completion]:
        """``len(seeds)`` samples: one request with ``n`` if the server honours it."""
        n = len(seeds)
        if n > 1 and self._n_supported is not False:
            try:
                completions = await self._call(request, n, seeds[0], clock)
            except _NUnsupported:
                logger.info("%s rejects n > 1; sending one request per sample", self._where)
                self._n_supported = False
                completions = []
            if len(completions) == n:
                if self._n_supported is None:
                    self._n_supported = True
                return completions
            if completions and self._n_supported is None:
                logger.info(
                    "%s answered %d of n=%d samples; sending one request per sample",
                    self._where,
                    len(completions),
                    n,
                )
                self._n_supported = False
            start = len(completions)
        else:
            completions, start = [], 0
        # One request per remaining sample, in parallel: each has its own deadline clock.
        more = await asyncio.gather(
            *(self._call(request, 1, s, _Clock(clock.budget, clock.used)) for s in seeds[start:])
        )
        for group in more:
            completions.extend(group)
        return completions[:n]

    async def _call(
        self, request: dict[str, Any], n: int, seed: int | None, clock: _Clock
    ) -> list[Completion]:
        """One request with retries; usage on its first completion."""
        self._check_budget()
        # Fast path: most calls succeed at once and never need tenacity's machinery
        # (which costs more CPU per call than the lean HTTP request itself).
        try:
            return await self._attempt(request, n, seed, clock)
        except _Retryable as error:
            outcome = await self._retry(request, n, seed, clock, error)
            if isinstance(outcome, list):
                return outcome
            failure, fatal, attempts = outcome
        except _Fatal as error:
            failure, fatal, attempts = str(error), error.run_wide, 1
        # Raised outside the except blocks so no SDK exception (which holds the
        # request and its headers) is chained to the PolicyError.
        self.stats["failures"] += 1
        error_type = FatalPolicyError if fatal else PolicyError
        raise error_type(self._scrub(failure), attempts=attempts)

    async def _retry(
        self, request: dict[str, Any], n: int, seed: int | None, clock: _Clock, first: _Retryable
    ) -> Any:
        """Retry after a first failed attempt.

        Returns:
            The completions, or ``(why it failed, whether the failure is run-wide,
            requests sent)``.
        """
        tenacity = self._tenacity
        limits = self.config.limits
        backoff = tenacity.wait_exponential_jitter(
            multiplier=limits.backoff_initial_s,
            max=limits.backoff_max_s,
            jitter=limits.backoff_initial_s,  # timing only: never changes what is sampled
        )

        def wait(state: Any) -> float:
            error = state.outcome.exception()
            if isinstance(error, _Retryable) and error.retry_after is not None:
                return error.retry_after
            return float(backoff(state))

        def stop(state: Any) -> bool:
            return clock.used + state.upcoming_sleep >= clock.budget

        def before_sleep(state: Any) -> None:
            self.stats["retries"] += 1
            clock.used += state.upcoming_sleep  # waiting on the server's behalf counts
            logger.info(
                "retrying %s in %.2f s (attempt %d failed: %s)",
                self._where,
                state.upcoming_sleep,
                state.attempt_number,
                state.outcome.exception(),
            )

        retrying = tenacity.AsyncRetrying(
            retry=tenacity.retry_if_exception_type(_Retryable),
            stop=tenacity.stop_after_attempt(limits.max_attempts) | stop,
            wait=wait,
            before_sleep=before_sleep,
            reraise=True,
        )
        failed = [first]

        async def attempt() -> list[Completion]:
            if failed:  # tenacity's attempt 1 is the one already made
                raise failed.pop()
            return await self._attempt(request, n, seed, clock)

        try:
            result = await retrying(attempt)
        except _Retryable as error:
            attempts = retrying.statistics.get("attempt_number", 1)
            return (
                f"{self._where} gave no usable answer for model {self.config.model!r} within "
                f"{clock.used:.1f} s at the server ({attempts} attempts; deadline "
                f"{limits.deadline_s:g} s): {error.describe}",
                False,
                int(attempts),
            )
        except _Fatal as error:
            return str(error), error.run_wide, int(retrying.statistics.get("attempt_number", 1))
        # Requests that failed before this one succeeded are billed like it: they ride
        # on the first completion's usage, so every episode counts what was sent.
        retried = int(retrying.statistics.get("attempt_number", 1)) - 1
        if retried and result:
            head = result[0]
            usage = replace(head.usage, failed_attempts=head.usage.failed_attempts + retried)
            result[0] = Completion(head.text, head.logprob, usage)
        return result

    def _check_budget(self) -> None:
        budget = self.config.limits.max_cost_usd
        spent = self.usage.cost
        if budget is not None and spent is not None and spent >= budget:
            raise PolicyError(
                f"budget exhausted: spent ${spent:.4f} of max_cost_usd=${budget:g} on "
                f"{self.config.model!r}"
            )

    async def _attempt(
        self, request: dict[str, Any], n: int, seed: int | None, clock: _Clock
    ) -> list[Completion]:
        state = await self._state()
        async with state.semaphore:  # queueing here is our own limit: not on the clock
            if state.request_limiter is not None:
                await state.request_limiter.acquire()
            if state.token_limiter is not None:
                amount = min(self._estimate_tokens(request, n), state.token_limiter.max_rate)
                await state.token_limiter.acquire(amount)
            remaining = clock.budget - clock.used
            if remaining <= 0:
                raise _Retryable("the deadline passed")
            timeout = min(self.config.limits.request_timeout_s, remaining)
            self.stats["requests"] += 1
            loop = asyncio.get_running_loop()
            started = loop.time()
            try:
                if self.config.transport == "aiohttp":
                    answer = await self._post(state.client, request, n, seed, timeout)
                else:
                    answer = await self._send_sdk(state.client, request, n, seed, timeout)
            finally:
                clock.used += loop.time() - started
        texts, logprobs, finished, usage = answer
        if not texts:
            raise _Retryable("the response held no choices")
        if not all(finished):
            raise _Retryable("the stream ended before the reply was complete")
        if usage is None:  # the server reported no usage: tokens and cost unknown
            usage = Usage(1, 0, 0, None)
        else:
            cost = self.prices.cost(self.config.model, usage)
            usage = Usage(1, usage.prompt_tokens, usage.completion_tokens, cost)
        self.usage = self.usage + usage
        return [
            Completion(text, logprob, usage if i == 0 else Usage())
            for i, (text, logprob) in enumerate(zip(texts, logprobs, strict=True))
        ]

    # -- transports -------------------------------------------------------------------------
    async def _post(
        self, client: Any, request: dict[str, Any], n: int, seed: int | None, timeout: float
    ) -> _Answer:
        """The lean path: post the JSON body with aiohttp, read plain JSON back."""
        aiohttp = self._aiohttp
        body = dict(request)
        if n > 1:
            body["n"] = n
        if seed is not None:
            body["seed"] = seed
        chat = self.config.mode == "chat"
        stream = self.config.stream
        if stream:
            body.update(stream=True, stream_options={"include_usage": True})
        async def exchange() -> _Answer:
            async with client.post(chat, json.dumps(body).encode()) as response:
                if response.status >= 400:
                    raw = await response.read()
                    raise self._classify(response.status, _error_text(raw), response.headers, n)
                if stream:
                    return await _read_sse(response.content, chat)
                return _read_json(json.loads(await response.read()), chat)

        try:
            # wait_for runs the exchange as its own task, so the timeout cancels it alone,
            # whichever task started this call.
            return await asyncio.wait_for(exchange(), timeout)
        except TimeoutError:
            raise _Retryable(f"no answer within {timeout:.1f} s (request timeout)") from None
        except aiohttp.ClientError as error:
            raise _Retryable(f"connection failed or was cut off ({type(error).__name__})") from None
        except (ValueError, KeyError, TypeError, AttributeError, IndexError) as error:
            raise _Retryable(f"malformed response ({type(error).__name__})") from None

    async def _send_sdk(
        self, client: Any, request: dict[str, Any], n: int, seed: int | None, timeout: float
    ) -> _Answer:
        openai = self._openai
        kwargs = dict(request, timeout=timeout)
        if n > 1:
            kwargs["n"] = n
        if seed is not None:
            kwargs["seed"] = seed
        chat = self.config.mode == "chat"
        endpoint = client.chat.completions if chat else client.completions
        try:
            if self.config.stream:
                kwargs.update(stream=True, stream_options={"include_usage": True})
                return await self._read_stream(await endpoint.create(**kwargs), chat)
            return self._read_response(await endpoint.create(**kwargs), chat)
        except openai.APIStatusError as error:
            headers = getattr(getattr(error, "response", None), "headers", None)
            raise self._classify(
                int(getattr(error, "status_code", 0) or 0), _server_message(error), headers, n
            ) from None
        except openai.APITimeoutError:
            raise _Retryable(f"no answer within {timeout:.1f} s (request timeout)") from None
        except openai.APIConnectionError as error:
            cause = error.__cause__ or error.__context__
            detail = f" ({type(cause).__name__})" if cause is not None else ""
            raise _Retryable(f"connection failed or was cut off{detail}") from None
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise _Retryable(f"malformed response ({type(error).__name__})") from None

    def _classify(self, status: int, message: str, headers: Any, n: int) -> Exception:
        message = self._scrub(message)
        if status in (408, 409, 429) or status >= 500:
            return _Retryable(f"HTTP {status}: {message}", _retry_after(headers))
        if status in (401, 403):
            return _Fatal(
                f"{self._where} refused the API key (HTTP {status}: {message}); check the key "
                f"in ${self.config.api_key_env}",
                run_wide=True,
            )
        if status == 404:
            return _Fatal(
                f"model {self.config.model!r} is not served at {self._where} (HTTP 404: "
                f"{message}); check the model name and base_url",
                run_wide=True,
            )
        if status in (400, 422) and n > 1 and self.config.samples_per_request == "auto":
            return _NUnsupported()
        return _Fatal(f"{self._where} rejected the request (HTTP {status}: {message})")

    def _read_response(self, response: Any, chat: bool) -> tuple[list, list, list, Usage | None]:
        choices = sorted(response.choices, key=lambda c: c.index)
        texts, logprobs = [], []
        for choice in choices:
            if chat:
                texts.append(choice.message.content or "")
                content = getattr(choice.logprobs, "content", None)
                logprobs.append(None if not content else float(sum(t.logprob for t in content)))
            else:
                texts.append(choice.text or "")
                tokens = getattr(choice.logprobs, "token_logprobs", None)
                logprobs.append(
                    None if not tokens else float(sum(x for x in tokens if x is not None))
                )
        return texts, logprobs, [True] * len(texts), _usage_of(response)

    async def _read_stream(self, stream: Any, chat: bool) -> tuple[list, list, list, Usage | None]:
        parts: dict[int, list[str]] = {}
        finished: dict[int, bool] = {}
        logprob: dict[int, float | None] = {}
        usage: Usage | None = None
        async for chunk in stream:
            if getattr(chunk, "usage", None) is not None:
                usage = _usage_of(chunk)
            for choice in chunk.choices:
                index = choice.index
                piece = (choice.delta.content if chat else choice.text) or ""
                parts.setdefault(index, []).append(piece)
                finished.setdefault(index, False)
                if choice.finish_reason is not None:
                    finished[index] = True
                content = getattr(choice.logprobs, "content", None) if chat else None
                if not chat:
                    content = getattr(choice.logprobs, "token_logprobs", None)
                if content:
                    values = [getattr(t, "logprob", t) for t in content]
                    previous = logprob.get(index) or 0.0
                    logprob[index] = previous + float(sum(v for v in values if v is not None))
        order = sorted(parts)
        return (
            ["".join(parts[i]) for i in order],
            [logprob.get(i) for i in order],
            [finished[i] for i in order],
            usage,
        )


def _error_text(raw: bytes) -> str:
    """The message of an error body (``{"error": {"message": ...}}``), else the raw text."""
    try:
        body = json.loads(raw)
    except ValueError:
        return " ".join(raw.decode("utf-8", "replace").split())[:500]
    if isinstance(body, dict):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, dict) else inner
        if message:
            return " ".join(str(message).split())
    return " ".join(str(body).split())[:500]


def _choice_of(choice: dict[str, Any], chat: bool) -> tuple[str, float | None]:
    """Text and total log-probability of one choice (a reply or a stream delta)."""
    logprobs = choice.get("logprobs") or {}
    if chat:
        part = choice.get("message") or choice.get("delta") or {}
        values = [t.get("logprob") for t in logprobs.get("content") or ()]
        text = part.get("content") or ""
    else:
        values = list(logprobs.get("token_logprobs") or ())
        text = choice.get("text") or ""
    values = [v for v in values if v is not None]
    return text, (float(sum(values)) if values else None)


def _usage_dict(usage: Any) -> Usage | None:
    if not isinstance(usage, dict):
        return None
    return Usage(1, int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))


def _read_json(body: dict[str, Any], chat: bool) -> _Answer:
    """A non-streamed reply as plain JSON."""
    choices = sorted(body["choices"], key=lambda c: c.get("index", 0))
    texts, logprobs = [], []
    for choice in choices:
        text, logprob = _choice_of(choice, chat)
        texts.append(text)
        logprobs.append(logprob)
    return texts, logprobs, [True] * len(texts), _usage_dict(body.get("usage"))


async def _read_sse(content: Any, chat: bool) -> _Answer:
    """A streamed reply: ``data: {...}`` lines up to ``data: [DONE]``."""
    parts: dict[int, list[str]] = {}
    finished: dict[int, bool] = {}
    logprob: dict[int, float | None] = {}
    usage: Usage | None = None
    async for raw in content:
        line = raw.strip()
        if not line.startswith(b"data:"):
            continue
        data = line[5:].strip()
        if data == b"[DONE]":
            break
        chunk = json.loads(data)
        if chunk.get("usage") is not None:
            usage = _usage_dict(chunk["usage"])
        for choice in chunk.get("choices") or ():
            index = int(choice.get("index", 0))
            piece, value = _choice_of(choice, chat)
            parts.setdefault(index, []).append(piece)
            finished.setdefault(index, False)
            if choice.get("finish_reason") is not None:
                finished[index] = True
            if value is not None:
                logprob[index] = (logprob.get(index) or 0.0) + value
    order = sorted(parts)
    return (
        ["".join(parts[i]) for i in order],
        [logprob.get(i) for i in order],
        [finished[i] for i in order],
        usage,
    )


def _usage_of(response: Any) -> Usage | None:
    usage = getattr(response, "usage", None)
    if usage is None:
        return None
    return Usage(1, int(usage.prompt_tokens or 0), int(usage.completion_tokens or 0))


def _sample_seed(seed: int | None, index: int) -> int | None:
    """Seed of sample ``index`` when samples go one per request (sample 0 keeps ``seed``)."""
    if seed is None or index == 0:
        return seed
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0] & 0x7FFFFFFF)


def config_summary(config: OpenAIConfig) -> dict[str, Any]:
    """JSON-safe description of a config for run records (holds no secret)."""
    data = asdict(config)
    return json.loads(json.dumps(data, default=str))
