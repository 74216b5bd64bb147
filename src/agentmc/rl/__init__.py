"""agentmc.rl."""
