"""agentmc.envs.toy."""
