"""The Cluster implementations: the simulator, local processes and the lab's hosts."""
