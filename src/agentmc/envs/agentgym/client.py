"""A text environment played on a remote AgentGym-style HTTP server.

AgentGym environment servers (and ``agentmc serve``) expose ``/create``,
``/reset``, ``/step``, ``/observation`` and ``/close``; see
:mod:`agentmc.envs.agentgym.server` for the wire format. :class:`AgentGymEnv`
turns one such server session into a :class:`~agentmc.envs.core.TextEnv`.

The protocol has no save/load, so a snapshot is the episode's action prefix
(plus the observations seen, to verify replays): ``restore`` resets the
session and replays the prefix, or only steps the missing suffix when the
session is already part-way along the same prefix. Replays are checked
observation by observation; a server that answers differently the second time
(not deterministic, or a different version) raises :class:`EnvServerError`
instead of silently playing a different episode.

Faults: connection failures before a request is sent are retried with
exponential back-off (tenacity). If the server loses the session (it
restarted, or closed it for idleness) or a request dies half-way, the client
opens a new session, replays the episode so far (verified), and repeats the
request once; with ``reconnect=False`` it raises :class:`EnvServerError`
instead. Malformed JSON, unknown tasks and any other server error raise
:class:`EnvServerError` with the server's message; it is an
:class:`~agentmc.errors.InfrastructureError`, so a run retries the episode a
bounded number of times and then records it as failed-infrastructure instead
of stopping.

Example:
    >>> env = AgentGymEnv(AgentGymConfig(base_url="http://127.0.0.1:36001"), task_id="3")
    >>> observation, info = env.reset(seed=0)  # doctest: +SKIP
    >>> saved = env.snapshot()  # doctest: +SKIP
    >>> result = env.step("inventory")  # doctest: +SKIP
    >>> env.restore(saved)  # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from agentmc.envs.core import StepResult
from agentmc.errors import AgentmcError, ConfigError, InfrastructureError, require


class EnvServerError(InfrastructureError):
    """An environment server was unreachable, misbehaved, or refused a request."""


class _Interrupted(Exception):
    """A request whose outcome is unknown (the connection died after sending)."""


class _Refused(Exception):
    """The server answered with an error payload or status."""


@dataclass(frozen=True)
class AgentGymConfig:
    """Where the server is and how to talk to it."""

    base_url: str = "http://127.0.0.1:36001"
    """Server address, e.g. ``http://127.0.0.1:36001``."""
    timeout_s: float = 60.0
    """Timeout of one HTTP request."""
    retries: int = 3
    """Attempts per request when the connection cannot be made (back-off in between)."""
    token: str | None = None
    """Sent as ``Authorization: Bearer TOKEN`` (``agentmc serve --token``)."""
    id_field: Literal["id", "env_idx"] = "id"
    """How the server names the session: ``id`` (TextCraft, SciWorld, BabyAI servers)
    or ``env_idx`` (WebShop, ALFWorld servers)."""
    task_field: Literal["data_idx", "session_id", "task_id"] = "data_idx"
    """How ``reset`` names the task: an index (``data_idx``; ``session_id`` for
    WebShop servers) or an agentmc task name (``task_id``)."""
    reconnect: bool = True
    """After a lost session or interrupted request: open a new session and replay."""
    verify_replay: bool = True
    """Check that replayed steps give the recorded observations."""
    env_id: str = "agentgym"
    """Name recorded with trajectories."""

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"base_url must start with http:// or https://, not {self.base_url!r}"
            )
        if not (self.timeout_s > 0 and math.isfinite(self.timeout_s)):
            raise ConfigError(f"timeout_s must be a positive number, not {self.timeout_s}")
        if self.retries < 1:
            raise ConfigError(f"retries must be at least 1, not {self.retries}")
        if self.id_field not in ("id", "env_idx"):
            raise ConfigError(f"id_field must be 'id' or 'env_idx', not {self.id_field!r}")
        if self.task_field not in ("data_idx", "session_id", "task_id"):
            raise ConfigError(
                f"task_field must be 'data_idx', 'session_id' or 'task_id', not {self.task_field!r}"
            )


@dataclass(frozen=True)
class AgentGymSnapshot:
    """An episode prefix: enough to rebuild the state on any session of the server."""

    task_id: str
    seed: int | None
    first_observation: str
    actions: tuple[str, ...]
    observations: tuple[str, ...]
    done: bool


