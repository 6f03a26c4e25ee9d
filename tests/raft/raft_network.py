"""A scripted network of RaftNodes on MemoryStorage for tests, and a checker of Raft's safety properties."""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Iterable
from random import Random

import msgpack

from orchestrator.raft import (
    ConfChange,
    ConfState,
    Entry,
    EntryType,
    HardState,
    MemoryStorage,
    Message,
    MessageType,
    RaftConfig,
    RaftNode,
    ReadState,
    Ready,
    Role,
    Snapshot,
    persist,
)

T = MessageType


class StateMachine:
    """The application: the data of every applied non-empty NORMAL entry, in order."""

    def __init__(self, snapshot: Snapshot | None = None) -> None:
        self.data: list[bytes] = []
        self.index = 0
        if snapshot is not None and snapshot.index:
            self.restore(snapshot)

    def restore(self, snap: Snapshot) -> None:
        self.data = list(msgpack.unpackb(snap.data)) if snap.data else []
        self.index = snap.index

    def encode(self) -> bytes:
        return msgpack.packb(self.data)


def fmt(m: Message) -> str:
    """A compact, stable rendering of a message for transcripts."""
    head = f"{m.src}->{m.dst} {m.type.value} t{m.term}"
    kind = m.type
    if kind in (T.VOTE, T.PRE_VOTE):
        return f"{head} last={m.index}/{m.log_term}" + (" transfer" if m.context else "")
    if kind is T.APPEND:
        return f"{head} prev={m.index}/{m.log_term} n={len(m.entries)} commit={m.commit}"
    if kind is T.APPEND_RESP:
        return f"{head} index={m.index}" + (f" reject hint={m.reject_hint}/{m.log_term}" if m.reject else "")
    if kind is T.HEARTBEAT:
        return f"{head} commit={m.commit}" + (f" ctx={m.context.decode()}" if m.context else "")
    if kind is T.SNAPSHOT:
        assert m.snapshot is not None
        return f"{head} snap={m.snapshot.index}/{m.snapshot.term}"
    return head + (" reject" if m.reject else "") + (f" ctx={m.context.decode()}" if m.context else "")


