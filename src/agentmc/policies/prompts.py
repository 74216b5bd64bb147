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

def _steps(*pairs: str) -> tuple[tuple[str, str, str], ...]:
    """``(action, observation, action, observation, ...)`` as example steps without thoughts."""
    return tuple(("", pairs[i], pairs[i + 1]) for i in range(0, len(pairs), 2))


# Written for agentmc (not taken from the TextCraft or AMC prompts). Two tasks of our
# own *train* split, played by backward chaining, with the observations our environment
# really gives: try the goal's recipe, read what the failure says is missing, get it if
# it is a basic item or craft it with its listed command, then try again. A small model
# can follow this by copying from the last observation; with a single worked example
# and no failures, SmolLM2-135M copied the recipe list instead and did worse than a
# uniformly random valid action (bench/results/local_policy.json).
_TEXTCRAFT = EnvPrompt(
    "You are crafting Minecraft items in a text game. The task lists crafting "
    "commands and a goal. Try to craft the goal with its command. If it fails, the "
    "message says what is missing: 'get N item' if it is a basic item, or craft it "
    "first with its listed command, then try the goal again. Many listed commands are "
    "not needed.",
    (
        Example(
            "Crafting commands:\n"
            "craft 4 end rod using 1 popped chorus fruit, 1 blaze rod\n"
            "craft 1 ender eye using 1 ender pearl, 1 blaze powder\n"
            "craft 1 magma cream using 1 blaze powder, 1 slime ball\n"
            "craft 3 fire charge using 1 gunpowder, 1 blaze powder, 1 coal\n"
            "craft 1 brewing stand using 1 blaze rod, 3 stone crafting materials\n"
            "craft 2 blaze powder using 1 blaze rod\n"
            "\n"
            "Goal: craft ender eye.",
            _steps(
                "craft 1 ender eye using 1 ender pearl, 1 blaze powder",
                "Could not craft ender eye. You need 1 ender pearl but have 0. "
                "You need 1 blaze powder but have 0.",
                "get 1 ender pearl",
                "Got 1 ender pearl",
                "craft 1 ender eye using 1 ender pearl, 1 blaze powder",
                "Could not craft ender eye. You need 1 blaze powder but have 0.",
                "craft 2 blaze powder using 1 blaze rod",
                "Could not craft blaze powder. You need 1 blaze rod but have 0.",
                "get 1 blaze rod",
                "Got 1 blaze rod",
                "craft 2 blaze powder using 1 blaze rod",
                "Crafted 2 blaze powder",
                "craft 1 ender eye using 1 ender pearl, 1 blaze powder",
                "Crafted 1 ender eye",
            ),
        ),
        Example(
            "Crafting commands:\n"
            "craft 1 bread using 3 wheat\n"
            "craft 1 cake using 3 milk bucket, 2 sugar, 3 wheat, 1 egg\n"
            "craft 1 brown dye using 1 cocoa beans\n"
            "craft 1 hay block using 9 wheat\n"
            "craft 8 cookie using 2 wheat, 1 cocoa beans\n"
            "\n"
            "Goal: craft cookie.",
            _steps(
                "craft 8 cookie using 2 wheat, 1 cocoa beans",
                "Could not craft cookie. You need 2 wheat but have 0. "
                "You need 1 cocoa beans but have 0.",
                "get 2 wheat",
                "Got 2 wheat",
                "craft 8 cookie using 2 wheat, 1 cocoa beans",
                "Could not craft cookie. You need 1 cocoa beans but have 0.",
                "get 1 cocoa beans",
                "Got 1 cocoa beans",
                "craft 8 cookie using 2 wheat, 1 cocoa beans",
                "Crafted 8 cookie",
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
