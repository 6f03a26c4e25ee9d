"""The wire format: every message kind round-trips; truncated, oversized and garbage frames raise WireError only."""

from __future__ import annotations

import random

import msgpack
import pytest

from orchestrator.raft import ConfState, Entry, EntryType, Message, MessageType, Snapshot
from orchestrator.rpc import RpcRequest, RpcResponse
from orchestrator.runtime.aio import wire
from orchestrator.runtime.aio.wire import HEADER, WireError, decode_frame, encode_frame
from orchestrator.server.messages import ServerJoin

S1, S2 = "10.0.0.1:4647", "10.0.0.2:4647"

MESSAGES = [
    Message(type=MessageType.HEARTBEAT, src=S1, dst=S2, term=3, commit=7),
    Message(type=MessageType.VOTE, src=S1, dst=S2, term=4, log_term=3, index=9, context=b"transfer"),
    Message(type=MessageType.APPEND_RESP, src=S2, dst=S1, term=4, index=5, reject=True, reject_hint=4),
    Message(type=MessageType.APPEND, src=S1, dst=S2, term=4, log_term=3, index=9, commit=9, entries=(
        Entry(term=4, index=10, data=b"\x00\x01command"),
        Entry(term=4, index=11, type=EntryType.CONF_CHANGE, data=b"conf"),
        Entry(term=4, index=12),
    )),
    Message(type=MessageType.SNAPSHOT, src=S1, dst=S2, term=5, snapshot=Snapshot(
        index=100, term=4, conf=ConfState(voters=(S1, S2)), data=bytes(range(256)) * 64)),
    RpcRequest(id=2**48 + 5, src="api-1", method="Job.Register",
               args={"Job": {"ID": "web", "Count": 3, "Meta": {"a": "b"}, "Ratio": 0.5, "Tags": ["x", "y"],
                             "Stop": False, "Payload": None}}),
    RpcRequest(id=1, src=S1, method="Status.Leader"),
    RpcResponse(id=7, result={"EvalID": "e1", "Index": 12}, index=12, leader=S1),
    RpcResponse(id=8, error="No cluster leader"),
    RpcResponse(id=9, result=[1, "two", None]),
    ServerJoin(servers=(S1, S2, "10.0.0.3:4647")),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_every_message_kind_round_trips(message):
    frame = decode_frame(encode_frame(S1, S2, message))
    assert frame.src == S1 and frame.dst == S2
    assert frame.message == message
    assert type(frame.message) is type(message)


def test_the_header_is_the_big_endian_payload_length():
    data = encode_frame(S1, S2, MESSAGES[0])
    assert int.from_bytes(data[:4], "big") == len(data) - 4
    assert isinstance(msgpack.unpackb(data[4:]), dict)


@pytest.mark.parametrize("cut", [0, 2, 4, 10, -1])
def test_truncated_frames_are_rejected(cut):
    data = encode_frame(S1, S2, MESSAGES[3])
    with pytest.raises(WireError):
        decode_frame(data[:cut] if cut >= 0 else data[:-1])


def test_trailing_bytes_are_rejected():
    with pytest.raises(WireError):
        decode_frame(encode_frame(S1, S2, MESSAGES[0]) + b"\x00")


def test_oversized_frames_are_rejected_on_both_ends():
    big = RpcRequest(id=1, src="c", method="Job.Register", args={"blob": b"x" * 2000})
    with pytest.raises(WireError, match="over the 1000 limit"):
        encode_frame(S1, S2, big, max_size=1000)
    with pytest.raises(WireError, match="over the"):
        wire.frame_length(HEADER.pack(wire.MAX_FRAME + 1))
    with pytest.raises(WireError):
        decode_frame(encode_frame(S1, S2, big), max_size=1000)


def test_unencodable_messages_raise_wire_error():
    with pytest.raises(WireError):
        encode_frame(S1, S2, RpcRequest(id=1, src="c", method="m", args={"x": object()}))
    with pytest.raises(WireError):
        encode_frame(S1, S2, "not a message")


def _frame(envelope) -> bytes:
    payload = msgpack.packb(envelope, use_bin_type=True)
    return HEADER.pack(len(payload)) + payload


BAD_ENVELOPES = [
    [1, 2, 3],
    {"s": S1, "d": S2, "k": "raft"},
    {"s": 1, "d": S2, "k": "req", "b": {}},
    {"s": "", "d": S2, "k": "join", "b": {"servers": []}},
    {"s": S1, "d": S2, "k": "nope", "b": {}},
    {"s": S1, "d": S2, "k": "req", "b": {"id": "1", "src": "c", "method": "m"}},
    {"s": S1, "d": S2, "k": "req", "b": {"id": 1, "src": "c", "method": "m", "args": [1]}},
    {"s": S1, "d": S2, "k": "resp", "b": {"id": True}},
    {"s": S1, "d": S2, "k": "resp", "b": {"id": 1, "error": 5}},
    {"s": S1, "d": S2, "k": "join", "b": {"servers": "abc"}},
    {"s": S1, "d": S2, "k": "raft", "b": {"type": "vote", "src": S1, "dst": S2}},  # no term
    {"s": S1, "d": S2, "k": "raft", "b": {"type": "bogus", "src": S1, "dst": S2, "term": 1}},
    {"s": S1, "d": S2, "k": "raft", "b": {"type": "vote", "src": S1, "dst": S2, "term": "1"}},
    # bytes(n) of an integer would allocate n bytes: entry data must be bytes.
    {"s": S1, "d": S2, "k": "raft", "b": {"type": "append", "src": S1, "dst": S2, "term": 1,
                                          "entries": [[1, 1, 0, 10**12]]}},
    {"s": S1, "d": S2, "k": "raft", "b": {"type": "append", "src": S1, "dst": S2, "term": 1,
                                          "entries": [[1, 1, 7, b""]]}},
    {"s": S1, "d": S2, "k": "raft", "b": {"type": "snapshot", "src": S1, "dst": S2, "term": 1,
                                          "snapshot": {"index": 1, "term": 1, "voters": [S1]}}},
    {"s": S1, "d": S2, "k": "raft", "b": {"type": "vote", "src": S1, "dst": S2, "term": 1, "context": 5}},
]


@pytest.mark.parametrize("envelope", BAD_ENVELOPES)
def test_well_formed_msgpack_of_the_wrong_shape_is_rejected(envelope):
    with pytest.raises(WireError):
        decode_frame(_frame(envelope))


def test_extension_types_and_bad_utf8_are_rejected():
    ext = msgpack.packb({"s": S1, "d": S2, "k": "resp", "b": {"id": 1, "result": msgpack.ExtType(5, b"x")}})
    with pytest.raises(WireError):
        decode_frame(HEADER.pack(len(ext)) + ext)
    bad_utf8 = b"\x84\xa1s\xa2\xff\xfe"
    with pytest.raises(WireError):
        decode_frame(HEADER.pack(len(bad_utf8)) + bad_utf8)


def test_random_garbage_only_ever_raises_wire_error():
    rng = random.Random(7)
    valid = encode_frame(S1, S2, MESSAGES[3])
    outcomes = {"decoded": 0, "rejected": 0}
    for _ in range(2000):
        if rng.random() < 0.5:
            payload = rng.randbytes(rng.randint(0, 64))
        else:  # mutate a valid payload: mostly well-formed msgpack with the wrong bytes in places
            payload = bytearray(valid[4:])
            for _ in range(rng.randint(1, 4)):
                payload[rng.randrange(len(payload))] = rng.randrange(256)
            payload = bytes(payload)
        try:
            decode_frame(HEADER.pack(len(payload)) + payload)
            outcomes["decoded"] += 1
        except WireError:
            outcomes["rejected"] += 1
    assert outcomes["rejected"] > 1000 and outcomes["decoded"] > 0  # flipped bytes inside data still decode
