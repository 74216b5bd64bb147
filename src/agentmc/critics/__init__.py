"""agentmc.critics."""
