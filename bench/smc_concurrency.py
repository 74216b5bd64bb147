"""SMC wall time through real HTTP: does a step cost one latency, whatever K is?

An OpenAI-compatible stand-in server (200 ms before every answer; an aiohttp
app in this file, or with ``--threaded-server`` :mod:`agentmc.testing.openai_server`)
runs in a **separate process** on loopback, so this process's CPU is the
client's alone. AMC plays 20 TextCraft steps with K = 1,
4, 16 and 64 particles through the ``openai:`` policy (the default lean aiohttp
transport, request grouping on), resampling after every step. The server
cycles through eight harmless actions (one per returned choice), so particles
diverge, and a stand-in critic (a CRC of the last observation, a valid twist
that is no good as a value) makes the weights unequal, so resampling clones
particles: clones share their parent's prompt and are sent as one request
with ``n``. Same-run yardsticks at K = 64:

- ``http_ungrouped_ratio_k64``: the policy with grouping off (one request per
  particle: the client's full load);
- ``sdk_ratio_k64``: grouping off, through the ``openai`` SDK (its aiohttp
  transport when ``openai[aiohttp]`` is installed, else httpx);
- ``bare_aiohttp_ratio_k64``: the same number of requests, bodies as large as
  the conversation, posted with a bare aiohttp session (no agentmc at all).

Ratio = wall / (steps x latency); 1.0 is the ideal. The CPU is shared with
other users: the load average before and after is recorded, and each figure
is the median of ``REPEATS`` runs.

Run: ``python bench/smc_concurrency.py`` (about 3 minutes).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
import zlib

import numpy as np
from common import write_result

from agentmc.envs import make
from agentmc.policies.openai_compat import ClientLimits, OpenAIConfig, OpenAIPolicy
from agentmc.smc import SMC, SMCConfig
from agentmc.steer import AgentModel

STEPS = 20
LATENCY = 0.2
KS = (1, 4, 16, 64)
REPEATS = 3
#: "aiohttp": this file's lean stand-in server; "threaded": agentmc.testing.openai_server.
SERVER = "threaded" if "--threaded-server" in sys.argv else "aiohttp"
REPLIES = (
    "Action: inventory",
    "Action: get 1 oak logs",
    "Action: get 2 oak logs",
    "Action: get 1 stick",
    "Action: get 1 iron ingot",
    "Action: get 3 oak logs",
    "Action: get 2 stick",
    "Action: get 1 cobblestone",
)


class CrcCritic:
    """Stand-in critic: a deterministic score of the last observation (unequal weights)."""

    name = "crc (stand-in)"

    def values(self, histories):
        return np.array(
            [(zlib.crc32(h.messages[-1].content.encode()) % 5) * 0.5 for h in histories]
        )


def serve(port: int) -> None:
    """Subprocess entry: a lean OpenAI-compatible stand-in server (aiohttp), 200 ms per answer.

    It answers ``POST /v1/chat/completions`` (with ``n``, usage as word counts) and
    ``GET /v1/models``, cycling through ``REPLIES`` one per returned choice. An
    asyncio server spends far less CPU per request than the threaded test server,
    so on a shared machine the latency it adds is the 200 ms asked for.
    """
    from aiohttp import web

    turn = [0]

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "test-model"}]})

    async def chat(request: web.Request) -> web.Response:
        body = await request.json()
        await asyncio.sleep(LATENCY)
        n = int(body.get("n") or 1)
        choices = []
        for index in range(n):
            text = REPLIES[turn[0] % len(REPLIES)]
            turn[0] += 1
            message = {"role": "assistant", "content": text}
            choices.append({"index": index, "message": message, "finish_reason": "stop"})
        prompt = sum(len(str(m.get("content", "")).split()) for m in body["messages"])
        completion = sum(len(c["message"]["content"].split()) for c in choices)
        usage = {"prompt_tokens": prompt, "completion_tokens": completion}
        usage["total_tokens"] = prompt + completion
        return web.json_response(
            {"id": "x", "object": "chat.completion", "model": body["model"], "choices": choices,
             "usage": usage}
        )

    app = web.Application()
    app.add_routes([web.get("/v1/models", models), web.post("/v1/chat/completions", chat)])
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server() -> tuple[subprocess.Popen, str]:
    port = free_port()
    if SERVER == "threaded":  # agentmc.testing's threaded test server
        command = [sys.executable, "-m", "agentmc.testing.openai_server", "--port", str(port)]
        command += ["--latency", str(LATENCY)]
        for reply in REPLIES:
            command += ["--reply", reply]
    else:
        command = [sys.executable, __file__, "--serve", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}/v1"
    for _ in range(200):
        try:
            urllib.request.urlopen(base_url + "/models", timeout=1).read()
            return process, base_url
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("the test server did not start")


def make_policy(base_url: str, *, group: bool = True, transport: str = "aiohttp") -> OpenAIPolicy:
    config = OpenAIConfig(
        model="test-model",
        base_url=base_url,
        allow_no_key=True,
        max_tokens=16,
        transport=transport,  # type: ignore[arg-type]
        group_requests=group,
        limits=ClientLimits(max_concurrency=256),
    )
    return OpenAIPolicy(config)


async def amc_run(policy: OpenAIPolicy, k: int) -> dict:
    """One 20-step AMC run: wall, process CPU, calls and requests per step."""
    model = AgentModel(make("textcraft", task_id="5", max_steps=STEPS), policy, CrcCritic())
    config = SMCConfig(n_particles=k, schedule="every", max_steps=STEPS)
    smc = SMC(model, config, np.random.default_rng(0), value_fn=model)
    requests: list[int] = []
    start, cpu = time.perf_counter(), time.process_time()
    try:
        while True:
            before = policy.stats["requests"]
            state = await smc.step()
            requests.append(policy.stats["requests"] - before)
            if state.complete:
                break
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    finally:
        await policy.aclose()
    assert len(requests) == STEPS, len(requests)
    calls = k * STEPS
    return {"wall": wall, "cpu": cpu, "calls": calls, "requests": requests}


async def bare_run(base_url: str, k: int, bodies: list[list[dict]]) -> dict:
    """The same traffic shape with a bare aiohttp session: K posts per step, step by step.

    Bodies are encoded inside the timed region, as any client must.
    """
    import aiohttp

    url = base_url + "/chat/completions"
    headers = {"Content-Type": "application/json", "Authorization": "Bearer not-needed"}
    start, cpu = time.perf_counter(), time.process_time()
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def post(body: dict) -> str:
            async with session.post(url, data=json.dumps(body).encode()) as response:
                return json.loads(await response.read())["choices"][0]["message"]["content"]

        for step in range(STEPS):
            await asyncio.gather(*(post(body) for body in bodies[step]))
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"wall": wall, "cpu": cpu, "calls": k * STEPS}


def bare_bodies(k: int) -> list[list[dict]]:
    """Chat bodies growing like an AMC conversation (system prompt + 2 messages per step)."""
    from agentmc.policies.prompts import PromptFormat
    from agentmc.types import Message

    prompt = PromptFormat(style="react")
    task = make("textcraft", task_id="5").reset(seed=0)[0]
    out = []
    for step in range(STEPS):
        step_bodies = []
        for particle in range(k):
            messages = [Message("user", task)]
            for turn in range(step):
                reply = REPLIES[(particle + turn) % len(REPLIES)]
                messages += [Message("assistant", reply), Message("user", f"Got {turn}.")]
            body = {
                "model": "test-model",
                "temperature": 1.0,
                "max_tokens": 16,
                "messages": prompt.chat(messages),
                "stop": list(prompt.stop),
                "seed": particle,
            }
            step_bodies.append(body)
        out.append(step_bodies)
    return out


def median_of(runs: list[dict], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def main() -> None:
    ideal = STEPS * LATENCY
    metrics: dict[str, float | None] = {}
    units: dict[str, str] = {}
    load_before = os.getloadavg()
    process, base_url = start_server()
    try:
        for k in KS:
            runs = [asyncio.run(amc_run(make_policy(base_url), k)) for _ in range(REPEATS)]
            metrics[f"http_ratio_k{k}"] = round(median_of(runs, "wall") / ideal, 4)
            units[f"http_ratio_k{k}"] = (
                "wall / (steps x latency): AMC via the openai: policy, separate-process server"
            )
            if k == 64:
                grouped = runs
        later = [n for run in grouped for n in run["requests"][1:]]
        metrics["requests_per_step_k64_first_step"] = float(grouped[0]["requests"][0])
        units["requests_per_step_k64_first_step"] = "HTTP requests at step 1 (64 share one prompt)"
        metrics["requests_per_step_k64_after_resampling"] = round(float(np.mean(later)), 2)
        units["requests_per_step_k64_after_resampling"] = (
            "mean HTTP requests per step after step 1 (64 particle calls per step)"
        )
        metrics["cpu_ms_per_call_k64_grouped"] = round(
            1000 * median_of(grouped, "cpu") / grouped[0]["calls"], 3
        )
        units["cpu_ms_per_call_k64_grouped"] = "ms of client CPU per particle call, grouping on"

        runs = [
            asyncio.run(amc_run(make_policy(base_url, group=False), 64)) for _ in range(REPEATS)
        ]
        metrics["http_ungrouped_ratio_k64"] = round(median_of(runs, "wall") / ideal, 4)
        units["http_ungrouped_ratio_k64"] = "wall / (steps x latency), one request per particle"
        metrics["requests_per_step_k64_ungrouped"] = float(np.mean(runs[0]["requests"]))
        units["requests_per_step_k64_ungrouped"] = "HTTP requests per step, grouping off"
        metrics["cpu_ms_per_call_k64"] = round(1000 * median_of(runs, "cpu") / runs[0]["calls"], 3)
        units["cpu_ms_per_call_k64"] = (
            "ms of client CPU per request (AMC + lean client, grouping off; server elsewhere)"
        )

        bodies = bare_bodies(64)
        runs = [asyncio.run(bare_run(base_url, 64, bodies)) for _ in range(REPEATS)]
        metrics["bare_aiohttp_ratio_k64"] = round(median_of(runs, "wall") / ideal, 4)
        units["bare_aiohttp_ratio_k64"] = "wall / (steps x latency), bare aiohttp, same requests"
        metrics["bare_aiohttp_cpu_ms_per_call_k64"] = round(
            1000 * median_of(runs, "cpu") / runs[0]["calls"], 3
        )
        units["bare_aiohttp_cpu_ms_per_call_k64"] = "ms of client CPU per request, bare aiohttp"

        try:
            sdk_runs = [
                asyncio.run(amc_run(make_policy(base_url, group=False, transport="sdk"), 64))
                for _ in range(REPEATS)
            ]
        except ImportError:
            sdk_runs = []
        metrics["sdk_ratio_k64"] = (
            round(median_of(sdk_runs, "wall") / ideal, 4) if sdk_runs else None
        )
        units["sdk_ratio_k64"] = "wall / (steps x latency), openai SDK transport, grouping off"
        metrics["sdk_cpu_ms_per_call_k64"] = (
            round(1000 * median_of(sdk_runs, "cpu") / sdk_runs[0]["calls"], 3) if sdk_runs else None
        )
        units["sdk_cpu_ms_per_call_k64"] = "ms of client CPU per request, openai SDK transport"
    finally:
        process.terminate()
        process.wait(timeout=10)
    load_after = os.getloadavg()
    metrics["goal_met_k64"] = float(metrics["http_ratio_k64"] <= 1.15)
    units["goal_met_k64"] = "1 if http_ratio_k64 <= 1.15"
    metrics["load_avg_1min_before"] = round(load_before[0], 2)
    metrics["load_avg_1min_after"] = round(load_after[0], 2)
    units["load_avg_1min_before"] = "1-minute load average before the runs (2 shared cores)"
    units["load_avg_1min_after"] = "1-minute load average after the runs"
    try:
        import openai

        aiohttp_transport = hasattr(openai, "DefaultAioHttpClient") and importlib_find("aiohttp")
        sdk_transport = ("aiohttp" if aiohttp_transport else "httpx") + (
            f" (openai {openai.__version__})"
        )
    except ImportError:
        sdk_transport = None
    write_result(
        "smc_concurrency",
        metrics,
        units,
        {
            "steps": STEPS,
            "latency_s": LATENCY,
            "particles": list(KS),
            "repeats": REPEATS,
            "schedule": "every",
            "critic": "crc of the last observation (stand-in, unequal weights)",
            "env": "textcraft task 5",
            "server": (
                "agentmc.testing.openai_server, threaded, separate process"
                if SERVER == "threaded"
                else "aiohttp stand-in (this file, --serve), separate process, loopback"
            ),
            "server_replies": list(REPLIES),
            "max_concurrency": 256,
            "sdk_transport": sdk_transport,
        },
    )


def importlib_find(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


if __name__ == "__main__":
    if "--serve" in sys.argv:
        serve(int(sys.argv[sys.argv.index("--serve") + 1]))
    else:
        main()
