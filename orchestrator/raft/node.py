"""RaftNode: the public, sans-IO Raft state machine (tick, step, propose, ready, advance) and a follower's work."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .election import FOLLOWER, LEADER, PRE_VOTE, PRE_VOTE_RESP, VOTE
from .log import RaftLog
from .messages import TRANSFER_CONTEXT, Message, MessageType, Ready
from .records import (
    ConfChange,
    ConfChangeKind,
    ConfState,
    Entry,
    EntryType,
    HardState,
    NotLeaderError,
    ProposalDroppedError,
    RaftConfig,
    RaftError,
    ReadState,
    Rng,
    Role,
    SoftState,
)
from .replication import Replication
from .storage import Storage

APPEND = MessageType.APPEND
APPEND_RESP = MessageType.APPEND_RESP
HEARTBEAT = MessageType.HEARTBEAT
HEARTBEAT_RESP = MessageType.HEARTBEAT_RESP
SNAPSHOT = MessageType.SNAPSHOT
TIMEOUT_NOW = MessageType.TIMEOUT_NOW
_FROM_LEADER = frozenset({APPEND, HEARTBEAT, SNAPSHOT})

DEFAULT_COMPACT_KEEP = 100  # entries kept behind a snapshot, so a briefly lagging follower needs no snapshot


class RaftNode(Replication):
    """One Raft server, as a pure state machine. The application drives it:

        node.tick() / node.step(msg) / node.propose(data) ...
        while node.has_ready():
            rd = node.ready()
            persist(storage, rd)            # snapshot, entries, hard state: durable before sending
            send(rd.messages)
            restore rd.snapshot, then apply rd.committed_entries (calling apply_conf_change for conf changes)
            node.advance(rd)

    On start the application restores its state machine from `storage.snapshot()` (if any) and passes the index
    it holds as `RaftConfig.applied`; committed entries after it come out again to be applied.
    """

    __slots__ = ()

    def __init__(self, config: RaftConfig, storage: Storage, rng: Rng) -> None:
        self._init_election(config, rng)
        self._storage = storage
        self._load()

    def _load(self) -> None:
        """(Re)read all durable state from storage: a restart recovers term, vote, commit, log and configuration."""
        storage = self._storage
        hard, conf = storage.initial_state()
        log = self._log = RaftLog(storage, self._cfg.applied)
        self._term = hard.term
        self._vote = hard.vote
        # The snapshot's configuration plus every committed conf change since: right from the start, though the
        # application will apply those past its applied index again (harmless: adding or removing is idempotent).
        voters = set(conf.voters)
        if log.committed >= log.first_index():
            for e in log.entries(log.first_index(), log.committed + 1):
                if e.type is EntryType.CONF_CHANGE:
                    _apply_to(voters, ConfChange.decode(e.data))
        self._set_voters(voters)
        self._prev_hard = hard
        self._become_follower(hard.term, None)

    def bootstrap(self, voters: Sequence[str]) -> None:
        """Give a brand-new cluster its first configuration; only on empty storage.

        The configuration becomes committed CONF_CHANGE entries 1..n (term 1), one ADD_NODE per voter in sorted
        order, so every server bootstrapped with the same set has the same log, and a server added later learns
        the whole configuration from the log (or a snapshot). They come out of the first Ready as committed
        entries; applying them again is harmless.
        """
        storage = self._storage
        hard, conf = storage.initial_state()
        if (storage.last_index() != 0 or storage.snapshot().index != 0 or conf.voters or hard != HardState()
                or self._term != 0 or self._log.last_index() != 0):
            raise RaftError("raft: bootstrap needs an empty storage")
        ids = sorted(set(voters))
        if not ids:
            raise ValueError("raft: bootstrap needs at least one voter")
        storage.append([Entry(term=1, index=i, type=EntryType.CONF_CHANGE,
                              data=ConfChange(kind=ConfChangeKind.ADD_NODE, node_id=v).encode())
                        for i, v in enumerate(ids, 1)])
        storage.set_hard_state(HardState(term=1, commit=len(ids)))
        self._load()  # which puts them in effect at once: the first election need not wait for the application

    # --- read-only view -------------------------------------------------------------------------------------

    @property
    def id(self) -> str:
        return self._id

    @property
    def term(self) -> int:
        return self._term

    @property
    def vote(self) -> str | None:
        return self._vote

    @property
    def role(self) -> Role:
        return self._role

    @property
    def leader_id(self) -> str | None:
        return self._leader

    @property
    def commit_index(self) -> int:
        return self._log.committed

    @property
    def applied_index(self) -> int:
        return self._log.applied

    @property
    def first_index(self) -> int:
        return self._log.first_index()

    @property
    def last_index(self) -> int:
        return self._log.last_index()

    @property
    def voters(self) -> frozenset[str]:
        return self._voters

    def entry_term(self, index: int) -> int | None:
        """The term of our entry at `index` (None when compacted or absent), for invariant checks."""
        return self._log.term(index)

    log_term = entry_term  # the same, under the name some callers use

    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "id": self._id, "term": self._term, "vote": self._vote, "role": self._role, "leader_id": self._leader,
            "commit_index": self._log.committed, "applied_index": self._log.applied,
            "first_index": self._log.first_index(), "last_index": self._log.last_index(), "voters": self._voters,
        }
        if self._role is LEADER:
            status["progress"] = {peer: {"match": pr.match, "next": pr.next, "state": pr.state.value}
                                  for peer, pr in self._progress.items()}
            status["transferee"] = self._transferee
        return status

    # --- input ----------------------------------------------------------------------------------------------

    def step(self, m: Message) -> None:
        """A message arrived. Anything stale, duplicated, reordered or misaddressed is handled safely."""
        if m.dst != self._id:
            return
        kind = m.type
        if m.term > self._term:
            if kind is VOTE or kind is PRE_VOTE:
                if m.context != TRANSFER_CONTEXT and self._in_lease():
                    return  # we hear from a live leader: a rejoining or partitioned node must not depose it
                if kind is VOTE:
                    self._become_follower(m.term, None)
            elif kind is PRE_VOTE_RESP and not m.reject:
                pass  # a grant carries the term we asked about; ours has not changed
            else:
                self._become_follower(m.term, m.src if kind in _FROM_LEADER else None)
        elif m.term < self._term:
            if kind is APPEND or kind is HEARTBEAT:
                if self._cfg.check_quorum or self._cfg.pre_vote:
                    # A deposed leader that missed the election would otherwise never learn the new term: our
                    # leases and pre-votes keep it from disrupting us, so tell it.
                    self._send(APPEND_RESP, m.src)
            elif kind is PRE_VOTE:
                self._send(PRE_VOTE_RESP, m.src, reject=True)  # tells the pre-candidate about the newer term
            return
        if kind is VOTE or kind is PRE_VOTE:
            self._handle_vote_request(m)
            return
        role = self._role
        if role is LEADER:
            if kind is APPEND_RESP:
                self._handle_append_resp(m)
            elif kind is HEARTBEAT_RESP:
                self._handle_heartbeat_resp(m)
        elif role is FOLLOWER:
            self._step_follower(m)
        elif kind in _FROM_LEADER:
            self._become_follower(m.term, m.src)  # someone else won this term
            self._step_follower(m)
        else:
            self._handle_vote_response(m)

    def _send(self, kind: MessageType, to: str, **fields: Any) -> None:
        self._msgs.append(Message(type=kind, src=self._id, dst=to, term=self._term, **fields))

    def _step_follower(self, m: Message) -> None:
        kind = m.type
        if kind in _FROM_LEADER:
            self._election_elapsed = 0
            self._leader = m.src
            if kind is APPEND:
                self._handle_append(m)
            elif kind is HEARTBEAT:
                self._handle_heartbeat(m)
            else:
                self._handle_snapshot(m)
        elif kind is TIMEOUT_NOW:
            self._hup(transfer=True)

    def _handle_append(self, m: Message) -> None:
        log = self._log
        if m.index < log.committed:
            self._send(APPEND_RESP, m.src, index=log.committed)  # stale: all up to commit is the leader's anyway
            return
        last_new = log.maybe_append(m.index, m.log_term, m.commit, m.entries)
        if last_new is not None:
            self._send(APPEND_RESP, m.src, index=last_new)
            return
        # Point the leader past our whole conflicting run: the last entry whose term is not above its prev term.
        hint = log.find_conflict_by_term(min(m.index, log.last_index()), m.log_term)
        self._send(APPEND_RESP, m.src, index=m.index, reject=True, reject_hint=hint, log_term=log.term(hint) or 0)

    def _handle_heartbeat(self, m: Message) -> None:
        log = self._log
        if m.commit > log.committed:
            log.commit_to(min(m.commit, log.last_index()))
        self._send(HEARTBEAT_RESP, m.src, context=m.context)

    def _handle_snapshot(self, m: Message) -> None:
        snap = m.snapshot
        if snap is None:
            return
        log = self._log
        if snap.index <= log.committed:
            self._send(APPEND_RESP, m.src, index=log.committed)
            return
        if log.match_term(snap.index, snap.term):
            log.commit_to(snap.index)  # we hold those entries already: just learn they are committed
        else:
            log.restore(snap)
            self._set_voters(snap.conf.voters)
        self._send(APPEND_RESP, m.src, index=snap.index)

    # --- leader-only calls ----------------------------------------------------------------------------------

    def _check_leader(self) -> None:
        if self._role is not LEADER:
            raise NotLeaderError(self._leader)

    def propose(self, data: bytes) -> int:
        """Append `data` to the log; returns the index it will have if committed. Leader only."""
        self._check_leader()
        if self._transferee is not None:
            raise ProposalDroppedError(f"raft: leadership is being transferred to {self._transferee}")
        return self._append_local(EntryType.NORMAL, data)

    def propose_conf_change(self, cc: ConfChange) -> int:
        """Propose one membership change; it takes effect when the application applies it (apply_conf_change)."""
        self._check_leader()
        if self._transferee is not None:
            raise ProposalDroppedError(f"raft: leadership is being transferred to {self._transferee}")
        if self._pending_conf_index > self._log.applied:
            raise ProposalDroppedError("raft: a configuration change is still pending; retry once it is applied")
        if cc.kind is ConfChangeKind.REMOVE_NODE and self._voters == {cc.node_id}:
            raise ValueError("raft: cannot remove the last voter")
        index = self._append_local(EntryType.CONF_CHANGE, cc.encode())
        self._pending_conf_index = index
        return index

    def transfer_leadership(self, to: str) -> None:
        """Hand leadership to `to` once it has our whole log; proposals are refused until then (or a timeout)."""
        self._check_leader()
        if to == self._id:
            self._transferee = None
            return
        pr = self._progress.get(to)
        if pr is None:
            raise ValueError(f"raft: cannot transfer leadership to {to!r}, not a voter")
        if self._transferee == to:
            return
        self._transferee = to
        self._election_elapsed = 0  # the transfer gets a whole election timeout
        if pr.match == self._log.last_index():
            self._send_timeout_now(to)
        else:
            self._send_appends(to, pr, allow_empty=True)

    def best_transferee(self) -> str | None:
        """The voter a leader should hand over to: the most caught-up follower, one heard from lately before
        one that is not (it may be down); ties by id. None when not the leader or the only voter."""
        if self._role is not LEADER:
            return None
        ranked = sorted((not pr.recent_active, -pr.match, peer) for peer, pr in self._progress.items()
                        if peer != self._id)
        return ranked[0][2] if ranked else None

    def read_index(self, context: bytes) -> None:
        """Ask for a linearizable read; a ReadState with `context` comes out of a later Ready. Leader only.

        `context` must be non-empty and unique among pending requests. Requests die with the leadership:
        the application times them out and retries.
        """
        self._check_leader()
        if not context:
            raise ValueError("raft: a read index needs a non-empty context")
        log = self._log
        if self._voters == {self._id}:
            self._read_states.append(ReadState(index=log.committed, context=context))
        elif log.term(log.committed) != self._term:
            # Until an entry of our term commits we may not know the latest commit index (paper §8).
            self._pending_reads.append(context)
        elif self._reads.add(context, log.committed, self._id):
            self._bcast_heartbeat = True  # one heartbeat round at ready() serves every read asked till then

    # --- application callbacks ------------------------------------------------------------------------------

    def apply_conf_change(self, cc: ConfChange) -> ConfState:
        """The application applies a committed CONF_CHANGE entry: the change takes effect now."""
        voters = set(self._voters)
        _apply_to(voters, cc)
        self._set_voters(voters)
        if self._role is LEADER:
            self._leader_conf_changed()
        return ConfState(voters=tuple(sorted(voters)))

    def campaign(self) -> None:
        """Start an election now (with a pre-vote when enabled), as if the election timer fired."""
        self._hup(transfer=False)

    def forget_leader(self) -> None:
        """The runtime saw the leader's process go (its connections closed): stop trusting it now instead of
        at the end of the lease, as etcd's ForgetLeader. A follower only; it does not campaign by itself.

        Safe against a false alarm: with the lease dropped this node grants (pre-)votes, but the other
        followers still in lease refuse them, and the leader's next heartbeat makes it a follower again.
        """
        if self._role is LEADER or self._leader is None:
            return
        self._leader = None
        self._election_elapsed = self._cfg.election_ticks  # out of lease: leader stickiness no longer applies

    def compact(self, index: int, data: bytes, *, keep: int = DEFAULT_COMPACT_KEEP) -> None:
        """`data` is the application's state at applied index `index`: snapshot it (with the current configuration)
        and drop all but `keep` entries before it. Call after advance(), with index <= applied_index."""
        if index > self._log.applied:
            raise ValueError(f"raft: cannot snapshot at {index}, beyond the applied index {self._log.applied}")
        storage = self._storage
        if index <= storage.snapshot().index:
            return
        storage.create_snapshot(index, ConfState(voters=tuple(sorted(self._voters))), data)
        upto = index - keep
        if upto >= storage.first_index():
            storage.compact(upto)

    # --- output ---------------------------------------------------------------------------------------------

    def has_ready(self) -> bool:
        log = self._log
        hard, soft = self._prev_hard, self._prev_soft
        return bool(
            self._msgs or self._read_states or self._bcast_entries or self._bcast_commit or self._bcast_heartbeat
            or log.has_unstable() or log.pending_snapshot is not None or log.has_next_committed()
            or self._term != hard.term or self._vote != hard.vote or log.committed != hard.commit
            or self._leader != soft.leader_id or self._role is not soft.role
        )

    def ready(self) -> Ready:
        """What to persist, send and apply now. Feed no input until advance(ready)."""
        self._flush_broadcast()
        log = self._log
        soft_state = hard_state = None
        if self._leader != self._prev_soft.leader_id or self._role is not self._prev_soft.role:
            soft_state = self._prev_soft = SoftState(leader_id=self._leader, role=self._role)
        hard = self._prev_hard
        if self._term != hard.term or self._vote != hard.vote or log.committed != hard.commit:
            hard_state = self._prev_hard = HardState(term=self._term, vote=self._vote, commit=log.committed)
        committed = log.next_committed()
        if committed:
            log.applying = committed[-1].index
        ready = Ready(soft_state=soft_state, hard_state=hard_state, entries=log.unstable_entries(),
                      snapshot=log.pending_snapshot, committed_entries=tuple(committed),
                      messages=tuple(self._msgs), read_states=tuple(self._read_states))
        self._msgs = []
        self._read_states = []
        return ready

    def advance(self, ready: Ready) -> None:
        """`ready` was persisted, its messages sent and its committed entries applied."""
        log = self._log
        if ready.snapshot is not None:
            log.stable_snapshot_to(ready.snapshot.index)
        if ready.entries:
            last = ready.entries[-1]
            log.stable_to(last.index, last.term)
        if ready.committed_entries:
            log.applied_to(ready.committed_entries[-1].index)


def _apply_to(voters: set[str], cc: ConfChange) -> None:
    if cc.kind is ConfChangeKind.ADD_NODE:
        voters.add(cc.node_id)
    else:
        voters.discard(cc.node_id)
