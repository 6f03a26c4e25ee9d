"""Raft consensus as a pure, sans-IO state machine (filled in by the Raft issue)."""
