"""agentmc.envs.textcraft."""
