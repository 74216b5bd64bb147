"""agentmc.policies."""
