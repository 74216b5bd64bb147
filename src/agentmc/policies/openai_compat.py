"""A policy backed by any OpenAI-compatible server (OpenAI, vLLM, llama.cpp, Ollama, ...).

:class:`OpenAIPolicy` wraps the official ``openai`` SDK's ``AsyncOpenAI``
client with everything a long evaluation needs:

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
  call. Other errors (unknown model, bad key, bad request) fail at once. A
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
import email.utils
import json
import logging
import math
import os
import time
import weakref
from collections.abc import Sequence
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


@dataclass(frozen=True)
class ClientLimits:
    """Concurrency, rate limits, retries and budget of one policy.

    Attributes:
        max_concurrency: Requests in flight at once.
        requests_per_minute: Request rate limit (None: unlimited).
        tokens_per_minute: Token rate limit, counting an estimate of prompt tokens
            (4 characters each) plus ``max_tokens`` per sample (None: unlimited).
        request_timeout_s: Seconds one HTTP attempt may take.
        deadline_s: Seconds one ``complete`` call may take in all, retries included.
        max_attempts: Attempts per request before giving up.
        backoff_initial_s: First retry delay; doubles each retry, plus up to this much jitter.
        backoff_max_s: Largest retry delay (a server's Retry-After is honoured as given).
        max_cost_usd: Stop (PolicyError) once this much has been spent (None: no budget).
    """

    max_concurrency: int = 16
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


@dataclass
class _LoopState:
    """Per-event-loop objects: the HTTP client and the asyncio primitives."""

    client: Any
    semaphore: asyncio.Semaphore
    request_limiter: Any
    token_limiter: Any


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
        self.usage = Usage()
        self.stats = {"requests": 0, "retries": 0, "cache_hits": 0, "failures": 0}

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

    def _state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        state = self._states.get(loop)
        if state is None:
            limits = self.config.limits
            client = self._openai.AsyncOpenAI(
                api_key=self._key,
                base_url=self.config.base_url,
                max_retries=0,  # tenacity is the one retry policy
                timeout=limits.request_timeout_s,
            )
            limiter = self._aiolimiter.AsyncLimiter
            state = _LoopState(
                client=client,
                semaphore=asyncio.Semaphore(limits.max_concurrency),
                request_limiter=None
                if limits.requests_per_minute is None
                else limiter(limits.requests_per_minute, 60.0),
                token_limiter=None
                if limits.tokens_per_minute is None
                else limiter(limits.tokens_per_minute, 60.0),
            )
            self._states[loop] = state
        return state

    async def aclose(self) -> None:
        """Close the HTTP client of the running event loop."""
        state = self._states.pop(asyncio.get_running_loop(), None)
        if state is not None:
            await state.client.close()

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
        request = self._request(messages, temperature)
        key = None
        if self._cache is not None and seed is not None:
            key = request_key(
                {
                    "base_url": self.config.base_url,
                    "mode": self.config.mode,
                    "n": n,
                    "seed": seed,
                    **request,
                }
            )
            cached = self._cache.get(key)
            if cached is not None and len(cached) == n:
                self.stats["cache_hits"] += 1
                return cached
        deadline = asyncio.get_running_loop().time() + self.config.limits.deadline_s
        completions = await self._sample(request, n, seed, deadline)
        if key is not None and self._cache is not None:
            self._cache.put(key, completions)
        return completions

    async def _sample(
        self, request: dict[str, Any], n: int, seed: int | None, deadline: float
    ) -> list[Completion]:
        if n > 1 and self._n_supported is not False:
            try:
                completions = await self._call(request, n, seed, deadline)
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
        seeds = [_sample_seed(seed, i) for i in range(start, n)]
        more = await asyncio.gather(*(self._call(request, 1, s, deadline) for s in seeds))
        for group in more:
            completions.extend(group)
        return completions[:n]

    async def _call(
        self, request: dict[str, Any], n: int, seed: int | None, deadline: float
    ) -> list[Completion]:
        """One request with retries; usage on its first completion."""
        tenacity = self._tenacity
        limits = self.config.limits
        loop = asyncio.get_running_loop()
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
            return loop.time() + state.upcoming_sleep >= deadline

        def before_sleep(state: Any) -> None:
            self.stats["retries"] += 1
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
        self._check_budget()
        failure: str | None = None
        fatal = False
        started = loop.time()
        try:
            result: list[Completion] = await retrying(self._attempt, request, n, seed, deadline)
        except _Retryable as error:
            attempts = retrying.statistics.get("attempt_number", 1)
            failure = (
                f"{self._where} gave no usable answer for model {self.config.model!r} within "
                f"{loop.time() - started:.1f} s ({attempts} attempts; deadline "
                f"{limits.deadline_s:g} s): {error.describe}"
            )
        except _Fatal as error:
            failure, fatal = str(error), error.run_wide
        else:
            # Requests that failed before this one succeeded are billed like it: they ride
            # on the first completion's usage, so every episode counts what was sent.
            retried = int(retrying.statistics.get("attempt_number", 1)) - 1
            if retried and result:
                first = result[0]
                usage = replace(first.usage, failed_attempts=first.usage.failed_attempts + retried)
                result[0] = Completion(first.text, first.logprob, usage)
            return result
        # Raised outside the except blocks so no SDK exception (which holds the
        # request and its headers) is chained to the PolicyError.
        self.stats["failures"] += 1
        attempts = int(retrying.statistics.get("attempt_number", 1))
        error_type = FatalPolicyError if fatal else PolicyError
        raise error_type(self._scrub(failure), attempts=attempts)

    def _check_budget(self) -> None:
        budget = self.config.limits.max_cost_usd
        spent = self.usage.cost
        if budget is not None and spent is not None and spent >= budget:
            raise PolicyError(
                f"budget exhausted: spent ${spent:.4f} of max_cost_usd=${budget:g} on "
                f"{self.config.model!r}"
            )

    async def _attempt(
        self, request: dict[str, Any], n: int, seed: int | None, deadline: float
    ) -> list[Completion]:
        loop = asyncio.get_running_loop()
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise _Retryable("the deadline passed")
        state = self._state()
        try:
            async with asyncio.timeout(remaining):
                async with state.semaphore:
                    if state.request_limiter is not None:
                        await state.request_limiter.acquire()
                    if state.token_limiter is not None:
                        amount = min(
                            self._estimate_tokens(request, n), state.token_limiter.max_rate
                        )
                        await state.token_limiter.acquire(amount)
                    timeout = min(self.config.limits.request_timeout_s, deadline - loop.time())
                    self.stats["requests"] += 1
                    return await self._send(state.client, request, n, seed, max(timeout, 0.001))
        except TimeoutError:
            raise _Retryable("the deadline passed while waiting for the server") from None

    async def _send(
        self, client: Any, request: dict[str, Any], n: int, seed: int | None, timeout: float
    ) -> list[Completion]:
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
                texts, logprobs, finished, usage = await self._read_stream(
                    await endpoint.create(**kwargs), chat
                )
            else:
                response = await endpoint.create(**kwargs)
                texts, logprobs, finished, usage = self._read_response(response, chat)
        except openai.APIStatusError as error:
            raise self._classify(error, n) from None
        except openai.APITimeoutError:
            raise _Retryable(f"no answer within {timeout:.1f} s (request timeout)") from None
        except openai.APIConnectionError as error:
            cause = error.__cause__ or error.__context__
            detail = f" ({type(cause).__name__})" if cause is not None else ""
            raise _Retryable(f"connection failed or was cut off{detail}") from None
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise _Retryable(f"malformed response ({type(error).__name__})") from None
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

    def _classify(self, error: Any, n: int) -> Exception:
        status = int(getattr(error, "status_code", 0) or 0)
        message = self._scrub(_server_message(error))
        headers = getattr(getattr(error, "response", None), "headers", None)
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
