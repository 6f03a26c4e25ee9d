"""A node's state and role changes: timers, pre-vote and vote campaigns, and how votes are granted."""

from __future__ import annotations

import enum
from collections.abc import Iterable

from .log import RaftLog
from .messages import TRANSFER_CONTEXT, Message, MessageType
from .progress import Progress, ReadIndexQueue, quorum
from .records import EntryType, HardState, RaftConfig, ReadState, Rng, Role, SoftState
from .storage import Storage

PRE_VOTE = MessageType.PRE_VOTE
PRE_VOTE_RESP = MessageType.PRE_VOTE_RESP
VOTE = MessageType.VOTE
VOTE_RESP = MessageType.VOTE_RESP
FOLLOWER = Role.FOLLOWER
PRE_CANDIDATE = Role.PRE_CANDIDATE
CANDIDATE = Role.CANDIDATE
LEADER = Role.LEADER


class _Poll(enum.Enum):
    PENDING = 0
    WON = 1
    LOST = 2


class Election:
    """The part of a node every role shares. RaftNode builds on it; Replication adds the leader's work."""

    __slots__ = (
        "_bcast_commit", "_bcast_entries", "_bcast_heartbeat", "_cfg", "_election_elapsed", "_heartbeat_elapsed",
        "_id", "_leader", "_log", "_msgs", "_now", "_peers", "_pending_conf_index", "_pending_reads", "_prev_hard",
        "_prev_soft", "_progress", "_randomized_timeout", "_read_states", "_reads", "_rng", "_role", "_storage",
        "_term", "_timeout_range", "_transferee", "_vote", "_voters", "_votes",
    )

    _cfg: RaftConfig
    _id: str
    _storage: Storage
    _rng: Rng
    _log: RaftLog
    _term: int
    _vote: str | None
    _role: Role
    _leader: str | None
    _voters: frozenset[str]
    _peers: tuple[str, ...]  # the other voters, sorted: messages go out in a deterministic order
    _election_elapsed: int  # follower: ticks since the leader was heard from; leader: since the last quorum check
    _heartbeat_elapsed: int
    _randomized_timeout: int
    _timeout_range: tuple[int, int]
    _now: int  # ticks since this node started
    _votes: dict[str, bool]
    _msgs: list[Message]
    _read_states: list[ReadState]
    _prev_hard: HardState
    _prev_soft: SoftState
    # Leader only (reset on every role change).
    _progress: dict[str, Progress]
    _transferee: str | None
    _pending_conf_index: int
    _reads: ReadIndexQueue
    _pending_reads: list[bytes]  # read-index requests waiting for the leader's first commit in its term
    _bcast_entries: bool  # new entries to ship to followers at the next ready()
    _bcast_commit: bool  # the commit index moved: tell followers at the next ready(), even with no entries
    _bcast_heartbeat: bool  # a read-index request wants a heartbeat round at the next ready()

    def _init_election(self, config: RaftConfig, rng: Rng) -> None:
        self._cfg = config
        self._id = config.id
        self._rng = rng
        # Drawn above election_ticks, which is the leader lease: by the time the first survivor of a dead
        # leader asks for votes, every other survivor has stopped trusting that leader, so one round elects.
        lo = config.election_ticks + 2
        self._timeout_range = (lo, max(lo, 2 * config.election_ticks - 1))
        self._role = FOLLOWER
        self._leader = None
        self._term = 0
        self._vote = None
        self._now = 0
        self._msgs = []
        self._read_states = []
        self._reads = ReadIndexQueue()
        self._prev_soft = SoftState(leader_id=None, role=FOLLOWER)

    # --- membership -----------------------------------------------------------------------------------------

    def _set_voters(self, voters: Iterable[str]) -> None:
        self._voters = frozenset(voters)
        self._peers = tuple(sorted(v for v in self._voters if v != self._id))

    def _promotable(self) -> bool:
        return self._id in self._voters

    def _has_unapplied_conf_change(self) -> bool:
        """A committed conf change not yet applied: campaigning now could use a stale configuration."""
        log = self._log
        if log.committed <= log.applied:
            return False
        lo = max(log.applied + 1, log.first_index())
        return any(e.type is EntryType.CONF_CHANGE for e in log.entries(lo, log.committed + 1))

    # --- role changes ---------------------------------------------------------------------------------------

    def _reset(self, term: int) -> None:
        if term != self._term:
            self._term = term
            self._vote = None
        self._leader = None
        self._election_elapsed = 0
        self._heartbeat_elapsed = 0
        lo, hi = self._timeout_range
        self._randomized_timeout = self._rng.randint(lo, hi)
        self._votes = {}
        self._progress = {}
        self._transferee = None
        self._pending_conf_index = 0
        self._reads.clear()
        self._pending_reads = []
        self._bcast_entries = self._bcast_commit = self._bcast_heartbeat = False

    def _become_follower(self, term: int, leader: str | None) -> None:
        self._reset(term)
        self._role = FOLLOWER
        self._leader = leader

    def _become_leader(self) -> None:
        raise NotImplementedError  # Replication

    def _in_lease(self) -> bool:
        """Does this node trust a live leader? Then it ignores (pre-)votes: leader stickiness."""
        if not self._cfg.check_quorum or self._leader is None:
            return False
        return self._role is LEADER or self._election_elapsed < self._cfg.election_ticks

    # --- timers ---------------------------------------------------------------------------------------------

    def ticks_until_due(self) -> int:
        """How many more `tick()` calls may pass before one can change anything (an election, a heartbeat,
        a quorum check); at least 1. A runtime may sleep that long and then tick that many times at once,
        provided it catches up on elapsed ticks before stepping any message (the lease needs them)."""
        if self._role is LEADER:
            cfg = self._cfg
            return max(1, min(cfg.heartbeat_ticks - self._heartbeat_elapsed,
                              cfg.election_ticks - self._election_elapsed))
        if self._id not in self._voters:
            return self._cfg.election_ticks  # never campaigns; nothing but the tick count changes
        return max(1, self._randomized_timeout - self._election_elapsed)

    def tick(self) -> None:
        """One unit of time passed."""
        self._now += 1
        if self._role is LEADER:
            self._tick_leader()
            return
        self._election_elapsed += 1
        if self._election_elapsed >= self._randomized_timeout and self._id in self._voters:
            self._election_elapsed = 0
            self._hup(transfer=False)

    def _tick_leader(self) -> None:
        raise NotImplementedError  # Replication

    # --- campaigns ------------------------------------------------------------------------------------------

    def _hup(self, transfer: bool) -> None:
        if self._role is LEADER or not self._promotable() or self._has_unapplied_conf_change():
            return
        # A transfer skips the pre-vote: the leader itself asked, so nobody's lease should stand in the way.
        self._campaign(pre=self._cfg.pre_vote and not transfer, transfer=transfer)

    def _campaign(self, pre: bool, transfer: bool = False) -> None:
        if pre:
            # Neither term nor vote changes: a node that cannot win does not disturb anyone's term.
            self._reset(self._term)
            self._role = PRE_CANDIDATE
            kind, term = PRE_VOTE, self._term + 1
        else:
            self._reset(self._term + 1)
            self._role = CANDIDATE
            self._vote = self._id
            kind, term = VOTE, self._term
        if self._poll(self._id, True) is _Poll.WON:  # a single-voter cluster
            if pre:
                self._campaign(pre=False, transfer=transfer)
            else:
                self._become_leader()
            return
        log = self._log
        last_index, last_term = log.last_index(), log.last_term()
        context = TRANSFER_CONTEXT if transfer else b""
        for peer in self._peers:
            self._msgs.append(Message(type=kind, src=self._id, dst=peer, term=term, index=last_index,
                                      log_term=last_term, context=context))

    def _poll(self, voter: str, granted: bool) -> _Poll:
        self._votes.setdefault(voter, granted)
        yes = sum(1 for v in self._votes.values() if v)
        needed = quorum(len(self._voters))
        if yes >= needed:
            return _Poll.WON
        if len(self._voters) - (len(self._votes) - yes) < needed:
            return _Poll.LOST
        return _Poll.PENDING

    # --- voting ---------------------------------------------------------------------------------------------

    def _handle_vote_request(self, m: Message) -> None:
        pre = m.type is PRE_VOTE
        if self._vote == m.src:
            can_vote = True  # a repeated request (duplicate or retried) gets the same answer
        else:
            can_vote = (self._vote is None and self._leader is None) or (pre and m.term > self._term)
        log = self._log
        last_index, last_term = log.last_index(), log.last_term()
        up_to_date = m.log_term > last_term or (m.log_term == last_term and m.index >= last_index)
        if can_vote and up_to_date and pre and self._role is PRE_CANDIDATE and (m.log_term, m.index) == (
                last_term, last_index) and m.src > self._id:
            # Two pre-candidates with equal logs (timers fired together): only the smaller id may pass, so a
            # near-simultaneous timeout does not end in a split vote and a second term.
            can_vote = False
        resp = PRE_VOTE_RESP if pre else VOTE_RESP
        if can_vote and up_to_date:
            # A grant carries the requested term; for a pre-vote that is one above ours.
            self._msgs.append(Message(type=resp, src=self._id, dst=m.src, term=m.term))
            if not pre:
                self._vote = m.src
                self._election_elapsed = 0
            elif self._role is PRE_CANDIDATE:
                # We back a better (or tie-winning) pre-candidate: stand down rather than compete with it.
                self._become_follower(self._term, None)
        else:
            self._msgs.append(Message(type=resp, src=self._id, dst=m.src, term=self._term, reject=True))

    def _handle_vote_response(self, m: Message) -> None:
        if self._role is PRE_CANDIDATE:
            # Grants come at the term we asked about (ours + 1), rejects at the voter's (ours, else we stepped down).
            if m.type is not PRE_VOTE_RESP or m.term != (self._term if m.reject else self._term + 1):
                return
        elif m.type is not VOTE_RESP or m.term != self._term:
            return
        if m.src not in self._voters:
            return
        result = self._poll(m.src, not m.reject)
        if result is _Poll.WON:
            if self._role is PRE_CANDIDATE:
                self._campaign(pre=False)
            else:
                self._become_leader()
        elif result is _Poll.LOST:
            self._become_follower(self._term, None)
