"""agentmc.cli."""
