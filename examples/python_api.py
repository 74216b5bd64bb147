"""The README's Python API example, as a script (a test keeps the two identical).

Collects 40 prior trajectories of the synthetic noisy-expert TextCraft agent,
fits a hashed critic on their returns, and runs AMC with 8 particles on a test
task. Offline, a few seconds: ``python examples/python_api.py``.
"""

import numpy as np

from agentmc import FitConfig, MethodSpec, fit, make, make_policy, run_method, task_ids
from agentmc.rollout import rollout

policy = make_policy("noisy-expert")  # synthetic stand-in; or "local", "openai:gpt-4o-mini"
rng = np.random.default_rng(0)
prior = [rollout(make("textcraft", task_id=t), policy, rng)
         for t in task_ids("textcraft", "train")[:40]]
critic = fit(prior, FitConfig(backend="hashed")).critic  # regression on the prior's returns
task = task_ids("textcraft", "test")[0]
result = run_method(MethodSpec.parse("amc:8:critic"), lambda: make("textcraft", task_id=task),
                    policy, rng, critic=critic)
print(result.method, result.selection, result.success, result.calls)
