"""agentmc.data."""
