"""The leader's work: shipping entries and snapshots, counting commits, heartbeats, read index, handing over."""

from __future__ import annotations

from .election import LEADER, Election
from .messages import Message, MessageType
from .progress import Progress, ProgressState, quorum, quorum_index
from .records import CompactedError, Entry, EntryType

APPEND = MessageType.APPEND
HEARTBEAT = MessageType.HEARTBEAT
SNAPSHOT = MessageType.SNAPSHOT
TIMEOUT_NOW = MessageType.TIMEOUT_NOW
PROBE = ProgressState.PROBE
REPLICATE = ProgressState.REPLICATE
SNAPSHOT_STATE = ProgressState.SNAPSHOT


class Replication(Election):
    """Leader-side behaviour on top of the shared node state."""

    __slots__ = ()

    def _become_leader(self) -> None:
        self._reset(self._term)  # keeps term and our own vote
        self._role = LEADER
        self._leader = self._id
        log = self._log
        last = log.last_index()
        cap = self._cfg.max_inflight_msgs
        self._progress = {v: Progress(last + 1, cap) for v in sorted(self._voters)}
        me = self._progress.get(self._id)
        if me is not None:
            me.match = last
            me.recent_active = True
            me.become_replicate()
        # Conf changes in our log may not be committed yet: allow a new one only once all of them are applied.
        self._pending_conf_index = last
        # An entry of our own term: committing it commits everything before it (paper §5.4.2) and opens reads.
        self._append_local(EntryType.NORMAL, b"")

    def _append_local(self, kind: EntryType, data: bytes) -> int:
        log = self._log
        index = log.last_index() + 1
        log.append([Entry(term=self._term, index=index, type=kind, data=data)])
        me = self._progress.get(self._id)
        if me is not None:
            me.match = index
            me.next = index + 1
        self._bcast_entries = True  # sent at ready(), so proposals between two readies share one APPEND
        self._maybe_commit()
        return index

    def _maybe_commit(self) -> bool:
        """Advance the commit index to what a quorum holds, if that entry is of our term (paper §5.4.2)."""
        log = self._log
        index = quorum_index(pr.match for pr in self._progress.values())
        if index <= log.committed or log.term(index) != self._term:
            return False
        first_of_term = log.term(log.committed) != self._term
        log.commit_to(index)
        self._bcast_commit = True
        if first_of_term and self._pending_reads:
            for context in self._pending_reads:
                self._reads.add(context, index, self._id)
            self._pending_reads = []
            self._bcast_heartbeat = True
        return True

    # --- sending --------------------------------------------------------------------------------------------

    def _flush_broadcast(self) -> None:
        """Send what proposals, commits and reads queued since the last ready(): one message per follower."""
        if self._role is LEADER:
            if self._bcast_entries or self._bcast_commit:
                allow_empty = self._bcast_commit
                for peer, pr in self._progress.items():
                    if peer != self._id:
                        self._send_appends(peer, pr, allow_empty)
            if self._bcast_heartbeat:
                self._send_heartbeats()
        self._bcast_entries = self._bcast_commit = self._bcast_heartbeat = False

    def _send_appends(self, peer: str, pr: Progress, allow_empty: bool) -> None:
        """Send to one follower as much as its state allows (several batches when replicating)."""
        if not self._send_append(peer, pr, allow_empty):
            return
        last = self._log.last_index()
        while pr.state is REPLICATE and pr.next <= last and self._send_append(peer, pr, False):
            pass

    def _send_append(self, peer: str, pr: Progress, allow_empty: bool) -> bool:
        if pr.is_paused():
            return False
        log = self._log
        nxt = pr.next
        prev_term = log.term(nxt - 1)
        if prev_term is None:
            return self._send_snapshot(peer, pr)
        last = log.last_index()
        if nxt <= last:
            try:
                entries = log.entries(nxt, min(last + 1, nxt + self._cfg.max_entries_per_msg))
            except CompactedError:
                return self._send_snapshot(peer, pr)
        elif allow_empty:
            entries = []
        else:
            return False
        self._msgs.append(Message(type=APPEND, src=self._id, dst=peer, term=self._term, index=nxt - 1,
                                  log_term=prev_term, entries=tuple(entries), commit=log.committed))
        if entries:
            pr.sent_entries(entries[-1].index)
        elif pr.state is PROBE:
            pr.probe_sent = True
        return True

    def _send_snapshot(self, peer: str, pr: Progress) -> bool:
        if not pr.recent_active:
            return False  # not worth shipping the whole state to a node that may be down; its next answer will
        snap = self._storage.snapshot()
        if snap.index == 0:
            return False
        self._msgs.append(Message(type=SNAPSHOT, src=self._id, dst=peer, term=self._term, snapshot=snap))
        pr.become_snapshot(snap.index, self._now)
        return True

    def _send_heartbeats(self) -> None:
        context = self._reads.last_context()  # also retries pending reads whose heartbeats were lost
        committed = self._log.committed
        for peer, pr in self._progress.items():
            if peer != self._id:
                # Never more than the follower is known to hold: its log beyond match may not be ours.
                self._msgs.append(Message(type=HEARTBEAT, src=self._id, dst=peer, term=self._term,
                                          commit=min(pr.match, committed), context=context))

    def _send_timeout_now(self, peer: str) -> None:
        self._msgs.append(Message(type=TIMEOUT_NOW, src=self._id, dst=peer, term=self._term))

    # --- timers ---------------------------------------------------------------------------------------------

    def _tick_leader(self) -> None:
        self._heartbeat_elapsed += 1
        self._election_elapsed += 1
        cfg = self._cfg
        if self._election_elapsed >= cfg.election_ticks:
            self._election_elapsed = 0
            if cfg.check_quorum and not self._quorum_active():
                self._become_follower(self._term, None)  # partitioned away from a majority: stop leading
                return
            self._transferee = None  # a transfer not done within an election timeout is given up
        if self._heartbeat_elapsed >= cfg.heartbeat_ticks:
            self._heartbeat_elapsed = 0
            self._send_heartbeats()

    def _quorum_active(self) -> bool:
        active = 0
        for peer, pr in self._progress.items():
            if pr.recent_active or peer == self._id:
                active += 1
            pr.recent_active = peer == self._id
        return active >= quorum(len(self._voters))

    # --- answers from followers -----------------------------------------------------------------------------

    def _handle_append_resp(self, m: Message) -> None:
        pr = self._progress.get(m.src)
        if pr is None:
            return
        pr.recent_active = True
        log = self._log
        if m.reject:
            probe = m.reject_hint
            if m.log_term > 0:
                # Skip our whole run of entries newer than the follower's term at its hint.
                probe = log.find_conflict_by_term(m.reject_hint, m.log_term)
            if pr.maybe_decrease_to(m.index, probe):
                if pr.state is REPLICATE:
                    pr.become_probe()
                self._send_appends(m.src, pr, allow_empty=True)
            return
        was_paused = pr.is_paused()
        if not pr.maybe_update(m.index):
            return
        if pr.state is PROBE:
            pr.become_replicate()
        elif pr.state is SNAPSHOT_STATE:
            if pr.match >= pr.pending_snapshot:
                pr.become_probe()
                pr.become_replicate()
        else:
            pr.free_inflights_to(m.index)
        if not self._maybe_commit() and was_paused:
            # The probe was answered: tell the follower the commit index it missed while paused.
            self._send_appends(m.src, pr, allow_empty=True)
        self._send_appends(m.src, pr, allow_empty=False)  # the window has room again: fill it
        if m.src == self._transferee and pr.match == log.last_index():
            self._send_timeout_now(m.src)

    def _handle_heartbeat_resp(self, m: Message) -> None:
        pr = self._progress.get(m.src)
        if pr is None:
            return
        pr.recent_active = True
        pr.probe_sent = False
        if pr.state is REPLICATE:
            if pr.is_paused():
                pr.free_first_inflight()  # appends may have been lost: let one more through to find out
        elif pr.state is SNAPSHOT_STATE and self._now - pr.snapshot_sent_at >= self._cfg.election_ticks:
            pr.become_probe()  # the snapshot was probably lost: probe again (which may send it again)
        if pr.match < self._log.last_index():
            self._send_appends(m.src, pr, allow_empty=True)
        if m.context and m.src in self._voters:
            self._read_states.extend(self._reads.ack(m.context, m.src, quorum(len(self._voters))))

    # --- membership -----------------------------------------------------------------------------------------

    def _leader_conf_changed(self) -> None:
        progress = self._progress
        last = self._log.last_index()
        for peer in self._peers:
            if peer not in progress:
                # Counted as active so a slow first contact does not make check-quorum depose us.
                pr = progress[peer] = Progress(last + 1, self._cfg.max_inflight_msgs, recent_active=True)
                self._send_appends(peer, pr, allow_empty=True)  # probe: where does its log stand?
        for peer in [p for p in progress if p not in self._voters]:
            del progress[peer]
            if peer == self._transferee:
                self._transferee = None
        if self._id not in self._voters:
            self._step_down_removed()
            return
        self._maybe_commit()  # a smaller quorum may already hold more

    def _step_down_removed(self) -> None:
        """Our own removal is applied: tell everyone the commit index, hand over to the most caught-up voter."""
        self._bcast_commit = True
        self._flush_broadcast()
        last = self._log.last_index()
        best = max(((pr.match, peer) for peer, pr in self._progress.items() if peer != self._id), default=None)
        if best is not None and best[0] == last:
            self._send_timeout_now(best[1])
        self._become_follower(self._term, None)
