"""agentmc.envs."""
