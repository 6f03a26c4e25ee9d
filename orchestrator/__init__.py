"""yurt: a Nomad-compatible workload orchestrator in Python."""

__version__ = "0.1.0"
