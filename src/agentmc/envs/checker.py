"""``check_env``: does an environment keep the contract SMC relies on?

Modelled on Gymnasium's ``utils/env_checker.py``. Each check raises
:class:`EnvCheckError` naming the property it found broken:

* **protocol**: ``reset``/``step``/``snapshot``/``restore``/``close`` exist;
  ``env_id`` and ``task_id`` are strings.
* **types**: ``reset`` returns ``(str, dict)``; ``step`` returns a 5-tuple of
  ``(str, real number, bool, bool, dict)``.
* **reset determinism**: two resets with the same seed give equal results.
* **step determinism**: replaying a fixed action sequence after a reset gives
  identical results (the sequence is a seeded walk over ``valid_actions()``
  when the environment offers them, plus malformed actions).
* **snapshot independence**: restoring a snapshot into the same instance, after
  it moved on, and into a fresh instance of the same task replays identically;
  stepping the restored fork leaves the original untouched; a snapshot does
  not change when the environment moves on, and restoring it twice works.
* **malformed actions**: ``""``, ``"!!!"``, ``"craft"``, very long junk and
  control characters never raise and get feedback text.
* **truncation**: with a known step cap (``max_steps`` attribute,
  ``config.max_steps`` or ``info["max_steps"]`` from reset), the cap-th step of
  a non-terminating episode is reported as truncated, and stepping after the
  end does not raise.

Example:
    >>> from agentmc.envs import make
    >>> check_env(make("guess-number", task_id="3"))
"""

from __future__ import annotations

import copy
import math
import pickle
from collections.abc import Callable, Sequence
from numbers import Real
from typing import Any

import numpy as np

from agentmc.envs.core import StepResult, TextEnv, valid_actions
from agentmc.errors import AgentmcError

__all__ = ["EnvCheckError", "check_env", "MALFORMED_ACTIONS"]

MALFORMED_ACTIONS = ("", "!!!", "craft", "get", "   \n\t ", "x" * 5000, "\x00\x1b[2J", "🙂 ?")
"""Actions every environment must answer with feedback rather than an exception."""

_FALLBACK_ACTIONS = ("look", "inventory", "help", "!!!", "")


class EnvCheckError(AgentmcError, AssertionError):
    """An environment broke the contract; the message names the property."""


def _fail(prop: str, detail: str) -> EnvCheckError:
    return EnvCheckError(f"check_env [{prop}]: {detail}")


def _check_step_types(result: Any, action: str) -> StepResult:
    where = f"step({action[:40]!r})"
    if not isinstance(result, tuple) or len(result) != 5:
        raise _fail("types", f"{where} must return a 5-tuple StepResult, got {type(result)}")
    observation, reward, terminated, truncated, info = result
    if not isinstance(observation, str):
        raise _fail("types", f"{where}: observation must be str, got {type(observation)}")
    if isinstance(reward, bool) or not isinstance(reward, Real) or not math.isfinite(reward):
        raise _fail("types", f"{where}: reward must be a finite real number, got {reward!r}")
    for name, flag in (("terminated", terminated), ("truncated", truncated)):
        if not isinstance(flag, bool | np.bool_):
            raise _fail("types", f"{where}: {name} must be bool, got {type(flag)}")
    if not isinstance(info, dict):
        raise _fail("types", f"{where}: info must be a dict, got {type(info)}")
    return StepResult(observation, float(reward), bool(terminated), bool(truncated), info)


def _step(env: TextEnv, action: str, prop: str = "malformed actions") -> StepResult:
    try:
        result = env.step(action)
    except Exception as error:  # the point: no action may raise
        raise _fail(prop, f"step({action[:40]!r}) raised {type(error).__name__}: {error}") from None
    return _check_step_types(result, action)


def _reset(env: TextEnv, seed: int) -> tuple[str, dict[str, Any]]:
    out = env.reset(seed=seed)
    if not (isinstance(out, tuple) and len(out) == 2):
        raise _fail("types", f"reset must return (observation, info), got {type(out)}")
    observation, info = out
    if not isinstance(observation, str) or not isinstance(info, dict):
        raise _fail(
            "types", f"reset must return (str, dict), got ({type(observation)}, {type(info)})"
        )
    return observation, info


def _walk(env: TextEnv, seed: int, length: int) -> list[str]:
    """A seeded action sequence: valid actions when offered, with malformed ones mixed in."""
    rng = np.random.default_rng(seed)
    _reset(env, seed)
    actions: list[str] = []
    for t in range(length):
        candidates = valid_actions(env) or list(_FALLBACK_ACTIONS)
        if not candidates:
            raise _fail("types", "valid_actions() returned an empty list")
        action = "!!!" if t == 1 else str(candidates[int(rng.integers(len(candidates)))])
        actions.append(action)
        result = _step(env, action, "step determinism")
        if result.terminated or result.truncated:
            break
    return actions


