"""A tiny forkable environment for tests that must not depend on TextCraft."""

from __future__ import annotations

from dataclasses import dataclass

from agentmc.envs.core import StepResult


@dataclass
class ClimbEnv:
    """Say "up" ``height`` times to reach the top (reward 1); "down" ends the episode.

    Anything else is answered with feedback. Used where a test needs an environment
    without depending on TextCraft.
    """

    height: int = 3
    max_steps: int = 6
    env_id: str = "climb"
    task_id: str = "0"

    def __post_init__(self) -> None:
        self.level = 0
        self.steps = 0

    def reset(self, *, seed=None, options=None):
        self.level, self.steps = 0, 0
        return f"Climb {self.height} steps. Say 'up' or 'down'.", {}

    def step(self, action: str) -> StepResult:
        self.steps += 1
        truncated = self.steps >= self.max_steps
        if action == "up":
            self.level += 1
            if self.level == self.height:
                return StepResult("You reached the top!", 1.0, True, False, {"success": True})
            return StepResult(f"Level {self.level}.", 0.0, False, truncated, {})
        if action == "down":
            return StepResult("You fell.", 0.0, True, False, {"success": False})
        return StepResult(
            f"Unknown action {action!r}: say 'up' or 'down'.", 0.0, False, truncated, {}
        )

    def snapshot(self):
        return (self.level, self.steps)

    def restore(self, snapshot) -> None:
        self.level, self.steps = snapshot

    def valid_actions(self):
        return ["up", "down"]

    def close(self) -> None:
        pass