class AgentGymEnv:
    """One task played on an AgentGym-style server; see the module docstring.

    Args:
        config: Server address and protocol options.
        task_id: The task: an index into the server's task list (``data_idx``)
            or a task name (with ``task_field="task_id"``).
        client: An ``httpx2.Client`` to share between environments (the
            environment then does not close it).

    Raises:
        ConfigError: ``task_id`` is not an integer while the server expects an index.
    """

    def __init__(self, config: AgentGymConfig, task_id: str, client: Any | None = None) -> None:
        httpx = require("httpx2", "server")
        tenacity = require("tenacity", "server")
        self.config = config
        self.env_id = config.env_id
        self.task_id = str(task_id)
        if config.task_field != "task_id" and not self.task_id.lstrip("-").isdigit():
            raise ConfigError(
                f"task_id must be an integer index for task_field={config.task_field!r}, "
                f"not {self.task_id!r}"
            )
        self._httpx = httpx
        self._owns_client = client is None
        headers = {"Authorization": f"Bearer {config.token}"} if config.token else {}
        self._client = client or httpx.Client(timeout=config.timeout_s, headers=headers)
        self._headers = headers
        self._retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(
                (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
            ),
            stop=tenacity.stop_after_attempt(config.retries),
            wait=tenacity.wait_exponential(multiplier=0.05, max=2.0),
            reraise=True,
        )
        self.session: int | None = None
        self._seed: int | None = None
        self._first = ""
        self._actions: list[str] = []
        self._observations: list[str] = []
        self._done = False
        self.replayed_steps = 0
        """Steps replayed so far by ``restore`` and recovery (a cost counter)."""

    # -- HTTP -------------------------------------------------------------------------

    def _call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        url = self.config.base_url.rstrip("/") + path
        httpx = self._httpx

        def send() -> Any:
            if method == "GET":
                return self._client.get(url, params=payload, headers=self._headers)
            return self._client.post(url, json=payload or {}, headers=self._headers)

        try:
            response = self._retrying(send)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as error:
            raise EnvServerError(
                f"cannot reach the environment server at {self.config.base_url} "
                f"({self.config.retries} attempts): {error or type(error).__name__}"
            ) from None
        except httpx.TransportError as error:
            raise _Interrupted(f"{path}: {error or type(error).__name__}") from None
        try:
            data = response.json()
        except ValueError:
            text = response.text[:200]
            if response.status_code != 200:
                # an error page (e.g. a bare "Internal Server Error"): a refused request,
                # which the caller may recover from like any other
                raise _Refused(f"{path}: HTTP {response.status_code}: {text!r}") from None
            raise EnvServerError(
                f"{url} answered HTTP {response.status_code} with malformed JSON: {text!r}"
            ) from None
        if isinstance(data, dict) and "error" in data:
            raise _Refused(f"{path}: {data['error']} (HTTP {response.status_code})")
        if response.status_code != 200:
            raise _Refused(f"{path}: HTTP {response.status_code}: {str(data)[:200]}")
        return data

    def _session_payload(self, **fields: Any) -> dict[str, Any]:
        return {self.config.id_field: self.session, **fields}

    def _create(self) -> None:
        if self.session is not None:
            self._close_session()
        try:
            data = self._call("POST", "/create")
        except (_Refused, _Interrupted) as error:
            raise EnvServerError(
                f"could not create a session at {self.config.base_url}: {error}"
            ) from None
        if isinstance(data, dict):
            data = data.get("id", data.get("env_idx"))
        if isinstance(data, bool) or not isinstance(data, int):
            raise EnvServerError(f"/create returned no session id: {str(data)[:200]}")
        self.session = data

    def _close_session(self) -> None:
        session, self.session = self.session, None
        if session is None:
            return
        try:
            self._call("POST", "/close", {self.config.id_field: session})
        except (AgentmcError, _Refused, _Interrupted):
            return  # the session is gone already, or the server is; nothing to release

    def _reset_request(self) -> str:
        task: Any = self.task_id if self.config.task_field == "task_id" else int(self.task_id)
        payload = self._session_payload(**{self.config.task_field: task})
        if self._seed is not None:
            payload["seed"] = self._seed
        data = self._call("POST", "/reset", payload)
        if isinstance(data, dict) and isinstance(data.get("observation"), str):
            observation = data["observation"]
            if isinstance(data.get("task_description"), str):
                observation = data["task_description"] + "\n" + observation
            return observation
        observation = self._call("GET", "/observation", self._session_payload())
        if not isinstance(observation, str):
            raise EnvServerError(f"/observation returned {str(observation)[:200]!r}, not text")
        return observation

    def _step_request(self, action: str) -> StepResult:
        data = self._call("POST", "/step", self._session_payload(action=action))
        if not isinstance(data, dict):
            raise EnvServerError(f"/step returned {str(data)[:200]!r}, not an object")
        observation = data.get("observation", data.get("state"))
        try:
            reward = float(data.get("reward") or 0.0)
        except (TypeError, ValueError):
            reward = math.nan
        if not isinstance(observation, str) or not math.isfinite(reward):
            raise EnvServerError(f"/step returned a malformed result: {str(data)[:200]}")
        done = bool(data.get("done", False))
        truncated = bool(data.get("truncated", False))
        terminated = bool(data.get("terminated", done and not truncated))
        raw_info = data.get("info")
        info: dict[str, Any] = dict(raw_info) if isinstance(raw_info, dict) else {}
        if "score" in data:
            info = {**info, "score": data["score"]}
        return StepResult(observation, reward, terminated, truncated, info)

    # -- recovery ---------------------------------------------------------------------

    def _replay(self, actions: list[str], observations: list[str], start: int) -> None:
        """Step ``actions[start:]`` on the current session, checking observations."""
        for index in range(start, len(actions)):
            result = self._step_request(actions[index])
            self.replayed_steps += 1
            if self.config.verify_replay and result.observation != observations[index]:
                raise EnvServerError(
                    f"replaying task {self.task_id} on {self.config.base_url} diverged at step "
                    f"{index + 1} (action {actions[index]!r}): the server is not deterministic "
                    "or changed; the episode cannot be restored"
                )

    def _rebuild(self, first: str, actions: list[str], observations: list[str]) -> None:
        """New session at the start of the task, then the given prefix replayed."""
        self._create()
        observation = self._reset_request()
        if self.config.verify_replay and observation != first:
            raise EnvServerError(
                f"task {self.task_id} on {self.config.base_url} starts differently than "
                "before: the server changed; the episode cannot be restored"
            )
        self._replay(actions, observations, 0)

    def _recover(self, why: Exception) -> None:
        if not self.config.reconnect:
            raise EnvServerError(
                f"environment session lost at {self.config.base_url} ({why}); "
                "reconnect is off, so the episode cannot continue"
            )
        self._rebuild(self._first, self._actions, self._observations)

    # -- TextEnv ----------------------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        self._seed = seed
        self._actions, self._observations, self._done = [], [], False
        if self.session is None:
            self._create()
        try:
            observation = self._reset_request()
        except (_Refused, _Interrupted) as first_error:
            self._create()  # the session may be gone (server restart): one fresh try
            try:
                observation = self._reset_request()
            except (_Refused, _Interrupted) as error:
                raise EnvServerError(
                    f"reset of task {self.task_id} failed at {self.config.base_url}: {error}"
                ) from first_error
        self._first = observation
        return observation, {"session": self.session}

    def step(self, action: str) -> StepResult:
        if self.session is None:
            raise ConfigError("call reset() before step()")
        try:
            result = self._step_request(action)
        except (_Refused, _Interrupted) as error:
            try:
                self._recover(error)
                result = self._step_request(action)
            except (_Refused, _Interrupted) as second:
                raise EnvServerError(
                    f"step {action!r} failed at {self.config.base_url}: {second}"
                ) from None
        self._actions.append(action)
        self._observations.append(result.observation)
        self._done = bool(result.terminated or result.truncated)
        return result

    def snapshot(self) -> AgentGymSnapshot:
        return AgentGymSnapshot(
            self.task_id,
            self._seed,
            self._first,
            tuple(self._actions),
            tuple(self._observations),
            self._done,
        )

    def restore(self, snapshot: AgentGymSnapshot) -> None:
        if snapshot.task_id != self.task_id:
            raise ConfigError(
                f"cannot restore a snapshot of task {snapshot.task_id} into task {self.task_id}"
            )
        actions, observations = list(snapshot.actions), list(snapshot.observations)
        n = len(self._actions)
        on_the_way = (
            self.session is not None
            and self._seed == snapshot.seed
            and self._first == snapshot.first_observation
            and self._actions == actions[:n]
        )
        try:
            if on_the_way:
                self._replay(actions, observations, n)  # already on the way: step the rest
            else:
                self._seed = snapshot.seed
                if self.session is None:
                    self._create()
                observation = self._reset_request()
                if self.config.verify_replay and observation != snapshot.first_observation:
                    raise EnvServerError(
                        f"task {self.task_id} starts differently than when the snapshot was "
                        "taken: the server changed; cannot restore"
                    )
                self._replay(actions, observations, 0)
        except (_Refused, _Interrupted) as error:
            if not self.config.reconnect:
                raise EnvServerError(f"restore failed at {self.config.base_url}: {error}") from None
            self._seed = snapshot.seed
            try:
                self._rebuild(snapshot.first_observation, actions, observations)
            except (_Refused, _Interrupted) as second:
                raise EnvServerError(
                    f"restore failed at {self.config.base_url}: {second}"
                ) from None
        self._seed = snapshot.seed
        self._first = snapshot.first_observation
        self._actions, self._observations = actions, observations
        self._done = snapshot.done

    def close(self) -> None:
        self._close_session()
        if self._owns_client:
            self._client.close()


