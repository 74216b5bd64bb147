r"""The embedded language model with LoRA adapters, as a trainable policy.

:class:`LMPolicy` is SmolLM2-135M (the GGUF shipped for the ``local`` policy,
dequantized into a transformers model) with PEFT LoRA adapters. It acts like
the ``local`` policy in its default ``choose`` mode: the prompt is
``LocalConfig().prompt.completion(messages)`` and every candidate action is
written as ``f" {action}\\n"`` after it; the model samples one candidate token
by token, each token drawn among the children of its node in the token trie
of the candidates (a forced token has probability one). Here all candidates
are teacher-forced in one batch and the trie-constrained probability of each
is computed exactly, so the sample has the same distribution as the
token-by-token walk and its log-probability is differentiable:

    log pi(a | s) = sum_j [ z_j(a_j) - logsumexp_{c in children(a_<j)} z_j(c) ] / T

(``z`` the logits, ``T`` the temperature; with temperature 0 the most
likely candidate is taken).

Every prompt starts with the same text (instructions, worked example), so its
keys and values are computed once per set of weights and shared: by all
calls while playing, and by all samples of a batch while training, where the
shared prefix is back-propagated once (:func:`batch_log_probs`).

The base weights are dequantized from the GGUF once and kept as a
transformers checkpoint under ``$AGENTMC_CACHE`` (default
``~/.cache/agentmc``), derived from the local file, nothing downloaded.

Example:
    >>> import asyncio
    >>> from agentmc.types import Message
    >>> policy = LMPolicy.from_base(lora=LoRAConfig(rank=8))  # doctest: +SKIP
    >>> task = (Message("user", "Goal: craft stick."),)
    >>> options = ["inventory", "get 1 oak logs"]
    >>> [c.text for c in asyncio.run(policy.complete(task, candidates=options))]  # doctest: +SKIP
    ['inventory']
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agentmc.errors import ConfigError, DataError, MissingExtraError, PolicyError, require
from agentmc.policies.core import Completion
from agentmc.policies.prompts import PromptFormat
from agentmc.types import Message, Usage

FORMAT_VERSION = 1
POLICY_FILE = "lm_policy.json"
ADAPTER_DIR = "adapter"
GGUF_ADAPTER = "adapter.gguf"
"""The adapters as a llama.cpp LoRA file, written beside ``adapter/`` (``local:adapter=``)."""

# transformers' Llama module names -> llama.cpp's tensor names (``blk.N.<name>.weight``)
_GGUF_TENSORS = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}


@dataclass(frozen=True)
class LoRAConfig:
    """LoRA adapters on the embedded model."""

    rank: int = 8
    """Rank of each adapter."""
    alpha: float = 16.0
    """Scale numerator (the update is ``alpha / rank * B A``)."""
    dropout: float = 0.0
    """Dropout on the adapter input (0 keeps log-probabilities deterministic)."""
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    """Linear layers that get adapters."""

    def __post_init__(self) -> None:
        if self.rank < 1 or self.alpha <= 0 or not 0 <= self.dropout < 1:
            raise ConfigError("LoRA needs rank >= 1, alpha > 0 and dropout in [0, 1)")
        if not self.target_modules:
            raise ConfigError("LoRA target_modules must name at least one layer")


def cache_root() -> Path:
    """Where derived model files are kept (``$AGENTMC_CACHE`` or ``~/.cache/agentmc``)."""
    return Path(os.environ.get("AGENTMC_CACHE", Path.home() / ".cache" / "agentmc"))


def load_base(model_path: str | Path | None = None) -> tuple[Any, Any]:
    """The embedded model as a float32 transformers model and its tokenizer.

    Args:
        model_path: A GGUF file (default: the ``local`` policy's SmolLM2-135M).

    Returns:
        ``(model, tokenizer)``; the model is in eval mode.

    Raises:
        MissingExtraError: torch, transformers, peft, gguf or the weights are missing.
        ConfigError: ``model_path`` is not a file.
    """
    torch = require("torch", "torch")
    transformers = require("transformers", "torch")
    require("peft", "torch")
    from agentmc.policies.local import default_model_path

    path = default_model_path() if model_path is None else Path(model_path)
    if not path.is_file():
        raise ConfigError(f"no model file at {path}")
    stat = path.stat()
    cached = cache_root() / "hf" / f"{path.stem}-{stat.st_size}-{int(stat.st_mtime)}"
    if (cached / "config.json").is_file():
        tokenizer = transformers.AutoTokenizer.from_pretrained(cached)
        model = transformers.AutoModelForCausalLM.from_pretrained(cached, dtype=torch.float32)
    else:
        require("gguf", "torch")
        source = {"pretrained_model_name_or_path": str(path.parent), "gguf_file": path.name}
        tokenizer = transformers.AutoTokenizer.from_pretrained(**source)
        model = transformers.AutoModelForCausalLM.from_pretrained(**source, dtype=torch.float32)
        _save_plain(model, tokenizer, cached)
    model.eval()
    return model, tokenizer


def _save_plain(model: Any, tokenizer: Any, target: Path) -> None:
    """Keep the dequantized weights as a plain checkpoint (written aside, then renamed)."""
    from safetensors.torch import save_model

    partial = target.with_name(target.name + f".partial-{os.getpid()}")
    partial.mkdir(parents=True, exist_ok=True)
    config = model.config.to_dict()
    config.pop("quantization_config", None)
    (partial / "config.json").write_text(json.dumps(config, indent=2))
    save_model(model, str(partial / "model.safetensors"))
    tokenizer.save_pretrained(partial)
    if not target.exists():
        partial.replace(target)


@dataclass(frozen=True)
class StepSample:
    """One decision, as training needs it.

    Attributes:
        suffix: Prompt tokens after the shared prefix.
        candidates: Token ids of every candidate's continuation.
        chosen: Index of the candidate taken.
        log_prob: Its log-probability when it was sampled (temperature 1).
    """

    suffix: tuple[int, ...]
    candidates: tuple[tuple[int, ...], ...]
    chosen: int
    log_prob: float


def trie_log_probs(
    logits: Any, candidates: Sequence[Sequence[int]], temperature: float = 1.0
) -> Any:
    """Log-probabilities of the candidates under trie-constrained sampling.

    Args:
        logits: ``(C, L, V)`` torch tensor; ``logits[i, j]`` predicts token ``j``
            of candidate ``i`` (rows padded to the longest candidate ``L``).
        candidates: ``C`` token sequences, none a prefix of another.
        temperature: Softmax temperature (> 0).

    Returns:
        ``(C,)`` tensor of ``log pi(candidate)``; it sums to one in probability.
    """
    allowed, valid, taken, branching = _trie_index(candidates)
    among = logits[:, : allowed.shape[1]].gather(-1, allowed)
    return _reduce(among, valid, taken, branching, temperature)


def trie_log_probs_hidden(
    hidden: Any,
    weight: Any,
    candidates: Sequence[Sequence[int]],
    temperature: float = 1.0,
    rows: int | None = None,
) -> Any:
    """:func:`trie_log_probs` from final hidden states ``(C, L, H)`` and the output matrix.

    Only the rows of ``weight`` (``(V, H)``) that some trie node allows are
    multiplied, so the ``(C, L, V)`` logits are never formed. With ``rows=i``,
    ``hidden`` is candidate ``i``'s alone (``(1, L, H)``) and so is the result.
    """
    import torch

    allowed, valid, taken, branching = _trie_index(candidates)
    if rows is not None:
        keep = (slice(rows, rows + 1), slice(0, hidden.shape[1]))
        allowed, valid, taken, branching = allowed[keep], valid[keep], taken[keep], branching[keep]
    among = torch.einsum("clh,clwh->clw", hidden[:, : allowed.shape[1]], weight[allowed])
    return _reduce(among, valid, taken, branching, temperature)


def _trie_index(candidates: Sequence[Sequence[int]]) -> tuple[Any, Any, Any, Any]:
    """Per candidate token: allowed siblings, their mask, taken position, branching.

    Shapes: ``(C, L, W)``, ``(C, L, W)``, ``(C, L)``, ``(C, L)``.
    """
    import torch

    n, length = len(candidates), max(len(c) for c in candidates)
    children: dict[tuple[int, ...], list[int]] = {}
    for tokens in candidates:
        for j in range(len(tokens)):
            siblings = children.setdefault(tuple(tokens[:j]), [])
            if tokens[j] not in siblings:
                siblings.append(tokens[j])
    width = max(len(c) for c in children.values())
    allowed = torch.zeros((n, length, width), dtype=torch.long)
    valid = torch.zeros((n, length, width), dtype=torch.bool)
    taken = torch.zeros((n, length), dtype=torch.long)
    branching = torch.zeros((n, length), dtype=torch.bool)
    for i, tokens in enumerate(candidates):
        for j, token in enumerate(tokens):
            siblings = children[tuple(tokens[:j])]
            allowed[i, j, : len(siblings)] = torch.tensor(siblings)
            valid[i, j, : len(siblings)] = True
            taken[i, j] = siblings.index(token)
            branching[i, j] = len(siblings) > 1
    return allowed, valid, taken, branching


def _reduce(among: Any, valid: Any, taken: Any, branching: Any, temperature: float) -> Any:
    import torch

    scaled = (among / temperature).masked_fill(~valid, float("-inf"))
    chosen = scaled.gather(-1, taken.unsqueeze(-1)).squeeze(-1)
    per_token = (chosen - torch.logsumexp(scaled, dim=-1)).masked_fill(~branching, 0.0)
    return per_token.sum(dim=-1)


def _parts(model: Any) -> tuple[Any, Any]:
    """The decoder stack (final norm included) and the output matrix ``(V, H)``."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return inner.model, inner.get_output_embeddings().weight


class LMPolicy:
    """The embedded model (optionally with LoRA adapters) choosing among candidate actions.

    Args:
        model: A transformers causal LM (a PEFT model when adapters are attached).
        tokenizer: Its tokenizer.
        name: Label in run records.
        prompt: Prompt format (default: the ``local`` policy's).
        threads: torch CPU threads (``None``: the idle cores, at most 4).
        meta: JSON-safe details saved with the adapter.

    Attributes:
        usage: Calls and tokens so far (every call is also reported per completion).
        cpu_seconds: Process CPU time spent inside :meth:`complete`.
    """

    synthetic = False

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        name: str = "lm",
        prompt: PromptFormat | None = None,
        threads: int | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        import torch

        from agentmc.policies.local import LocalConfig, idle_threads

        self.model, self.tokenizer, self.name = model, tokenizer, name
        self.prompt = prompt or LocalConfig().prompt
        self.meta = dict(meta or {})
        self.usage = Usage()
        self.cpu_seconds = 0.0
        torch.set_num_threads(threads or idle_threads())
        self.prefix_text = _shared_prefix(self.prompt)
        self.prefix = tuple(self._encode(self.prefix_text, special=True))
        self._prefix_cache: tuple[int, list[tuple[Any, Any]]] | None = None
        self.version = 0

    @classmethod
    def from_base(
        cls, model_path: str | Path | None = None, lora: LoRAConfig | None = None, **kwargs: Any
    ) -> LMPolicy:
        """The base model, with fresh (zero-effect) LoRA adapters if ``lora`` is given."""
        model, tokenizer = load_base(model_path)
        if lora is not None:
            peft = require("peft", "torch")
            adapter = peft.LoraConfig(
                r=lora.rank,
                lora_alpha=lora.alpha,
                lora_dropout=lora.dropout,
                target_modules=list(lora.target_modules),
                task_type="CAUSAL_LM",
            )
            model = peft.get_peft_model(model, adapter)
        return cls(model, tokenizer, **kwargs)

    def _encode(self, text: str, *, special: bool) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=special)["input_ids"])

    def encode_step(
        self, messages: Sequence[Message], candidates: Sequence[str]
    ) -> tuple[tuple[int, ...], tuple[tuple[int, ...], ...]]:
        """Token ids after the shared prefix, and of each candidate's continuation."""
        text = self.prompt.completion(messages)
        if not text.startswith(self.prefix_text):
            raise PolicyError("the prompt does not start with the prompt format's shared text")
        suffix = tuple(self._encode(text[len(self.prefix_text) :], special=False))
        options = tuple(
            tuple(self._encode(self.prompt.continuation(c), special=False)) for c in candidates
        )
        return suffix, options

    def invalidate(self) -> None:
        """Forget the cached prefix (call after changing the weights)."""
        self._prefix_cache = None
        self.version += 1

    def _prefix_kv(self) -> list[tuple[Any, Any]]:
        import torch

        if self._prefix_cache is None or self._prefix_cache[0] != self.version:
            with torch.no_grad():
                out = self.model(torch.tensor([self.prefix]), use_cache=True, logits_to_keep=1)
            self._prefix_cache = (self.version, _layers(out.past_key_values))
        return self._prefix_cache[1]

    def step_log_probs(
        self,
        suffix: Sequence[int],
        candidates: Sequence[Sequence[int]],
        prefix_kv: list[tuple[Any, Any]],
        temperature: float = 1.0,
        only: int | None = None,
    ) -> Any:
        """``(C,)`` log-probabilities of the candidates after ``prefix + suffix``.

        Differentiable when ``prefix_kv`` and the model carry gradients. With
        ``only``, just that candidate's log-probability (shape ``(1,)``): the
        siblings at each of its trie nodes are scored from its own hidden
        states, so one sequence is evaluated instead of ``C``.
        """
        import torch
        from transformers import DynamicCache

        cache = DynamicCache(ddp_cache_data=prefix_kv)
        decoder, weight = _parts(self.model)
        out = decoder(torch.tensor([list(suffix)]), past_key_values=cache, use_cache=True)
        cache = out.past_key_values
        first = out.last_hidden_state[:, -1:]  # predicts every candidate's first token
        evaluated = list(candidates) if only is None else [candidates[only]]
        n, length = len(evaluated), max(len(c) for c in evaluated)
        hidden = first.expand(n, 1, -1)
        if length > 1:
            if n > 1:
                cache.batch_repeat_interleave(n)
            pad = self.tokenizer.eos_token_id or 0
            rows = [list(c[:-1]) + [pad] * (length - len(c)) for c in evaluated]
            rest = decoder(torch.tensor(rows), past_key_values=cache, use_cache=False)
            hidden = torch.cat([hidden, rest.last_hidden_state], dim=1)
        return trie_log_probs_hidden(hidden, weight, candidates, temperature, rows=only)

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        n: int = 1,
        temperature: float = 1.0,
        seed: int | None = None,
        candidates: Sequence[str] | None = None,
    ) -> list[Completion]:
        """Sample ``n`` of the ``candidates`` (see the module docstring).

        Raises:
            PolicyError: No candidates were given.
            ConfigError: ``n`` or ``temperature`` is invalid.
        """
        import torch

        if not candidates:
            raise PolicyError(
                f"policy {self.name!r} chooses among candidate actions; the environment "
                "offered none (it needs valid_actions())"
            )
        if not isinstance(n, int) or n < 1 or not np.isfinite(temperature) or temperature < 0:
            raise ConfigError(
                f"n={n!r}, temperature={temperature!r}: need n >= 1, temperature >= 0"
            )
        started = time.process_time()
        choices = list(dict.fromkeys(candidates))
        suffix, options = self.encode_step(messages, choices)
        with torch.no_grad():
            log_probs = (
                self.step_log_probs(suffix, options, self._prefix_kv(), temperature or 1.0)
                .double()
                .numpy()
            )
        rng = np.random.default_rng(seed)
        if temperature <= 0:
            picks = [int(np.argmax(log_probs))] * n
        else:
            picks = [int(i) for i in rng.choice(len(choices), size=n, p=_normalised(log_probs))]
        usage = Usage(
            calls=1,
            prompt_tokens=len(self.prefix) + len(suffix),
            completion_tokens=sum(len(o) for o in options),
            cost=0.0,
        )
        self.usage = self.usage + usage
        self.cpu_seconds += time.process_time() - started
        return [
            Completion(choices[i], float(log_probs[i]), usage if k == 0 else Usage())
            for k, i in enumerate(picks)
        ]

    def save(self, directory: str | Path, *, gguf: bool = False) -> Path:
        """Write the adapter (PEFT format) and ``lm_policy.json`` into ``directory``.

        With ``gguf``, also ``adapter.gguf`` (:func:`export_gguf_adapter`), so that
        ``trained:DIR`` plays through llama.cpp; only for adapters on the embedded
        GGUF's weights (the default base).
        """
        target = Path(directory)
        target.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(target / ADAPTER_DIR)
        if gguf:
            export_gguf_adapter(self.model, target / GGUF_ADAPTER)
        settings = {
            "format": FORMAT_VERSION,
            "kind": "lora-lm",
            "name": self.name,
            "prompt": asdict(self.prompt),
            "meta": self.meta,
        }
        (target / POLICY_FILE).write_text(json.dumps(settings, indent=2, sort_keys=True))
        return target / POLICY_FILE

    @classmethod
    def load(
        cls,
        directory: str | Path,
        base_model: tuple[Any, Any] | None = None,
        *,
        trainable: bool = False,
        **kwargs: Any,
    ) -> LMPolicy:
        """Read a policy written by :meth:`save`.

        Args:
            directory: The run directory (holding ``lm_policy.json`` and ``adapter/``).
            base_model: ``(model, tokenizer)`` to attach the adapter to (default: the
                embedded model, or the GGUF recorded at training time).
            trainable: Leave the adapters trainable (to train on from them).
            **kwargs: Passed to the constructor (e.g. ``threads``).

        Raises:
            DataError: Missing or incompatible files.
        """
        base = Path(directory)
        settings = _settings(base)
        if not (base / ADAPTER_DIR / "adapter_config.json").is_file():
            raise DataError(f"no LoRA adapter in {base / ADAPTER_DIR}")
        peft = require("peft", "torch")
        model, tokenizer = base_model or load_base(settings.get("meta", {}).get("model_path"))
        model = peft.PeftModel.from_pretrained(model, base / ADAPTER_DIR, is_trainable=trainable)
        model.eval()
        prompt = PromptFormat(**settings["prompt"]) if "prompt" in settings else None
        return cls(
            model, tokenizer, name=settings.get("name", "lm"), prompt=prompt,
            meta=settings.get("meta", {}), **kwargs,
        )  # fmt: skip


