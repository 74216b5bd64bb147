"""agentmc.smc."""
