"""A server agent as one sans-IO object: Raft, the FSM over the state store, RPC, and the leader's loops.

The runtime (SimPy or asyncio) drives it through the Agent protocol of `orchestrator.runtime.ports`.
Writes arriving at a follower are forwarded to the leader; the leader proposes one command per write and
answers once it is applied. Blocking queries park here until the state they watch moves.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Any

from orchestrator.fsm import FSM, ApplyResult
from orchestrator.raft import (
    ConfChange,
    ConfChangeKind,
    Entry,
    EntryType,
    Message,
    NotLeaderError,
    ProposalDroppedError,
    RaftConfig,
    RaftNode,
    Ready,
    Role,
    Storage,
    persist,
)
from orchestrator.rpc import RpcRequest, RpcResponse, methods
from orchestrator.runtime.ports import AgentReady
from orchestrator.scheduler.ports import Rng
from orchestrator.state import StateStore

from . import endpoints
from .config import ServerConfig
from .leader import LeaderLoops
from .messages import PeerLost, PrepareShutdown, ServerJoin, ServerLeft, ShutdownReady
from .watches import ParkedQuery, Watches

NO_LEADER = "No cluster leader"
LEADERSHIP_LOST = "leadership lost while committing log"


@dataclass(slots=True)
class PendingWrite:
    src: str
    id: int
    term: int
    op: endpoints.WriteOp


@dataclass(slots=True)
class ForwardedRequest:
    src: str
    id: int
    deadline: float
    target: str = ""  # the leader it was forwarded to


class Server:
    """One Nomad server: replicates commands through Raft and, while leader, schedules and supervises."""

    def __init__(self, config: ServerConfig, storage: Storage, rng: Rng, now: float) -> None:
        self.config = config
        self.id = config.id
        self.rng = rng
        self.storage = storage
        self.store = StateStore()
        self.fsm = FSM(self.store)
        snapshot = storage.snapshot()
        if snapshot.index and snapshot.data:
            self.fsm.restore(snapshot.data)
        self._snapshot_index = snapshot.index
        # Each server snapshots at its own point (threshold x 1-1.5, interval x 1-2): all at the same index would
        # stall together.
        jitter = rng.getrandbits(16) / 65536
        self._snapshot_every = int(config.snapshot_threshold * (1 + jitter / 2))
        self._snapshot_gap = config.snapshot_interval * (1 + jitter)
        self._snapshot_at = now  # when the last snapshot was taken (or the server started)
        self.raft = RaftNode(RaftConfig(id=config.id, election_ticks=config.election_ticks,
                                        heartbeat_ticks=config.heartbeat_ticks, applied=snapshot.index),
                             storage, rng)
        self.known_servers: set[str] = {self.id, *self.raft.voters}
        self.departed: set[str] = set()  # servers that left: the leader takes them out of the configuration
        self.leader: LeaderLoops | None = None
        self._barrier = 0  # index of the new leader's first entry: loops start once it is applied
        self._outbox: list[tuple[str, Any]] = []
        self._pending: dict[int, PendingWrite] = {}
        self._held: list[tuple[str, RpcRequest]] = []  # writes that arrived while leadership was being set up
        # Linearizable reads: waiting for their read index (by context), then for the apply to reach it.
        self._reads: dict[bytes, tuple[str, RpcRequest]] = {}
        self._read_ready: list[tuple[int, str, RpcRequest]] = []
        self._read_seq = rng.getrandbits(48)
        self._forwarded: dict[int, ForwardedRequest] = {}
        self._forward_deadlines: list[tuple[float, int]] = []
        self._forward_seq = rng.getrandbits(48)  # distinct per incarnation: see CallTracker
        # A graceful stop in progress on the leader: (who asked, deadline, the server leadership goes to).
        self._stopping: tuple[str, float, str] | None = None
        self.watches = Watches()
        self._node_alloc_index: dict[str, int] = {}
        self._rebuild_node_alloc_index()
        self._next_raft_tick = now + config.tick_interval
        self.now = now
        self.applied_commands = 0
        # Watches applies and elections (the simulator's invariant checker); a plain object, no I/O.
        self.observer: Any = None
        # Called with (index, ApplyResult) after each applied command: the agent's event
        # stream and metrics. Plain callables; they must not block or raise.
        self.apply_listeners: list[Any] = []
        self._maybe_bootstrap()

    # -- Agent protocol ---------------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        self.now = now
        self._catch_up_ticks(now)
        for query in self.watches.expired(now):
            self._answer_parked(query)
        if self.raft.leader_id is None and len(self.watches):
            # Cut off from any leader (a partition): what is parked here may never wake, so send the
            # clients to another server now rather than after their query's full wait.
            for query in self.watches.clear():
                self._reply(query.src, query.id, error=NO_LEADER)
        heap = self._forward_deadlines
        while heap and heap[0][0] <= now:
            self._forwarded.pop(heapq.heappop(heap)[1], None)
        if self._stopping is not None and now >= self._stopping[1]:
            self._ready_to_stop("")  # the transfer did not finish in time: stop anyway
        if self.leader is not None:
            self.leader.tick(now)

    def receive(self, now: float, src: str, message: Any) -> None:
        self.now = now
        self._catch_up_ticks(now)
        if isinstance(message, Message):
            self.raft.step(message)
        elif isinstance(message, RpcRequest):
            self._handle_request(now, src, message)
        elif isinstance(message, RpcResponse):
            self._relay(message)
        elif isinstance(message, ServerJoin):
            self._learn_servers(message.servers)
        elif isinstance(message, PeerLost):
            self._peer_lost(message.peer)
        elif isinstance(message, ServerLeft):
            departed = set(message.servers) - {self.id}
            self.departed |= departed
            self.known_servers -= departed
        elif isinstance(message, PrepareShutdown):
            self._prepare_shutdown(now, src, message.timeout)

    def ready(self) -> AgentReady | None:
        raft_ready = self.raft.ready() if self.raft.has_ready() else None
        if raft_ready is None and not self._outbox:
            return None
        messages: list[tuple[str, Any]] = []
        if raft_ready is not None:
            messages.extend((m.dst, m) for m in raft_ready.messages)
        messages.extend(self._outbox)
        self._outbox = []
        return AgentReady(messages=messages, persist=raft_ready)

    def persist(self, ready: AgentReady) -> None:
        if ready.persist is not None:
            persist(self.storage, ready.persist)

    def advance(self, now: float, ready: AgentReady) -> None:
        self.now = now
        rd: Ready | None = ready.persist
        if rd is not None:
            if rd.snapshot is not None and rd.snapshot.index:
                self._install_snapshot(rd)
            if rd.soft_state is not None:
                self._leadership_changed(now, rd.soft_state.role)
                self._abandon_forwards(rd.soft_state.leader_id)
            for entry in rd.committed_entries:
                self._apply(now, entry)
            self.raft.advance(rd)
            self._campaign_if_alone()  # after advance: Raft takes no input between ready() and advance()
            for state in rd.read_states:
                waiting = self._reads.pop(state.context, None)
                if waiting is not None:
                    self._read_ready.append((state.index, *waiting))
            self._serve_reads()
            self._maybe_snapshot(now)
        if self.leader is None and self._barrier and self.raft.role is Role.LEADER \
                and self.raft.applied_index >= self._barrier:
            self._establish_leadership(now)
        if self.leader is not None:
            self.leader.run(now)

    def next_deadline(self) -> float | None:
        # Raft needs its ticks only when one can fire something: sleep until then (ticks are applied late
        # but in order, before any message, so Raft sees exactly what ticking on schedule would show).
        deadline = self._next_raft_tick + (self.raft.ticks_until_due() - 1) * self.config.tick_interval
        for other in (self.watches.next_deadline(),
                      self._forward_deadlines[0][0] if self._forward_deadlines else None,
                      self.leader.next_deadline() if self.leader is not None else None,
                      self._stopping[1] if self._stopping is not None else None):
            if other is not None and other < deadline:
                deadline = other
        return deadline

    def _catch_up_ticks(self, now: float) -> None:
        """Apply every Raft tick due by `now`. After a long pause, at most two election timeouts' worth:
        a paused server must not replay minutes of ticks when it resumes."""
        if now < self._next_raft_tick:
            return
        interval = self.config.tick_interval
        behind = int((now - self._next_raft_tick) / interval) + 1
        for _ in range(min(behind, 2 * self.config.election_ticks + 1)):
            self.raft.tick()
        self._next_raft_tick += behind * interval

    # -- views for endpoints, the API and invariant checks ----------------------------------------------

    @property
    def is_leader(self) -> bool:
        return self.leader is not None

    def leader_id(self) -> str | None:
        return self.raft.leader_id

    def server_ids(self) -> list[str]:
        return sorted(self.raft.voters or self.known_servers)

    def unanswered(self) -> list[tuple[str, int]]:
        """(caller, request id) of every request this server holds unanswered: what a crash would cut off."""
        out = [(q.src, q.id) for q in self.watches.parked()]
        out.extend((p.src, p.id) for p in self._pending.values())
        out.extend((f.src, f.id) for f in self._forwarded.values())
        out.extend((src, request.id) for src, request in self._held)
        out.extend((src, request.id) for src, request in self._reads.values())
        out.extend((src, request.id) for _, src, request in self._read_ready)
        return out

    def node_alloc_index(self, node_id: str) -> int:
        return self._node_alloc_index.get(node_id, 0)

    def propose(self, data: bytes) -> int:
        """Append a command to the log (leader only); its index, for matching the apply."""
        return self.raft.propose(data)

    # -- Raft plumbing ----------------------------------------------------------------------------------

    def _maybe_bootstrap(self) -> None:
        if not (self.raft.voters or self.raft.last_index or self.storage.snapshot().index) \
                and len(self.known_servers) >= self.config.bootstrap_expect:
            self.raft.bootstrap(sorted(self.known_servers))
        self._campaign_if_alone()

    def _campaign_if_alone(self) -> None:
        if self.raft.voters == {self.id} and self.raft.role is Role.FOLLOWER and self.raft.leader_id is None:
            # The only voter (a -dev agent, a one-server cluster): nobody to wait for, lead at once.
            self.raft.campaign()

    def _learn_servers(self, servers: tuple[str, ...]) -> None:
        before = len(self.known_servers)
        self.departed -= set(servers)  # back (a restarted server rejoins)
        self.known_servers.update(servers)
        if len(self.known_servers) != before:
            self._maybe_bootstrap()
        if self.leader is not None:
            self.leader.reconcile_voters()

    def _peer_lost(self, peer: str) -> None:
        """The leader's process is gone: elect a successor now rather than after the election timeout.

        Every survivor sees the connections close at about the same moment and campaigns; pre-vote (with its
        tie-break between equally up-to-date candidates) still elects one leader in one round. A false
        alarm costs nothing: followers still hearing the leader refuse the pre-vote.
        """
        if peer != self.raft.leader_id or self.raft.role is not Role.FOLLOWER or peer not in self.raft.voters:
            return
        self.raft.forget_leader()
        self.raft.campaign()

    def _prepare_shutdown(self, now: float, src: str, timeout: float) -> None:
        """A graceful stop: a leader hands over to the best follower first (see PrepareShutdown)."""
        target = self.raft.best_transferee() if self.raft.role is Role.LEADER else None
        if target is None:
            self._outbox.append((src, ShutdownReady()))  # not leading, or alone: nothing to hand over
            return
        self.raft.transfer_leadership(target)  # proposals are refused from now on: callers retry elsewhere
        self._stopping = (src, now + timeout, target)

    def _ready_to_stop(self, transferred_to: str) -> None:
        assert self._stopping is not None
        self._outbox.append((self._stopping[0], ShutdownReady(transferred_to=transferred_to)))
        self._stopping = None

    def change_voters(self, server_id: str, kind: ConfChangeKind) -> bool:
        """Propose one membership change; False while another is still pending (Raft allows one at a time)."""
        try:
            self.raft.propose_conf_change(ConfChange(kind=kind, node_id=server_id))
        except (ProposalDroppedError, NotLeaderError):
            return False
        return True

    def _install_snapshot(self, rd: Ready) -> None:
        assert rd.snapshot is not None
        self.fsm.restore(rd.snapshot.data)
        self._snapshot_index = rd.snapshot.index
        self._rebuild_node_alloc_index()
        index = self.store.latest_index()
        for node_id in list(self._node_alloc_index):
            for query in self.watches.wake(("allocs", node_id), index):
                self._answer_parked(query)

    def _maybe_snapshot(self, now: float) -> None:
        applied = self.raft.applied_index
        if applied - self._snapshot_index >= self._snapshot_every and now - self._snapshot_at >= self._snapshot_gap:
            self.raft.compact(applied, self.fsm.snapshot())
            self._snapshot_index = applied
            self._snapshot_at = now

    def _apply(self, now: float, entry: Entry) -> None:
        if self.observer is not None:
            self.observer.on_apply(self.id, entry)
        if entry.type is EntryType.CONF_CHANGE:
            change = ConfChange.decode(entry.data)
            self.raft.apply_conf_change(change)
            if change.kind is ConfChangeKind.ADD_NODE:
                self.known_servers.add(change.node_id)
            else:
                self.known_servers.discard(change.node_id)  # removed: not added back by the next election
            return
        if not entry.data:
            return  # a new leader's empty entry
        result = self.fsm.apply(entry.index, entry.data)
        self.applied_commands += 1
        for listener in self.apply_listeners:
            listener(entry.index, result)
        pending = self._pending.pop(entry.index, None)
        if pending is not None:
            if pending.term != entry.term:
                self._reply(pending.src, pending.id, error=LEADERSHIP_LOST)
            else:
                self._complete_write(pending, result, entry.index)
        for node_id in result.alloc_nodes:
            self._node_alloc_index[node_id] = entry.index
            for query in self.watches.wake(("allocs", node_id), entry.index):
                self._answer_parked(query)
        if self.leader is not None:
            self.leader.on_apply(now, entry.index, result)

    def _serve_reads(self) -> None:
        """Answer the linearizable reads whose read index this server has applied."""
        if not self._read_ready:
            return
        applied = self.raft.applied_index
        waiting = []
        for index, src, request in self._read_ready:
            if index <= applied:
                reply = endpoints.CONSISTENT_READS[request.method](self, request.args)
                self._reply(src, request.id, result=reply.result, error=reply.error)
            else:
                waiting.append((index, src, request))
        self._read_ready = waiting

    def _complete_write(self, pending: PendingWrite, result: ApplyResult, index: int) -> None:
        if result.error:
            self._reply(pending.src, pending.id, error=result.error)
            return
        if pending.op.after_apply is not None and self.leader is not None:
            pending.op.after_apply(result)
        self._reply(pending.src, pending.id, result=pending.op.respond(result, index))

    def _leadership_changed(self, now: float, role: Role) -> None:
        if role is Role.LEADER:
            if self.observer is not None:
                self.observer.on_leader(self.id, self.raft.term, self.raft)
            if self._barrier == 0:
                self._barrier = self.raft.last_index
            return
        self._barrier = 0
        if self._stopping is not None:
            self._ready_to_stop(self._stopping[2])
        if self.leader is not None:
            self.leader.stop()
            self.leader = None
        for index in sorted(self._pending):
            pending = self._pending.pop(index)
            self._reply(pending.src, pending.id, error=LEADERSHIP_LOST)
        for src, request in self._held:
            self._handle_request(now, src, request)
        self._held.clear()
        # Reads waiting on the lost leadership: their read index will never come; let callers retry.
        for src, request in self._reads.values():
            self._reply(src, request.id, error=LEADERSHIP_LOST)
        self._reads.clear()

    def _establish_leadership(self, now: float) -> None:
        self.leader = LeaderLoops(self, now)
        held, self._held = self._held, []
        for src, request in held:
            self._handle_request(now, src, request)
        self.leader.reconcile_voters()

    def _rebuild_node_alloc_index(self) -> None:
        """After a restore: every node's index is the store's, so it never goes back below what a client
        saw from another server, even for allocations collected since (one spurious wake-up at most)."""
        latest = self.store.latest_index()
        index = dict.fromkeys((n.id for n in self.store.nodes()), latest)
        for alloc in self.store.allocs():
            if alloc.node_id:
                index[alloc.node_id] = latest
        self._node_alloc_index = index

    # -- RPC --------------------------------------------------------------------------------------------

    def _reply(self, dst: str, request_id: int, *, result: Any = None, error: str = "") -> None:
        self._outbox.append((dst, RpcResponse(id=request_id, result=result, error=error,
                                              index=self.store.latest_index(), leader=self.raft.leader_id or "")))

    def _handle_request(self, now: float, src: str, request: RpcRequest) -> None:
        method = request.method
        handler = endpoints.WRITE_HANDLERS.get(method)
        if handler is not None:
            self._handle_write(now, src, request, handler)
        elif method == methods.NODE_GET_CLIENT_ALLOCS:
            self._client_allocs(now, src, request)
        elif method == methods.ALLOC_GET_ALLOCS:
            reply = endpoints.get_allocs(self, request.args)
            self._reply(src, request.id, result=reply.result, error=reply.error)
        elif method in endpoints.CONSISTENT_READS:
            self._consistent_read(now, src, request)
        elif method == methods.STATUS_LEADER:
            self._reply(src, request.id, result=self.raft.leader_id or "")
        else:
            self._reply(src, request.id, error=f"rpc: can't find method {method}")

    def _handle_write(self, now: float, src: str, request: RpcRequest, handler: endpoints.Handler) -> None:
        if self.leader is not None:
            try:
                outcome = handler(self, request.args, now)
            except Exception as exc:
                self._reply(src, request.id, error=f"internal error: {type(exc).__name__}: {exc}")
                return
            if isinstance(outcome, endpoints.Reply):
                self._reply(src, request.id, result=outcome.result, error=outcome.error)
                return
            try:
                index = self.raft.propose(outcome.command)
            except (NotLeaderError, ProposalDroppedError):
                self._reply(src, request.id, error=NO_LEADER)
                return
            self._pending[index] = PendingWrite(src, request.id, self.raft.term, outcome)
            return
        if self.raft.role is Role.LEADER:
            self._held.append((src, request))  # leadership is being established: answer in a moment
            return
        self._forward(now, src, request)

    def _forward(self, now: float, src: str, request: RpcRequest) -> None:
        """Hand a request this server may not answer to the leader, and relay its answer back."""
        leader = self.raft.leader_id
        if leader is None or leader == self.id or src == leader:
            self._reply(src, request.id, error=NO_LEADER)
            return
        self._forward_seq += 1
        forward_id = self._forward_seq
        deadline = now + self.config.rpc_hold_timeout
        self._forwarded[forward_id] = ForwardedRequest(src, request.id, deadline, leader)
        heapq.heappush(self._forward_deadlines, (deadline, forward_id))
        self._outbox.append((leader, RpcRequest(id=forward_id, src=self.id, method=request.method,
                                                args=request.args)))

    def _consistent_read(self, now: float, src: str, request: RpcRequest) -> None:
        if request.args.get("AllowStale"):
            reply = endpoints.CONSISTENT_READS[request.method](self, request.args)
            self._reply(src, request.id, result=reply.result, error=reply.error)
            return
        if self.raft.role is Role.LEADER:
            self._read_seq += 1
            context = self._read_seq.to_bytes(8, "big")
            self._reads[context] = (src, request)
            self.raft.read_index(context)
            return
        self._forward(now, src, request)

    def _abandon_forwards(self, leader: str | None) -> None:
        """Requests forwarded to a server that is no longer the leader will likely never be answered (it may be
        dead): tell their callers now, so they retry against the new leader instead of timing out."""
        stale = [fid for fid, f in self._forwarded.items() if f.target != leader]
        for forward_id in stale:
            forwarded = self._forwarded.pop(forward_id)
            self._reply(forwarded.src, forwarded.id, error=LEADERSHIP_LOST)

    def _relay(self, response: RpcResponse) -> None:
        forwarded = self._forwarded.pop(response.id, None)
        if forwarded is None:
            return  # late, or the answer to nothing we asked
        self._outbox.append((forwarded.src, RpcResponse(id=forwarded.id, result=response.result,
                                                        error=response.error, index=response.index,
                                                        leader=response.leader)))

    def _client_allocs(self, now: float, src: str, request: RpcRequest) -> None:
        args = request.args
        node_id = str(args.get("NodeID", ""))
        min_index = int(args.get("MinQueryIndex") or 0)
        wait = min(float(args.get("MaxQueryTime") or 0.0), self.config.max_query_time)
        if self.raft.leader_id is None:
            self._reply(src, request.id, error=NO_LEADER)
            return
        if self.node_alloc_index(node_id) > min_index or wait <= 0:
            self._reply(src, request.id, result=endpoints.client_allocs(self, node_id))
            return
        self.watches.park(ParkedQuery(src=src, id=request.id, method=request.method, args=args,
                                      topic=("allocs", node_id), min_index=min_index, deadline=now + wait))

    def _answer_parked(self, query: ParkedQuery) -> None:
        node_id = str(query.args.get("NodeID", ""))
        self._reply(query.src, query.id, result=endpoints.client_allocs(self, node_id))
