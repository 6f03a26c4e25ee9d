"""The server state machine: applies committed Raft commands to the state store."""