def tasks_from_server(config: AgentGymConfig) -> list[str]:
    """The task list of an agentmc server (``GET /tasks``), for building splits."""
    env = AgentGymEnv(config, task_id="0")
    try:
        data = env._call("GET", "/tasks")
    except (_Refused, _Interrupted) as error:
        raise EnvServerError(f"{config.base_url} does not list tasks: {error}") from None
    finally:
        env.close()
    if not isinstance(data, dict) or not isinstance(data.get("tasks"), list):
        raise EnvServerError(f"{config.base_url}/tasks returned {str(data)[:200]!r}")
    return [str(task) for task in data["tasks"]]


@dataclass(frozen=True)
class AgentGymPreset:
    """How one of AgentGym's environment servers speaks, and how many tasks it serves.

    Attributes:
        id_field: Session field of the server (see :class:`AgentGymConfig`).
        task_field: Task field of its ``reset``.
        n_tasks: Size of its task index range ``0..n_tasks - 1``, when agentmc knows it
            (otherwise pass ``task_range``).
    """

    id_field: Literal["id", "env_idx"] = "id"
    task_field: Literal["data_idx", "session_id", "task_id"] = "data_idx"
    n_tasks: int | None = None


def _sciworld_tasks() -> int:
    from agentmc.envs.sciworld.tasks import SciWorldTasks

    return len(SciWorldTasks.agentgym().task_ids("all"))