def load_lm_policy(directory: str | Path) -> Any:
    """A saved LoRA policy as an agent (``trained:DIR``): through llama.cpp when it can.

    With ``adapter.gguf`` beside the adapter and llama-cpp-python installed, this
    is the ``local`` policy in ``choose`` mode with that adapter and the saved
    prompt: the distribution :class:`LMPolicy` samples, up to llama.cpp's
    rounding, at the batched engine's speed. Otherwise :meth:`LMPolicy.load`
    (torch).

    Raises:
        DataError: Missing or incompatible files.
    """
    base = Path(directory)
    try:
        require("llama_cpp", "local")
    except MissingExtraError:
        return LMPolicy.load(base)
    if not (base / GGUF_ADAPTER).is_file():
        return LMPolicy.load(base)
    settings = _settings(base)
    from agentmc.policies.local import LocalConfig, LocalPolicy

    prompt = PromptFormat(**settings["prompt"]) if "prompt" in settings else LocalConfig().prompt
    config = LocalConfig(
        mode="choose",
        model_path=settings.get("meta", {}).get("model_path"),
        adapter=str(base / GGUF_ADAPTER),
        prompt=prompt,
    )
    local = LocalPolicy(config)
    local.name = settings.get("name", "lm")
    return local


def _settings(base: Path) -> dict[str, Any]:
    """The ``lm_policy.json`` of a saved policy, checked."""
    try:
        settings = json.loads((base / POLICY_FILE).read_text())
    except (OSError, ValueError) as error:
        raise DataError(f"cannot read {base / POLICY_FILE}: {error}") from None
    if settings.get("format") != FORMAT_VERSION or settings.get("kind") != "lora-lm":
        raise DataError(f"{base / POLICY_FILE} is not a lora-lm policy of format {FORMAT_VERSION}")
    return settings


