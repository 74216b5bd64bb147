r"""Prompt formats: how a policy turns the plain conversation into model input.

Rollouts hand a policy the *plain* conversation: the task text as the first
user message, then the agent's previous replies (assistant) and the
environment's observations (user). The policy adds its own framing here:
instructions, worked examples (few-shot) and the reply format.

Two reply styles:

- ``"plain"``: the reply is the action itself, one line.
- ``"react"``: an optional ``Thought: ...`` line, then ``Action: ...``
  (Yao et al., 2023). :func:`agentmc.policies.parsing.parse_action` reads both.

Two renderings of the same content:

- :meth:`PromptFormat.chat` for chat models: a system message holding the
  instructions and worked examples, then the conversation as it is.
- :meth:`PromptFormat.completion` for plain-completion models (the embedded
  SmolLM2 and ``/v1/completions`` servers): one transcript that ends exactly
  where the next action starts, to be sampled up to :attr:`PromptFormat.stop`.
  Small models follow this format far better than chat turns. Every prompt of a
  task starts with the same text (instructions, examples, task), so a model
  server's prefix cache can reuse it across steps and particles.

Environment-specific instructions and examples (:class:`EnvPrompt`) come
with the environment's registry entry (``agentmc.envs.register(...,
prompt=...)``; TextCraft's, with worked examples written for agentmc, is in
:mod:`agentmc.envs.textcraft.prompt`), so this module imports no environment.
:func:`register_env_prompt` overrides them for any id (:data:`ENV_PROMPTS`); an
id with neither gets generic instructions without examples.

Example:
    >>> from agentmc.types import Message
    >>> fmt = PromptFormat(env_id="textcraft", style="plain")
    >>> text = fmt.completion([Message("user", "Crafting commands:\ncraft 4 stick using 2 planks"
    ...                                        "\n\nGoal: craft stick.")])
    >>> text.endswith("Goal: craft stick.\n>")
    True
    >>> fmt.stop
    ('\n',)
    >>> [m["role"] for m in fmt.chat([Message("user", "Goal: craft stick.")])]
    ['system', 'user']
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from agentmc.envs.knowledge import EnvPrompt, Example
from agentmc.envs.registry import knowledge
from agentmc.errors import ConfigError
from agentmc.types import Message

__all__ = [
    "ENV_PROMPTS",
    "EnvPrompt",
    "Example",
    "PromptFormat",
    "PromptStyle",
    "env_prompt",
    "register_env_prompt",
]

PromptStyle = Literal["plain", "react"]


_GENERIC = EnvPrompt(
    "You are an agent in a text environment. Read the task, then act one step at a "
    "time; after each action you will see what happened."
)

ENV_PROMPTS: dict[str, EnvPrompt] = {}
"""Environment id -> a prompt that overrides the one its registry entry names."""


def register_env_prompt(env_id: str, prompt: EnvPrompt) -> None:
    """Add or replace the instructions and examples for ``env_id`` (over its registry entry's).

    An environment of your own can instead pass ``prompt=`` to
    :func:`agentmc.envs.register`; this function also works for ids that are not
    registered environments.
    """
    if not env_id:
        raise ConfigError("register_env_prompt: env_id must be a non-empty string")
    ENV_PROMPTS[env_id] = prompt


def env_prompt(env_id: str) -> EnvPrompt:
    """The prompt of ``env_id``: registered here, else its registry entry's, else generic.

    The generic instructions come without examples.

    Raises:
        MissingExtraError: The environment's prompt module cannot be imported.
    """
    prompt = ENV_PROMPTS.get(env_id)
    if prompt is None:
        prompt = knowledge(env_id, "prompt")
    return _GENERIC if prompt is None else prompt


_STYLE_RULES = {
    "plain": "Reply with exactly one action on a single line and nothing else.",
    "react": (
        "Reply with an optional line 'Thought: <your reasoning>' followed by one line "
        "'Action: <the action>'."
    ),
}


@dataclass(frozen=True)
class PromptFormat:
    """How to frame a conversation for a model.

    Attributes:
        env_id: Selects instructions and examples (see :func:`env_prompt`).
        style: ``"plain"`` (action only) or ``"react"`` (thought, then action).
        n_examples: How many worked examples to include (at most those registered).
        max_turns: Keep only the last ``max_turns`` agent turns of the history
            (the task text is always kept); ``None`` keeps everything.
    """

    env_id: str = "textcraft"
    style: PromptStyle = "plain"
    n_examples: int = 1
    max_turns: int | None = None

    def __post_init__(self) -> None:
        if self.style not in _STYLE_RULES:
            raise ConfigError(f"PromptFormat.style must be 'plain' or 'react', got {self.style!r}")
        if self.n_examples < 0:
            raise ConfigError(f"PromptFormat.n_examples must be >= 0, got {self.n_examples}")
        if self.max_turns is not None and self.max_turns < 0:
            raise ConfigError(f"PromptFormat.max_turns must be >= 0 or None, got {self.max_turns}")

    @property
    def examples(self) -> tuple[Example, ...]:
        return env_prompt(self.env_id).examples[: self.n_examples]

    @property
    def system(self) -> str:
        """Instructions plus the reply-format rule."""
        return f"{env_prompt(self.env_id).instructions} {_STYLE_RULES[self.style]}"

    @property
    def stop(self) -> tuple[str, ...]:
        """Stop strings for :meth:`completion` prompts: the end of one action."""
        return ("\n",) if self.style == "plain" else ("\nObservation:",)

    def _reply(self, thought: str, action: str) -> str:
        if self.style == "plain":
            return action
        return f"Thought: {thought}\nAction: {action}" if thought else f"Action: {action}"

    def continuation(self, action: str) -> str:
        """How an action is written after a :meth:`completion` prompt (the reply line)."""
        if self.style == "plain":
            return f" {action}\n"
        return f"Action: {action}\n"

    def window(self, messages: Sequence[Message]) -> list[Message]:
        """The task message plus the last ``max_turns`` (reply, observation) pairs.

        Raises:
            ConfigError: If the conversation does not start with a user message.
        """
        messages = list(messages)
        if not messages or messages[0].role != "user":
            raise ConfigError("a conversation must start with the task as a user message")
        if self.max_turns is None:
            return messages
        history = messages[1:]
        keep = 2 * self.max_turns + (len(history) % 2)  # a pending reply stays paired
        return [messages[0], *(history[-keep:] if keep else [])]

    def chat(self, messages: Sequence[Message]) -> list[dict[str, str]]:
        """Chat-API messages: a system message, then the conversation.

        The worked examples are written into the system message as transcripts
        (the same layout as :meth:`completion`), so the turns after it alternate
        user/assistant as strict chat templates require.

        Args:
            messages: The plain conversation (task first).

        Returns:
            ``[{"role": ..., "content": ...}, ...]`` ready for a chat endpoint.
        """
        return [{"role": "system", "content": self._chat_system}] + [
            m.as_dict() for m in self.window(messages)
        ]

    @functools.cached_property
    def _chat_system(self) -> str:
        """The system message with the worked examples (built once per format: it never changes)."""
        system = self.system
        for example in self.examples:
            system += "\n\n" + self._example_transcript(example).rstrip("\n")
        return system

    def _example_transcript(self, example: Example) -> str:
        parts = [f"Example task:\n{example.task.strip()}\n"]
        for thought, action, observation in example.steps:
            parts.append(self._transcript_step(self._reply(thought, action), observation))
        return "".join(parts)

    def _transcript_step(self, reply: str, observation: str | None) -> str:
        if self.style == "plain":
            text = f"> {reply.strip()}\n"
            return text if observation is None else text + f"{observation.strip()}\n"
        text = f"{reply.strip()}\n"
        return text if observation is None else text + f"Observation: {observation.strip()}\n"

    def completion(self, messages: Sequence[Message]) -> str:
        """One transcript for plain-completion models, ending where the next reply starts.

        Plain style ends with ``">"`` (the reply begins with a space, which is
        how BPE vocabularies spell words, so a prompt must not end in one);
        ReAct style ends after a newline. Sample up to :attr:`stop`.

        Args:
            messages: The plain conversation (task first).

        Returns:
            The prompt text.
        """
        parts = [self.system, "\n\n"]
        for example in self.examples:
            parts += [self._example_transcript(example), "\n"]
        window = self.window(messages)
        parts.append(f"Your task:\n{window[0].content.strip()}\n")
        history = window[1:]
        for index in range(0, len(history), 2):
            reply = history[index]
            observation = history[index + 1] if index + 1 < len(history) else None
            if reply.role != "assistant" or (
                observation is not None and observation.role != "user"
            ):
                raise ConfigError(
                    "a conversation must alternate assistant replies and user observations "
                    "after the task message"
                )
            parts.append(
                self._transcript_step(
                    reply.content, None if observation is None else observation.content
                )
            )
        if self.style == "plain":
            parts.append(">")
        return "".join(parts)
