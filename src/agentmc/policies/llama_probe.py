r"""Check, in a throw-away process, that llama.cpp can run a model on this CPU.

llama-cpp-python compiles llama.cpp for the machine that builds it, and
llama.cpp picks some kernels at run time from the flags the CPU reports. Both
can fault: a wheel built on one CPU and reused on another dies with SIGILL on
the first instruction the new CPU lacks, and on some virtual machines the CPU
reports AMX, the kernel grants it, and llama.cpp's AMX matrix kernels (one of
the "extra buffer types" it uses to repack weights) still die with SIGILL.
A signal kills the whole Python process, not just the call, so the only safe
test is to try in a child process.

:func:`extra_buffers_supported` runs :func:`main` in a subprocess twice at
most: with extra buffer types (the fast path where the CPU really has the
kernels), then without. The first configuration that decodes a batch and a
single token and exits cleanly is used; the verdict is cached in a small
JSON file keyed by the llama.cpp library, the model file and the CPU's flags,
so the probe runs once per machine and build (about a second).

Example:
    >>> from agentmc.policies.llama_probe import probe_key
    >>> sorted(probe_key("/no/such/model.gguf", library="/no/lib.so"))
    ['cpu', 'library', 'model', 'version']
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from agentmc.errors import PolicyError

__all__ = ["ProbeResult", "extra_buffers_supported", "main", "probe", "probe_key"]

PROBE_SECONDS = 120
"""A probe that takes longer than this counts as failed (a hung native call)."""


def _cpu_flags() -> str:
    """The CPU's feature flags as the kernel reports them (empty where unknown)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.startswith("flags"):
                return " ".join(sorted(line.split(":", 1)[1].split()))
    except OSError:
        pass
    return ""


def _file_id(path: str | os.PathLike[str]) -> str:
    try:
        stat = os.stat(path)
    except OSError:
        return f"{path}:missing"
    return f"{os.path.realpath(path)}:{stat.st_size}:{int(stat.st_mtime)}"


def _library_path() -> str:
    """The compiled llama.cpp library llama-cpp-python loads (without importing it)."""
    import importlib.util

    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        return "llama_cpp:missing"
    folder = Path(next(iter(spec.submodule_search_locations))) / "lib"
    libraries = sorted(str(p) for p in folder.glob("libllama*")) if folder.is_dir() else []
    return libraries[0] if libraries else str(folder)


def probe_key(model: str | os.PathLike[str], *, library: str | None = None) -> dict[str, str]:
    """What a cached verdict depends on: library build, model file, CPU flags, this code."""
    return {
        "library": _file_id(library or _library_path()),
        "model": _file_id(model),
        "cpu": hashlib.sha256(_cpu_flags().encode()).hexdigest()[:16],
        "version": "1",
    }


def _cache_file() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "agentmc" / "llama-probe.json"


class ProbeResult:
    """How one probe process ended.

    Attributes:
        ok: It decoded and exited with status 0.
        detail: ``"exit 0"``, ``"signal SIGILL"``, ``"exit 1: <last stderr line>"``, ...
    """

    def __init__(self, ok: bool, detail: str) -> None:
        self.ok = ok
        self.detail = detail

    def __repr__(self) -> str:
        return f"ProbeResult(ok={self.ok}, detail={self.detail!r})"


def probe(
    model: str | os.PathLike[str],
    *,
    extra_buffers: bool,
    command: Sequence[str] | None = None,
    timeout: float = PROBE_SECONDS,
) -> ProbeResult:
    """Load ``model`` and decode a few tokens in a child process.

    Args:
        model: A GGUF file.
        extra_buffers: Let llama.cpp use its extra buffer types (AMX, weight repacking).
        command: The child's command line (default: this module's :func:`main`
            under the current interpreter); tests pass one that crashes.
        timeout: Seconds before the child is killed and the probe fails.

    Returns:
        Whether the child exited cleanly, and how it ended.
    """
    argv = list(command) if command is not None else [
        sys.executable,
        "-m",
        "agentmc.policies.llama_probe",
        str(model),
        "1" if extra_buffers else "0",
    ]
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return ProbeResult(False, f"no answer within {timeout:.0f} s")
    except OSError as error:
        return ProbeResult(False, f"could not start: {error}")
    if done.returncode == 0:
        return ProbeResult(True, "exit 0")
    if done.returncode < 0:
        try:
            name = signal.Signals(-done.returncode).name
        except ValueError:
            name = str(-done.returncode)
        return ProbeResult(False, f"signal {name}")
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    last = lines[-1].strip() if lines else ""
    return ProbeResult(False, f"exit {done.returncode}: {last}"[:300])


