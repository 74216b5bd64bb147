"""Zero-shot LLM-as-judge critic: ask a model how likely the agent is to succeed.

The AMC paper's zero-shot SMC baseline: no training, the value of a history is
a language model's rated chance of success (0-100) for it, times the reward of
a solved task. Any :class:`agentmc.policies.core.Policy` can judge (the agent
itself, a cheaper model, a scripted stand-in in tests).

Parsing is deliberately forgiving (:func:`parse_rating`): ``"70"``, ``"70%"``,
``"Rating: 7/10"``, ``"0.7"`` and ``"I'd say about 70 out of 100."`` all read
as 0.7. A reply with no usable number is counted in ``stats()["unparsed"]``
and scored as ``neutral`` (0.5 by default); it never raises. A policy call
that fails for good (:class:`agentmc.errors.PolicyError`) does propagate: a
judge that cannot be reached is a failed run, not a neutral opinion.

Requests are concurrent (``avalues`` gathers them) and seeded by a hash of
the prompt, so the same history gets the same request whatever the batch.
Histories longer than ``max_chars`` are cut from the left (the task text is
kept) and a warning is logged once per critic.

As an artifact (``agentmc critic train --backend judge --judge-policy SPEC``)
the judge is a critic like the trained ones: ``critic.json`` records the
policy spec, the model, the server URL (never a key) and the settings, and
``prompt.txt`` holds the exact prompt template; :func:`agentmc.critics.artifact.load`
rebuilds it, so ``eval``/``run`` take it with ``--critic PATH`` or per method.
What it costs (requests, tokens) is reported through :meth:`JudgeCritic.avalues_with_usage`
and counted in every method's budget (:mod:`agentmc.critics.meter`).

Example:
    >>> parse_rating("Chance of success: 85%")
    0.85
    >>> parse_rating("7/10") , parse_rating("0.25"), parse_rating("no idea") is None
    (0.7, 0.25, True)
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agentmc.critics.artifact import Provenance
from agentmc.critics.core import History
from agentmc.critics.text import DEFAULT_LAST_TURNS, render
from agentmc.errors import ConfigError
from agentmc.policies.core import Policy
from agentmc.types import FloatArray, Message, Usage

log = logging.getLogger("agentmc")

PROMPT = """You are evaluating an AI agent that is working on a task in a text environment.

{history}