class Network:
    """Nodes, their storages and state machines, and the messages between them.

    Each `run` tick: every live node ticks, then every message due by now is delivered (latency 0 delivers
    the whole cascade within the tick). After any input a node's Ready loop runs at once: persist, send,
    apply, advance. `checks` are called with (network, node id, ready) before each Ready is persisted.
    """

    def __init__(self, ids: Iterable[str], *, seed: int = 0, bootstrap: bool = True, latency: int = 0,
                 logs: dict[str, list[int]] | None = None, **config: object) -> None:
        self.ids = list(ids)
        self.seed = seed
        self.latency = latency
        self.config = config
        self.rng = Random(seed)
        self.now = 0
        self.storages = {i: MemoryStorage() for i in self.ids}
        if logs is not None:  # hand-made logs instead of a bootstrap; every node has seen the latest term
            bootstrap = False
            term = max((t for terms in logs.values() for t in terms), default=0)
            for i in self.ids:
                self.storages[i] = storage_with_log(self.ids, logs.get(i, []), term=term)
        self.machines = {i: StateMachine() for i in self.ids}
        self.nodes: dict[str, RaftNode | None] = {}
        self.read_states: dict[str, list[ReadState]] = {i: [] for i in self.ids}
        self.restarts = dict.fromkeys(self.ids, 0)
        self.cut: set[tuple[str, str]] = set()
        self.drop_rate = 0.0
        self.dup_rate = 0.0
        self.jitter = 0  # extra random delay (ticks) per message: reorders them
        self.queue: list[tuple[int, int, Message]] = []
        self._seq = 0
        self.trace: list[str] | None = None  # when a list, every sent message is rendered into it
        self.filter: Callable[[Message], bool] | None = None  # False drops the message
        self.checks: list[Callable[[Network, str, Ready], None]] = []
        self.sent: Counter[MessageType] = Counter()  # messages sent, by type
        for i in self.ids:
            self.nodes[i] = self._make(i)
            if bootstrap:
                self.node(i).bootstrap(self.ids)
        for i in self.ids:
            self.process(i)

    # --- nodes ------------------------------------------------------------------------------------------------

    def _make(self, node_id: str) -> RaftNode:
        k = self.ids.index(node_id)
        rng = Random(self.seed * 7919 + k * 104729 + self.restarts[node_id])
        applied = self.machines[node_id].index
        return RaftNode(RaftConfig(id=node_id, applied=applied, **self.config), self.storages[node_id], rng)

    def node(self, node_id: str) -> RaftNode:
        node = self.nodes[node_id]
        assert node is not None, f"{node_id} is down"
        return node

    def live(self) -> list[str]:
        return [i for i in self.ids if self.nodes[i] is not None]

    def add(self, node_id: str) -> RaftNode:
        """A new server with empty storage (not bootstrapped): it learns the configuration from the leader."""
        self.ids.append(node_id)
        self.storages[node_id] = MemoryStorage()
        self.machines[node_id] = StateMachine()
        self.read_states[node_id] = []
        self.restarts[node_id] = 0
        node = self.nodes[node_id] = self._make(node_id)
        return node

    def crash(self, node_id: str) -> None:
        """Lose everything not persisted: the node object and its state machine; storage survives."""
        self.nodes[node_id] = None
        self.machines[node_id] = StateMachine()

    def restart(self, node_id: str) -> RaftNode:
        self.restarts[node_id] += 1
        self.machines[node_id] = StateMachine(self.storages[node_id].snapshot())
        node = self.nodes[node_id] = self._make(node_id)
        self.process(node_id)
        return node

    def leader(self) -> str | None:
        """The live leader with the highest term, if any."""
        leaders = [(n.term, i) for i in self.live() if (n := self.node(i)).role is Role.LEADER]
        return max(leaders)[1] if leaders else None

    def roles(self) -> str:
        parts = []
        for i in self.ids:
            n = self.nodes[i]
            parts.append(f"{i}:down" if n is None else f"{i}:{n.role.value}/t{n.term}/c{n.commit_index}")
        return " ".join(parts)

    # --- the Ready loop -------------------------------------------------------------------------------------

    def process(self, node_id: str) -> None:
        node = self.nodes[node_id]
        if node is None:
            return
        storage, machine = self.storages[node_id], self.machines[node_id]
        while node.has_ready():
            rd = node.ready()
            for check in self.checks:
                check(self, node_id, rd)
            persist(storage, rd)
            for m in rd.messages:
                self.send(m)
            if rd.snapshot is not None:
                machine.restore(rd.snapshot)
            for e in rd.committed_entries:
                self.apply(node, machine, e)
            self.read_states[node_id].extend(rd.read_states)
            node.advance(rd)

    def apply(self, node: RaftNode, machine: StateMachine, e: Entry) -> None:
        assert e.index == machine.index + 1, f"{node.id} applies {e.index} after {machine.index}"
        machine.index = e.index
        if e.type is EntryType.CONF_CHANGE:
            node.apply_conf_change(ConfChange.decode(e.data))
        elif e.data:
            machine.data.append(e.data)

    # --- messages -------------------------------------------------------------------------------------------

    def send(self, m: Message) -> None:
        self.sent[m.type] += 1
        if self.trace is not None:
            self.trace.append(fmt(m))
        if self.filter is not None and not self.filter(m):
            return
        copies = 1
        if self.drop_rate or self.dup_rate:
            if self.rng.random() < self.drop_rate:
                return
            if self.rng.random() < self.dup_rate:
                copies = 2
        for _ in range(copies):
            delay = self.latency + (self.rng.randint(0, self.jitter) if self.jitter else 0)
            self._seq += 1
            heapq.heappush(self.queue, (self.now + delay, self._seq, m))

    def deliver(self, until: int | None = None) -> int:
        """Deliver every message due by `until` (default now), including those sent meanwhile; how many."""
        until = self.now if until is None else until
        n = 0
        while self.queue and self.queue[0][0] <= until:
            _, _, m = heapq.heappop(self.queue)
            node = self.nodes.get(m.dst)
            if node is None or (m.src, m.dst) in self.cut:
                continue
            node.step(m)
            self.process(m.dst)
            n += 1
        return n

    def stabilize(self, limit: int = 100_000) -> None:
        """Deliver until no message is left, whatever its due time (time does not pass)."""
        for _ in range(limit):
            if not self.queue:
                return
            self.deliver(until=self.queue[0][0])
        raise AssertionError("network did not stabilize")

    def tick(self, node_id: str, n: int = 1) -> None:
        for _ in range(n):
            self.node(node_id).tick()
            self.process(node_id)

    def run(self, ticks: int = 1, until: Callable[[], bool] | None = None) -> int:
        """Let time pass; stop early once `until()` holds. Returns the ticks run."""
        for k in range(ticks):
            self.now += 1
            for i in self.live():
                self.node(i).tick()
                self.process(i)
            self.deliver()
            if until is not None and until():
                return k + 1
        return ticks

    def elect(self, node_id: str) -> None:
        """Make `node_id` leader now (its campaign, delivered at once)."""
        self.node(node_id).campaign()
        self.process(node_id)
        self.stabilize()
        assert self.node(node_id).role is Role.LEADER, self.roles()

    def propose(self, node_id: str, data: bytes) -> int:
        index = self.node(node_id).propose(data)
        self.process(node_id)
        return index

    # --- faults ---------------------------------------------------------------------------------------------

    def partition(self, *groups: Iterable[str]) -> None:
        """Only nodes in the same group talk; a node in no group is cut off from everyone."""
        sets = [set(g) for g in groups]
        self.cut = {(a, b) for a in self.ids for b in self.ids
                    if a != b and not any(a in s and b in s for s in sets)}

    def isolate(self, node_id: str) -> None:
        self.cut |= {(node_id, b) for b in self.ids if b != node_id} | {(b, node_id) for b in self.ids if b != node_id}

    def heal(self) -> None:
        self.cut = set()


