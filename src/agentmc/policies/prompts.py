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

Environment-specific instructions and examples live in :data:`ENV_PROMPTS`
(TextCraft ships with one worked example written for agentmc); any other
environment id gets generic instructions without examples. Register your own
with :func:`register_env_prompt`.

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


@dataclass(frozen=True, slots=True)
class Example:
    """One worked episode shown to the model before its task.

    Attributes:
        task: The task text, as the environment states it.
        steps: ``(thought, action, observation)`` triples; ``thought`` may be
            empty and is shown in the ReAct style only.
    """

    task: str
    steps: tuple[tuple[str, str, str], ...]


@dataclass(frozen=True, slots=True)
class EnvPrompt:
    """Instructions and worked examples for one environment.

    Attributes:
        instructions: What the agent is doing and which actions exist.
        examples: Worked episodes, shown in order.
    """

    instructions: str
    examples: tuple[Example, ...] = ()


_GENERIC = EnvPrompt(
    "You are an agent in a text environment. Read the task, then act one step at a "
    "time; after each action you will see what happened."
)

# Written for agentmc (not taken from the TextCraft or AMC prompts). It shows the
# three commands, a tag ingredient ("planks" satisfied by oak planks), ignoring
# distractor recipes, an inventory check and reading counts off the recipes.
_TEXTCRAFT = EnvPrompt(
    "You are crafting Minecraft items in a text game. The task lists crafting "
    "commands and a goal. Gather basic ingredients with 'get N item', combine items "
    "with 'craft N item using N a, N b' exactly as a listed command says, and check "
    "what you hold with 'inventory'. A generic ingredient such as 'planks' can be any "
    "kind of planks. Many listed commands are not needed. Craft the goal item.",
    (
        Example(
            "Crafting commands:\n"
            "craft 1 lantern using 8 iron nugget, 1 torch\n"
            "craft 4 oak planks using 1 oak logs\n"
            "craft 1 smoker using 1 furnace, 4 logs\n"
            "craft 9 iron nugget using 1 iron ingot\n"
            "craft 4 stick using 2 planks\n"
            "craft 1 wooden shovel using 2 stick, 1 planks\n"
            "craft 4 torch using 1 stick, 1 coal\n"
            "\n"
            "Goal: craft lantern.",
            (
                (
                    "A lantern needs 8 iron nugget and 1 torch. Nuggets come from an iron ingot.",
                    "get 1 iron ingot",
                    "Got 1 iron ingot",
                ),
                ("", "craft 9 iron nugget using 1 iron ingot", "Crafted 9 minecraft:iron_nugget"),
                (
                    "A torch needs a stick and coal; a stick needs planks, planks need logs.",
                    "get 1 oak logs",
                    "Got 1 oak logs",
                ),
                ("", "craft 4 oak planks using 1 oak logs", "Crafted 4 minecraft:oak_planks"),
                ("", "craft 4 stick using 2 oak planks", "Crafted 4 minecraft:stick"),
                ("", "get 1 coal", "Got 1 coal"),
                ("", "craft 4 torch using 1 stick, 1 coal", "Crafted 4 minecraft:torch"),
                (
                    "I should have everything for the lantern now.",
                    "inventory",
                    "Inventory: [iron nugget] (9) [oak planks] (2) [stick] (3) [torch] (4)",
                ),
                ("", "craft 1 lantern using 8 iron nugget, 1 torch", "Crafted 1 minecraft:lantern"),
            ),
        ),
    ),
)

ENV_PROMPTS: dict[str, EnvPrompt] = {"textcraft": _TEXTCRAFT}
"""Environment id -> instructions and examples. Unknown ids use generic instructions."""


def register_env_prompt(env_id: str, prompt: EnvPrompt) -> None:
    """Add or replace the instructions and examples for ``env_id``."""
    if not env_id:
        raise ConfigError("register_env_prompt: env_id must be a non-empty string")
    ENV_PROMPTS[env_id] = prompt


def env_prompt(env_id: str) -> EnvPrompt:
    """The prompt registered for ``env_id``, or generic instructions without examples."""
    return ENV_PROMPTS.get(env_id, _GENERIC)


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
        env_id: Selects instructions and examples from :data:`ENV_PROMPTS`.
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