How likely is it that the agent will complete the task successfully from here?
Answer with a single number from 0 to 100 (the chance of success in percent), nothing else."""

_NUMBER = re.compile(
    r"(?<![\w.])(\d{1,3}(?:\.\d+)?)\s*(%|percent|/\s*100\b|/\s*10\b|out of\s+100\b|out of\s+10\b)?",
    re.IGNORECASE,
)
_KEYWORD = re.compile(
    r"(rating|score|probability|chance|likelihood|confidence|estimate|answer)\W{0,10}$",
    re.IGNORECASE,
)
_THINK = re.compile(r"<think>.*?(</think>|$)", re.IGNORECASE | re.DOTALL)


def parse_rating(text: str) -> float | None:
    """Read a chance of success from a judge's reply, as a probability in ``[0, 1]``.

    Rules, first match wins: a number with an explicit scale (``%``,
    ``/100``, ``/10``, ``out of 100``); a number right after a keyword such as
    "rating" or "chance"; otherwise the last number in ``[0, 100]``. A decimal
    number in ``[0, 1]`` without a scale is read as a probability, any other
    number as percent. ``<think>`` blocks are ignored.

    Args:
        text: The judge's reply.

    Returns:
        The probability, or ``None`` if the reply holds no usable number.
    """
    text = _THINK.sub(" ", text or "")
    candidates: list[tuple[int, float]] = []  # (priority, probability)
    for match in _NUMBER.finditer(text):
        number, scale = float(match.group(1)), (match.group(2) or "").lower().replace(" ", "")
        if scale in ("%", "percent", "/100", "outof100"):
            probability = number / 100.0
            priority = 0
        elif scale in ("/10", "outof10"):
            probability = number / 10.0
            priority = 0
        else:
            is_fraction = "." in match.group(1) and number <= 1.0
            probability = number if is_fraction else number / 100.0
            priority = 1 if _KEYWORD.search(text[: match.start()]) else 2
        if 0.0 <= probability <= 1.0:
            candidates.append((priority, probability))
    if not candidates:
        return None
    best = min(priority for priority, _ in candidates)
    # Among equally good candidates the last one wins (models tend to conclude).
    return [p for priority, p in candidates if priority == best][-1]


@dataclass(frozen=True)
class JudgeConfig:
    """Settings of the LLM judge."""

    last_turns: int = DEFAULT_LAST_TURNS
    """The judge reads the task and the last N turns."""
    n_samples: int = 1
    """Replies per history; their ratings are averaged."""
    temperature: float = 0.0
    """Sampling temperature of the judge."""
    neutral: float = 0.5
    """Probability used for a reply with no number."""
    reward_scale: float = 1.0
    """Value = probability x this (the reward of a solved task)."""
    max_chars: int = 12000
    """Longer histories are cut from the left (the task text is kept)."""
    seed: int = 0
    """Root of the per-request seeds."""

    def __post_init__(self) -> None:
        if self.last_turns < 0:
            raise ConfigError(f"last_turns must be >= 0, got {self.last_turns}")
        if self.n_samples < 1:
            raise ConfigError(f"n_samples must be >= 1, got {self.n_samples}")
        if not 0.0 <= self.neutral <= 1.0:
            raise ConfigError(f"neutral must be a probability in [0, 1], got {self.neutral}")
        if self.temperature < 0:
            raise ConfigError(f"temperature must be >= 0, got {self.temperature}")
        if self.max_chars < 200:
            raise ConfigError(f"max_chars must be >= 200, got {self.max_chars}")


PROMPT_FILE = "prompt.txt"


class JudgeCritic:
    """Zero-shot value from a policy's rated chance of success. See the module docstring.

    Args:
        policy: The model that judges.
        config: Settings.
        prompt: Template with one ``{history}`` field.
        policy_spec: The spec that rebuilds ``policy`` (recorded in artifacts;
            default: the policy's name).
        base_url: Server of an ``openai:`` judge (recorded; the key never is).
        provenance: Environment and measured metrics (set when made an artifact).
    """

    name = "judge"

    def __init__(
        self,
        policy: Policy,
        config: JudgeConfig = JudgeConfig(),
        *,
        prompt: str = PROMPT,
        policy_spec: str | None = None,
        base_url: str | None = None,
        provenance: Provenance | None = None,
    ) -> None:
        if "{history}" not in prompt:
            raise ConfigError("a judge prompt needs a {history} field for the agent's history")
        self.policy = policy
        self.config = config
        self.prompt_template = prompt
        self.policy_spec = policy_spec or getattr(policy, "name", "")
        self.base_url = base_url
        self.provenance = provenance or Provenance(
            env_id="", target="success", last_turns=config.last_turns, data_fingerprint=""
        )
        self.requests = 0
        self.replies = 0
        self.unparsed = 0
        self._warned_truncation = False

    def stats(self) -> dict[str, int]:
        """Counters: ``requests``, ``replies`` and ``unparsed`` replies so far."""
        return {"requests": self.requests, "replies": self.replies, "unparsed": self.unparsed}

    def prompt(self, history: History) -> str:
        """The judge's prompt for one history (cut from the left if too long)."""
        text = render(history, self.config.last_turns)
        if len(text) > self.config.max_chars:
            if not self._warned_truncation:
                log.warning(
                    "judge: a history of %d characters was cut from the left to %d "
                    "(max_chars); later cuts are not reported",
                    len(text),
                    self.config.max_chars,
                )
                self._warned_truncation = True
            head = f"TASK: {history.task.strip()}\n"[: self.config.max_chars // 2]
            tail = text[len(text) - (self.config.max_chars - len(head) - 20) :]
            text = head + "(...earlier text cut...)\n" + tail
        return self.prompt_template.replace("{history}", text)

    def _seed(self, prompt: str) -> int:
        digest = hashlib.sha256(f"{self.config.seed}\n{prompt}".encode()).digest()
        return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF

    async def _one(self, history: History) -> float:
        return (await self._scored(history))[0]

    async def _scored(self, history: History) -> tuple[float, Usage]:
        prompt = self.prompt(history)
        completions = await self.policy.complete(
            (Message("user", prompt),),
            n=self.config.n_samples,
            temperature=self.config.temperature,
            seed=self._seed(prompt),
        )
        self.requests += 1
        ratings = []
        usage = Usage()
        for completion in completions:
            usage = usage + completion.usage
            self.replies += 1
            rating = parse_rating(completion.text)
            if rating is None:
                self.unparsed += 1
                rating = self.config.neutral
            ratings.append(rating)
        if not ratings:
            self.unparsed += 1
            ratings.append(self.config.neutral)
        if usage.calls == 0:
            usage = usage + Usage(calls=1)  # the policy did not count its own request
        return float(np.mean(ratings)) * self.config.reward_scale, usage

    async def avalues_with_usage(self, histories: Sequence[History]) -> tuple[FloatArray, Usage]:
        """Rated values and what the requests cost (calls, tokens, dollars)."""
        results = await asyncio.gather(*(self._scored(h) for h in histories))
        total = Usage()
        for _, usage in results:
            total = total + usage
        return np.asarray([value for value, _ in results], dtype=np.float64), total

    async def avalues(self, histories: Sequence[History]) -> FloatArray:
        """Rated values, requests issued concurrently; shape ``(len(histories),)``."""
        results = await asyncio.gather(*(self._one(h) for h in histories))
        return np.asarray(results, dtype=np.float64)

    def values(self, histories: Sequence[History]) -> FloatArray:
        """Synchronous form of :meth:`avalues` (not usable inside a running event loop).

        Raises:
            ConfigError: When called from async code; use ``await avalues(...)`` there
                (or :func:`agentmc.critics.core.avalues`).
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.avalues(histories))
        raise ConfigError(
            "JudgeCritic.values() was called inside a running event loop; "
            "use `await critic.avalues(histories)` (or agentmc.critics.core.avalues)"
        )

    # -- artifacts (agentmc.critics.artifact) ---------------------------------------------

    def config_dict(self) -> dict[str, Any]:
        return {
            **asdict(self.config),
            "policy": self.policy_spec,
            "model": getattr(self.policy, "name", self.policy_spec),
            "base_url": self.base_url,
        }

    def libraries(self) -> dict[str, str]:
        return {}

    def save_files(self, directory: Path) -> None:
        (directory / PROMPT_FILE).write_text(self.prompt_template, encoding="utf-8")

    @classmethod
    def load_files(
        cls, directory: Path, config: dict[str, Any], provenance: Provenance
    ) -> JudgeCritic:
        """Rebuild the judge: its policy from the recorded spec, its prompt from the file."""
        from agentmc.policies import make_policy

        settings = {k: v for k, v in config.items() if k not in ("policy", "model", "base_url")}
        spec, base_url = str(config["policy"]), config.get("base_url")
        return cls(
            make_policy(spec, base_url=base_url),
            JudgeConfig(**settings),
            prompt=(directory / PROMPT_FILE).read_text(encoding="utf-8"),
            policy_spec=spec,
            base_url=base_url,
            provenance=provenance,
        )