def _layers(cache: Any) -> list[tuple[Any, Any]]:
    """A cache's per-layer ``(keys, values)``."""
    return [(layer.keys, layer.values) for layer in cache.layers]


def _normalised(log_probs: np.ndarray) -> np.ndarray:
    p = np.exp(log_probs - log_probs.max())
    return p / p.sum()


def _shared_prefix(prompt: PromptFormat) -> str:
    """The text every prompt of this format starts with, cut after its last newline."""
    one = prompt.completion([Message("user", "a")])
    two = prompt.completion([Message("user", "b")])
    common = os.path.commonprefix([one, two])
    return common[: common.rfind("\n") + 1]


def batch_log_probs(
    policy: LMPolicy,
    samples: Sequence[StepSample],
    backward_weights: Sequence[np.ndarray] | None = None,
) -> tuple[np.ndarray, list[np.ndarray | None]]:
    """Log-probabilities of the taken actions; optionally back-propagates a weighted sum.

    With ``backward_weights`` (per sample a ``(C,)`` array ``w_i``), gradients
    of ``sum_i sum_c w_ic log pi(c | s_i)`` are accumulated into the model's
    trainable parameters: each sample's graph is freed after its own backward
    pass, and the shared prompt prefix (its keys and values computed once, with
    gradients) is back-propagated once at the end.

    Returns:
        ``(chosen, full)``: ``(N,)`` log-probabilities of the taken actions and,
        per sample, the ``(C,)`` log-probabilities of all its candidates
        (``None`` where only the taken action was weighted and evaluated;
        ``chosen`` is then ``nan`` if its weight was 0).
    """
    import torch

    train = backward_weights is not None
    context = torch.enable_grad() if train else torch.no_grad()
    chosen, full = np.full(len(samples), np.nan), []
    with context:
        if train:
            out = policy.model(torch.tensor([policy.prefix]), use_cache=True, logits_to_keep=1)
            roots = _layers(out.past_key_values)
            leaves = [(k.detach().requires_grad_(), v.detach().requires_grad_()) for k, v in roots]
        else:
            leaves = policy._prefix_kv()
        for i, sample in enumerate(samples):
            weights = None if not train else np.asarray(backward_weights[i], dtype=np.float64)
            if weights is not None and not np.any(np.delete(weights, sample.chosen)):
                # only the taken action is weighted: evaluate its path alone
                if weights[sample.chosen] == 0.0:
                    full.append(None)
                    continue
                log_prob = policy.step_log_probs(
                    sample.suffix, sample.candidates, leaves, only=sample.chosen
                )[0]
                chosen[i] = float(log_prob.detach())
                full.append(None)
                (log_prob * float(weights[sample.chosen])).backward()
                continue
            log_probs = policy.step_log_probs(sample.suffix, sample.candidates, leaves)
            full.append(log_probs.detach().double().numpy())
            chosen[i] = full[-1][sample.chosen]
            if weights is not None:
                (log_probs * torch.as_tensor(weights, dtype=log_probs.dtype)).sum().backward()
        if train:
            tensors = [t for pair in roots for t in pair]
            grads = [
                t.grad if t.grad is not None else torch.zeros_like(t) for p in leaves for t in p
            ]
            torch.autograd.backward(tensors, grads)
    return chosen, full


