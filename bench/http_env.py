"""AgentGym HTTP protocol: server throughput and per-step latency vs in process.

Starts ``agentmc serve --env textcraft`` as a separate process on a free
loopback port, then measures:

* ``inprocess_step_us``: ``TextCraftEnv.step("inventory")`` in this process;
* ``http_step_ms``: the same step through :class:`AgentGymEnv` (one
  ``POST /step`` round trip, JSON both ways), one client, sequential; and
  ``http_overhead_ms`` = the difference (what the protocol adds per step);
* ``throughput_steps_per_s_c{1,4,16}``: steps/s the server sustains with 1, 4
  and 16 concurrent clients (threads, one session each).

TextCraft steps take microseconds, so these numbers are the protocol's own
cost. On a shared 2-core machine the client and server compete for the same
cores; compare numbers from one run.

Run: ``.venv/bin/python bench/http_env.py`` (about a minute). Writes
``bench/results/http_env.json``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

import httpx2 as httpx
import numpy as np
from common import write_result

from agentmc.envs import make
from agentmc.envs.agentgym.client import AgentGymConfig, AgentGymEnv

N_LATENCY = 500
STEPS_PER_CLIENT = 300
CLIENTS = (1, 4, 16)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(port: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "agentmc.cli.main", "serve", "--env", "textcraft"]
    command += ["--port", str(port), "--max-steps", "1000000", "--max-envs", "64"]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/tasks", timeout=1)
            return process
        except httpx.TransportError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("agentmc serve did not start") from None
            time.sleep(0.2)


def client_steps(config: AgentGymConfig, task_id: str, n: int, out: list[float]) -> None:
    env = AgentGymEnv(config, task_id=task_id)
    env.reset(seed=0)
    for _ in range(n):
        env.step("inventory")
    env.close()
    out.append(n)


def main() -> None:
    local = make("textcraft", task_id="0", max_steps=10**6)
    local.reset()
    start = time.perf_counter()
    for _ in range(20 * N_LATENCY):
        local.step("inventory")
    inprocess_us = 1e6 * (time.perf_counter() - start) / (20 * N_LATENCY)

    port = free_port()
    server = start_server(port)
    try:
        config = AgentGymConfig(base_url=f"http://127.0.0.1:{port}")
        env = AgentGymEnv(config, task_id="0")
        env.reset(seed=0)
        for _ in range(50):  # warm-up
            env.step("inventory")
        times = []
        for _ in range(N_LATENCY):
            t0 = time.perf_counter()
            env.step("inventory")
            times.append(time.perf_counter() - t0)
        env.close()
        http_ms = 1e3 * float(np.median(times))

        throughput = {}
        for n_clients in CLIENTS:
            done: list[float] = []
            threads = [
                threading.Thread(target=client_steps, args=(config, str(i), STEPS_PER_CLIENT, done))
                for i in range(n_clients)
            ]
            t0 = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            wall = time.perf_counter() - t0
            throughput[n_clients] = sum(done) / wall
    finally:
        server.terminate()
        server.wait(timeout=10)

    metrics = {
        "inprocess_step_us": inprocess_us,
        "http_step_ms": http_ms,
        "http_step_ms_p90": 1e3 * float(np.quantile(times, 0.9)),
        "http_overhead_ms": http_ms - inprocess_us / 1e3,
        "http_over_inprocess": http_ms * 1e3 / inprocess_us,
    }
    units = {
        "inprocess_step_us": "us per step (mean)",
        "http_step_ms": "ms per step (median, one client)",
        "http_step_ms_p90": "ms",
        "http_overhead_ms": "ms added per step by HTTP",
        "http_over_inprocess": "ratio",
    }
    for n_clients, rate in throughput.items():
        metrics[f"throughput_steps_per_s_c{n_clients}"] = rate
        units[f"throughput_steps_per_s_c{n_clients}"] = f"steps/s, {n_clients} concurrent clients"
    write_result(
        "http_env",
        metrics,
        units,
        {
            "env": "textcraft",
            "action": "inventory",
            "server": "agentmc serve (uvicorn, separate process, 127.0.0.1)",
            "client": "AgentGymEnv (httpx2), one session per client thread",
            "n_latency": N_LATENCY,
            "steps_per_client": STEPS_PER_CLIENT,
        },
    )


if __name__ == "__main__":
    main()