#: AgentGym server names (``--env-name``) -> protocol and task range. TextCraft serves the
#: 544 goals of its crafting table (the AMC paper's id files index it); SciWorld numbers
#: its variations as :meth:`~agentmc.envs.sciworld.tasks.SciWorldTasks.agentgym` does.
AGENTGYM_ENVS: dict[str, AgentGymPreset] = {
    "agentmc": AgentGymPreset("id", "data_idx"),
    "textcraft": AgentGymPreset("id", "data_idx", 544),
    "sciworld": AgentGymPreset("id", "data_idx"),
    "babyai": AgentGymPreset("id", "data_idx"),
    "alfworld": AgentGymPreset("env_idx", "data_idx"),
    "webshop": AgentGymPreset("env_idx", "session_id"),
}

#: Fractions of a server's task range that the default split puts in test and validation.
TEST_FRACTION = 0.2
VALIDATION_FRACTION = 0.1


def preset(env_name: str | None) -> AgentGymPreset:
    """The preset of an AgentGym server name (``None``: the defaults).

    Raises:
        UnknownNameError: An unknown name (the message lists the known ones).
    """
    if env_name is None:
        return AgentGymPreset()
    if env_name not in AGENTGYM_ENVS:
        from agentmc.errors import UnknownNameError

        raise UnknownNameError(
            f"unknown AgentGym environment {env_name!r}: choose one of "
            f"{', '.join(sorted(AGENTGYM_ENVS))} (or leave --env-name out and set the protocol "
            "options yourself)"
        )
    found = AGENTGYM_ENVS[env_name]
    if env_name == "sciworld":
        return AgentGymPreset(found.id_field, found.task_field, _sciworld_tasks())
    return found


def parse_task_range(text: str) -> list[str]:
    """``"0-543"`` (inclusive) or ``"100"`` (``0..99``) -> task ids.

    Example:
        >>> parse_task_range("3-5"), len(parse_task_range("100"))
        (['3', '4', '5'], 100)
    """
    start, sep, end = str(text).strip().partition("-")
    try:
        low, high = (int(start), int(end)) if sep else (0, int(start) - 1)
    except ValueError:
        raise ConfigError(
            f"task range {text!r}: expected START-END (inclusive, e.g. 0-543) or a count"
        ) from None
    if low < 0 or high < low:
        raise ConfigError(f"task range {text!r} is empty or negative")
    return [str(i) for i in range(low, high + 1)]