def _play(env: TextEnv, actions: Sequence[str], prop: str) -> list[StepResult]:
    results = []
    for action in actions:
        results.append(_step(env, action, prop))
        if results[-1].terminated or results[-1].truncated:
            break
    return results


def _frozen(snapshot: Any) -> tuple[Any, Any]:
    """Fingerprints of a snapshot value: (hash or None, pickle bytes or None)."""
    try:
        hashed = hash(snapshot)
    except TypeError:
        hashed = None
    try:
        pickled = pickle.dumps(snapshot)
    except Exception:  # unpicklable snapshots are allowed if hashable
        pickled = None
    if hashed is None and pickled is None:
        raise _fail("snapshot independence", "snapshot must be hashable or picklable")
    return hashed, pickled


def _max_steps(env: TextEnv, info: dict[str, Any]) -> int | None:
    for value in (
        info.get("max_steps"),
        getattr(env, "max_steps", None),
        getattr(getattr(env, "config", None), "max_steps", None),
    ):
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def check_env(
    env: TextEnv,
    *,
    actions: Sequence[str] | None = None,
    seed: int = 0,
    make_fresh: Callable[[], TextEnv] | None = None,
    n_steps: int = 12,
) -> None:
    """Check ``env`` against the text-environment contract (see module docstring).

    Args:
        env: The environment (it is reset and stepped; left in an arbitrary state).
        actions: Action sequence for the determinism and snapshot checks
            (default: a seeded walk over ``valid_actions()``).
        seed: Seed passed to ``reset`` and used for the walk.
        make_fresh: Creates another instance of the same task (default:
            ``copy.deepcopy`` of ``env`` before it is stepped).
        n_steps: Length of the default walk.

    Raises:
        EnvCheckError: Naming the first property found broken.
    """
    for method in ("reset", "step", "snapshot", "restore", "close"):
        if not callable(getattr(env, method, None)):
            raise _fail("protocol", f"missing method {method}()")
    for attribute in ("env_id", "task_id"):
        if not isinstance(getattr(env, attribute, None), str):
            raise _fail("protocol", f"attribute {attribute} must be a str")

    first = _reset(env, seed)
    try:
        fresh = make_fresh() if make_fresh is not None else copy.deepcopy(env)
    except Exception as error:
        raise _fail(
            "snapshot independence",
            f"could not make a fresh instance ({type(error).__name__}: {error}); pass make_fresh=",
        ) from None
    if _reset(env, seed) != first:
        raise _fail("reset determinism", f"reset(seed={seed}) twice gave different results")

    # Step determinism: the same actions after the same reset give the same results.
    actions = list(actions) if actions is not None else _walk(env, seed, n_steps)
    if not actions:
        raise _fail("step determinism", "need at least one action")
    _reset(env, seed)
    reference = _play(env, actions, "step determinism")
    _reset(env, seed)
    if _play(env, actions, "step determinism") != reference:
        raise _fail("step determinism", "the same actions after reset(seed) gave different results")

    # Snapshot independence.
    prop = "snapshot independence"
    cut = max(0, min(len(reference) - 1, len(reference) // 2))
    prefix, rest = actions[:cut], actions[cut : len(reference)]
    _reset(env, seed)
    _play(env, prefix, prop)
    saved = env.snapshot()
    fingerprint = _frozen(saved)
    continuation = _play(env, rest, prop)
    if continuation != reference[cut:]:
        raise _fail(prop, "taking a snapshot changed the environment's behaviour")
    if _frozen(saved) != fingerprint:
        raise _fail(prop, "the snapshot value changed when the environment moved on")
    env.restore(saved)
    if _play(env, rest, prop) != continuation:
        raise _fail(prop, "restore() into the same instance did not replay identically")
    fresh.reset(seed=seed)
    fresh.restore(saved)
    env.restore(saved)
    forked = _play(fresh, rest, prop)
    if forked != continuation:
        raise _fail(prop, "restore() into a fresh instance of the task did not replay identically")
    if _play(env, rest, prop) != continuation:
        raise _fail(prop, "stepping a restored fork changed the original environment")
    if _frozen(saved) != fingerprint:
        raise _fail(prop, "the snapshot value changed after restores")
    fresh.close()

    # Malformed actions never raise and get feedback.
    for action in MALFORMED_ACTIONS:
        _reset(env, seed)
        result = _step(env, action)
        if not result.observation.strip():
            raise _fail("malformed actions", f"step({action[:20]!r}) gave empty feedback")

    # Truncation at the step cap.
    _, info = _reset(env, seed)
    cap = _max_steps(env, info)
    if cap is not None:
        results = [_step(env, "!!!", "truncation") for _ in range(cap)]
        if not any(r.terminated for r in results):
            if not results[-1].truncated or any(r.truncated for r in results[:-1]):
                flags = [r.truncated for r in results]
                raise _fail("truncation", f"step cap {cap}: truncated flags were {flags}")
            if results[-1].info.get("success", False):
                raise _fail("truncation", "a truncated episode reported success")
            _step(env, "!!!", "truncation")
    env.close()