def storage_with_log(voters: Iterable[str], terms: list[int], commit: int = 0, term: int = 0) -> MemoryStorage:
    """Storage whose configuration is `voters` (a snapshot at index 0) and whose log has entries of `terms`."""
    storage = MemoryStorage()
    storage.apply_snapshot(Snapshot(index=0, term=0, conf=ConfState(voters=tuple(sorted(voters)))))
    storage.append([Entry(term=t, index=k, data=f"{k}@{t}".encode()) for k, t in enumerate(terms, 1)])
    storage.set_hard_state(HardState(term=max([term, *terms]), commit=commit))
    return storage


def entry_terms(net: Network, node_id: str) -> list[tuple[int, int]]:
    """(index, term) of every entry the node's log holds (stable and unstable)."""
    node = net.node(node_id)
    return [(i, node.entry_term(i) or 0) for i in range(node.first_index, node.last_index + 1)]


class SafetyViolation(AssertionError):
    pass


class SafetyChecker:
    """Add to `Network.checks`; raises SafetyViolation the moment a property fails.

    - Election safety: at most one leader per term.
    - Leader append-only: a leader never overwrites or deletes entries of its log.
    - Log matching: two entries with the same index and term hold the same data and follow the same term
      (so, by induction, the logs are identical up to there).
    - Leader completeness: a new leader holds every entry committed so far.
    - State machine safety: no two nodes apply different entries at one index.
    - Durable state: term, commit and (per term) vote never go back or change.
    """

    def __init__(self) -> None:
        self.leaders: dict[int, str] = {}
        self.entries: dict[tuple[int, int], tuple[EntryType, bytes, int | None]] = {}
        self.committed: dict[int, int] = {}  # index -> term, for every index any node reported committed
        self.applied: dict[int, tuple[int, EntryType, bytes]] = {}
        self.hard: dict[str, tuple[int, int]] = {}  # node -> (term, commit) last persisted
        self.votes: dict[tuple[str, int], str] = {}
        self.elections = 0

    def fail(self, what: str, net: Network) -> None:
        raise SafetyViolation(f"{what} (seed {net.seed}, t={net.now}; {net.roles()})")

    def __call__(self, net: Network, node_id: str, rd: Ready) -> None:
        node = net.node(node_id)
        if node.role is Role.LEADER and self.leaders.setdefault(node.term, node_id) != node_id:
            self.fail(f"election safety: {self.leaders[node.term]} and {node_id} both lead term {node.term}", net)
        if rd.hard_state is not None:
            hs = rd.hard_state
            term, commit = self.hard.get(node_id, (0, 0))
            if hs.term < term or hs.commit < commit:
                self.fail(f"{node_id}: hard state went back from term {term} commit {commit} to {hs}", net)
            if hs.vote is not None and self.votes.setdefault((node_id, hs.term), hs.vote) != hs.vote:
                self.fail(f"{node_id} voted twice in term {hs.term}", net)
            for i in range(max(commit, node.first_index - 1) + 1, hs.commit + 1):
                term_i = node.entry_term(i)
                if term_i is not None and self.committed.setdefault(i, term_i) != term_i:
                    self.fail(f"{node_id} commits {i}@{term_i}, {self.committed[i]} was committed there", net)
            self.hard[node_id] = (hs.term, hs.commit)
        if rd.entries:
            storage = net.storages[node_id]
            first = rd.entries[0]
            if node.role is Role.LEADER and first.index <= storage.last_index():
                self.fail(f"leader {node_id} overwrites its entry {first.index}", net)
            prev_term = node.entry_term(first.index - 1)
            for e in rd.entries:
                record = (e.type, e.data, prev_term)
                if self.entries.setdefault((e.index, e.term), record) != record:
                    self.fail(f"log matching: {node_id} holds a different entry {e.index}@{e.term}", net)
                prev_term = e.term
        if rd.soft_state is not None and rd.soft_state.role is Role.LEADER:
            self.elections += 1
            self.check_completeness(net, node_id)
        for e in rd.committed_entries:
            record = (e.term, e.type, e.data)
            if self.applied.setdefault(e.index, record) != record:
                self.fail(f"state machine safety: {node_id} applies {e.index}@{e.term}, others {record}", net)

    def check_completeness(self, net: Network, node_id: str) -> None:
        node = net.node(node_id)
        for index, term in self.committed.items():
            if index >= node.first_index and node.entry_term(index) != term:
                self.fail(f"leader completeness: new leader {node_id} lacks committed {index}@{term}", net)
        if self.committed and node.last_index < max(self.committed):
            self.fail(f"leader completeness: new leader {node_id} ends before the commit index", net)


__all__ = ["Network", "SafetyChecker", "SafetyViolation", "StateMachine", "entry_terms", "fmt", "storage_with_log"]