def extra_buffers_supported(
    model: str | os.PathLike[str],
    *,
    command: Sequence[str] | None = None,
    use_cache: bool = True,
) -> bool:
    """Whether llama.cpp may use extra buffer types for ``model`` on this machine.

    Args:
        model: A GGUF file.
        command: Probe command override (tests).
        use_cache: Read and write the cached verdict.

    Returns:
        ``True`` if the fast configuration runs; ``False`` if only the one
        without extra buffer types does.

    Raises:
        PolicyError: Neither configuration runs: the llama.cpp build itself
            uses instructions this CPU lacks (e.g. a wheel built elsewhere).
    """
    key = probe_key(model)
    cache = _cache_file()
    if use_cache:
        try:
            cached = json.loads(cache.read_text())
            if cached.get("key") == key:
                return bool(cached["extra_buffers"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass
    fast = probe(model, extra_buffers=True, command=command)
    verdict = True
    if not fast.ok:
        safe = probe(model, extra_buffers=False, command=command)
        if not safe.ok:
            raise PolicyError(
                f"llama.cpp cannot run the embedded model on this CPU ({safe.detail}): the "
                "installed llama-cpp-python was probably built for another machine; rebuild it "
                "here: pip install --force-reinstall --no-cache-dir --no-deps llama-cpp-python"
            )
        verdict = False
    if use_cache:
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            record = {"key": key, "extra_buffers": verdict, "fast_probe": fast.detail}
            tmp = cache.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(record, indent=1))
            os.replace(tmp, cache)
        except OSError:
            pass  # no writable cache: probe again next time
    return verdict


def main(argv: Sequence[str] | None = None) -> int:
    """Child process: load the model, decode a 64-token batch and one token, exit 0."""
    args = list(sys.argv[1:] if argv is None else argv)
    model, extra = args[0], args[1] == "1"
    import llama_cpp

    llama_cpp.llama_log_set(_SILENT, None)
    params = llama_cpp.llama_model_default_params()
    params.use_extra_bufts = extra
    handle = llama_cpp.llama_model_load_from_file(model.encode(), params)
    if not handle:
        print(f"could not load {model}", file=sys.stderr)
        return 1
    context_params = llama_cpp.llama_context_default_params()
    context_params.n_ctx = 256
    context_params.n_batch = 64
    context_params.n_threads = context_params.n_threads_batch = 1
    context = llama_cpp.llama_init_from_model(handle, context_params)
    batch = llama_cpp.llama_batch_init(64, 0, 1)
    for n_tokens, start in ((64, 0), (1, 64)):  # matrix kernels, then vector kernels
        batch.n_tokens = n_tokens
        for i in range(n_tokens):
            batch.token[i] = 1 + (start + i) % 100
            batch.pos[i] = start + i
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = 0
            batch.logits[i] = i == n_tokens - 1
        if llama_cpp.llama_decode(context, batch) != 0:
            print("llama_decode failed", file=sys.stderr)
            return 1
    llama_cpp.llama_batch_free(batch)
    llama_cpp.llama_free(context)
    llama_cpp.llama_model_free(handle)
    return 0


def _silent(level: int, text: bytes, user_data: object) -> None:
    """llama.cpp log callback that drops everything."""


try:  # the callback type exists only where llama-cpp-python is installed
    import llama_cpp as _llama_cpp

    _SILENT = _llama_cpp.llama_log_callback(_silent)
except ImportError:  # pragma: no cover - imported without the local extra
    _SILENT = None


if __name__ == "__main__":
    sys.exit(main())