@dataclass
class Recorder:
    """Wraps a policy for one episode and keeps every decision as a :class:`StepSample`.

    ``policy`` plays; ``encoder`` (default: ``policy``) turns each decision into
    token ids, so an :class:`LMPolicy` can record what the ``local`` policy
    played with its adapters in llama.cpp. The log-probability kept is the
    player's.
    """

    policy: Any
    encoder: LMPolicy | None = None
    samples: list[StepSample] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.policy.name

    @property
    def synthetic(self) -> bool:
        return False

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        n: int = 1,
        temperature: float = 1.0,
        seed: int | None = None,
        candidates: Sequence[str] | None = None,
    ) -> list[Completion]:
        completions = await self.policy.complete(
            messages, n=n, temperature=temperature, seed=seed, candidates=candidates
        )
        choices = list(dict.fromkeys(candidates or ()))
        suffix, options = (self.encoder or self.policy).encode_step(messages, choices)
        self.samples.append(
            StepSample(suffix, options, choices.index(completions[0].text),
                       float(completions[0].logprob or 0.0))
        )  # fmt: skip
        return completions


def export_gguf_adapter(model: Any, path: str | Path) -> Path:
    """Write a PEFT Llama model's LoRA adapters as a llama.cpp LoRA adapter (GGUF).

    The file applies to the GGUF the base weights came from: llama.cpp loads it
    with ``llama_adapter_lora_init`` and scales it by ``alpha / rank`` as PEFT
    does. llama.cpp stores the query and key projections with their rows
    interleaved for its rotary embedding (transformers undoes this when it reads
    a GGUF), so the same permutation is applied here to the rows of their ``B``
    matrices; ``A`` acts on the input and is written as it is.

    Args:
        model: A PEFT model over a transformers Llama (``LMPolicy.model``).
        path: The file to write (written aside, then renamed).

    Raises:
        MissingExtraError: ``gguf`` or ``peft`` is missing.
        ConfigError: Adapters with rsLoRA/DoRA, or on layers llama.cpp cannot take.
    """
    gguf = require("gguf", "torch")
    peft = require("peft", "torch")
    config = model.peft_config[model.active_adapter]
    if getattr(config, "use_rslora", False) or getattr(config, "use_dora", False):
        raise ConfigError("only plain LoRA adapters can be exported to llama.cpp")
    heads = model.config.num_attention_heads
    kv_heads = getattr(model.config, "num_key_value_heads", None) or heads
    pattern = re.compile(r"layers\.(\d+)\.(\w+\.\w+)\.lora_([AB])\.weight$")
    target = Path(path)
    partial = target.with_name(target.name + f".partial-{os.getpid()}")
    writer = gguf.GGUFWriter(partial, arch="llama")
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(config.lora_alpha))
    state = peft.get_peft_model_state_dict(model)
    for key in sorted(state):
        match = pattern.search(key)
        if match is None or match[2] not in _GGUF_TENSORS:
            raise ConfigError(f"cannot export LoRA tensor {key!r} to llama.cpp")
        weights = state[key].detach().float().numpy()
        if match[3] == "B" and match[2] in ("self_attn.q_proj", "self_attn.k_proj"):
            weights = _rope_rows(weights, heads if match[2].endswith("q_proj") else kv_heads)
        name = f"blk.{match[1]}.{_GGUF_TENSORS[match[2]]}.weight.lora_{match[3].lower()}"
        writer.add_tensor(name, np.ascontiguousarray(weights, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    partial.replace(target)
    return target


def _rope_rows(weights: np.ndarray, heads: int) -> np.ndarray:
    """Rows in the order llama.cpp's converter gives query/key projections (per head)."""
    rows = weights.shape[0]
    split = weights.reshape(heads, 2, rows // heads // 2, *weights.shape[1:])
    return split.swapaxes(1, 2).reshape(weights.shape)
