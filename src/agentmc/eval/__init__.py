"""agentmc.eval."""