def default_split(task_ids: list[str], split: str) -> list[str]:
    """Our deterministic split of a server's tasks (returned in id order).

    Ids are ranked by SHA-256: 20% test, 10% validation, the rest train. It depends on
    the ids only, not on the server.
    """
    import hashlib

    ranked = sorted(task_ids, key=lambda t: hashlib.sha256(f"agentgym\x00{t}".encode()).digest())
    n_test = round(len(ranked) * TEST_FRACTION)
    n_validation = round(len(ranked) * VALIDATION_FRACTION)
    chosen = {
        "test": ranked[:n_test],
        "validation": ranked[n_test : n_test + n_validation],
        "train": ranked[n_test + n_validation :],
    }[split]
    order = {t: i for i, t in enumerate(task_ids)}
    return sorted(chosen, key=order.__getitem__)


def make_agentgym(
    task_id: str | int = "0",
    *,
    base_url: str = "http://127.0.0.1:36001",
    env_name: str | None = None,
    token: str | None = None,
    timeout_s: float = 60.0,
    retries: int = 3,
    id_field: Literal["id", "env_idx"] | None = None,
    task_field: Literal["data_idx", "session_id", "task_id"] | None = None,
    reconnect: bool = True,
    verify_replay: bool = True,
    task_range: str | None = None,
    split_files: dict[str, Any] | None = None,
) -> AgentGymEnv:
    """Registry factory: ``make("agentgym", task_id="3", base_url="http://host:port")``.

    The options are those of :class:`AgentGymConfig`; ``env_name`` (an AgentGym
    server name, see :data:`AGENTGYM_ENVS`) fills in ``id_field``/``task_field``
    and names the environment ``agentgym/<env_name>`` in records. ``task_range``
    and ``split_files`` select tasks (see :func:`list_agentgym_tasks`) and do not
    change the environment. Nothing is sent to the server until ``reset``.
    """
    found = preset(env_name)
    config = AgentGymConfig(
        base_url=base_url,
        timeout_s=timeout_s,
        retries=retries,
        token=token,
        id_field=id_field or found.id_field,
        task_field=task_field or found.task_field,
        reconnect=reconnect,
        verify_replay=verify_replay,
        env_id="agentgym" if env_name is None else f"agentgym/{env_name}",
    )
    return AgentGymEnv(config, task_id=str(task_id))


def list_agentgym_tasks(
    split: str = "all",
    *,
    base_url: str = "http://127.0.0.1:36001",
    token: str | None = None,
    env_name: str | None = None,
    task_range: str | None = None,
    split_files: dict[str, Any] | None = None,
    splits: dict[str, list[str]] | None = None,
    **_: object,
) -> list[str]:
    """Task ids of a server's split.

    The server's tasks (``all``) are ``task_range`` (e.g. ``"0-543"``) if given, else
    the range of the ``env_name`` preset when agentmc knows it, else what the server
    lists (``GET /tasks``, which ``agentmc serve`` answers). ``train``, ``validation``
    and ``test`` come from ``splits`` (id lists) or ``split_files`` (JSON index lists,
    the AMC paper's ``*_idx.json`` format) when given for that split, else from our
    deterministic split of the server's tasks (:func:`default_split`).

    Raises:
        UnknownNameError: Unknown split or ``env_name``.
        ConfigError: Malformed ``task_range``.
        DataError: A split file is unreadable or names ids outside the server's tasks.
        EnvServerError: The server must be asked for its tasks but cannot answer.
    """
    from agentmc.errors import UnknownNameError

    if split not in ("all", "train", "validation", "test"):
        raise UnknownNameError(
            f"unknown split {split!r}: choose one of train, validation, test, all"
        )
    if splits and split in splits:
        return [str(task) for task in splits[split]]
    found = preset(env_name)
    if task_range is not None:
        everything = parse_task_range(task_range)
    elif found.n_tasks is not None:
        everything = [str(i) for i in range(found.n_tasks)]
    else:
        config = AgentGymConfig(base_url=base_url, token=token)
        everything = [str(i) for i in range(len(tasks_from_server(config)))]
    if split == "all":
        return everything
    if split_files and split in split_files:
        from agentmc.envs.webshop.env import read_index_file

        return [str(i) for i in read_index_file(split_files[split], len(everything))]
    return default_split(everything, split)


__all__ = [
    "AGENTGYM_ENVS",
    "AgentGymConfig",
    "AgentGymPreset",
    "AgentGymEnv",
    "AgentGymSnapshot",
    "EnvServerError",
    "default_split",
    "list_agentgym_tasks",
    "make_agentgym",
    "parse_task_range",
    "tasks_from_server",
]
