"""SimPy simulator that drives the same Raft, FSM and scheduler code as the agent."""
