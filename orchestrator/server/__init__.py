"""The server: Raft, FSM and the leader's control loops glued together, sans-IO."""
