"""What the client agent offers the real agent process: an early first update, RegisterNow, NodeChanged,
and on_forget (the alloc directory goes when the servers forget the allocation)."""

from dataclasses import replace

from client_fakes import NODE_ID, FakeServers, Loop, make_alloc, make_job

from orchestrator.client.agent import ClientAgent, ClientConfig, NodeChanged, RegisterNow
from orchestrator.rpc.messages import methods
from orchestrator.structs import Node

REGISTER = methods.NODE_REGISTER
UPDATE = methods.NODE_UPDATE_ALLOC


def test_an_update_after_a_quiet_spell_goes_out_at_once_and_later_ones_are_batched():
    loop = Loop(config=ClientConfig(servers=["s1", "s2", "s3"], update_at_once_when_idle=True))
    loop.run_for(1)
    t = loop.now
    loop.servers.place(make_alloc("a1", make_job()))
    loop.run_for(0.05)
    sent = loop.sent_of(UPDATE)
    assert [round(at - t, 6) for at, _, _ in sent] == [0.0]
    assert sent[0][2].args["Alloc"][0]["ClientStatus"] == "running"
    loop.servers.set_desired("a1", "stop")  # Killing at once, Killed 100 ms later (the simulated driver)
    loop.run_for(1)
    times = [round(at - t, 6) for at, _, _ in loop.sent_of(UPDATE)]
    assert times[1] >= 0.2  # within update_interval of the first: batched as Nomad does


def test_register_now_skips_the_registration_back_off():
    servers = FakeServers()
    servers.fail_methods[REGISTER] = "No cluster leader"
    loop = Loop(servers)
    loop.run_for(0.4)
    assert not loop.agent.registered and len(loop.sent_of(REGISTER)) == 3  # then 0.5-1 s of back-off
    del servers.fail_methods[REGISTER]
    loop.agent.receive(loop.now, "agent", RegisterNow())
    loop.run_for(0.01)
    assert loop.agent.registered and len(loop.sent_of(REGISTER)) == 4
    loop.agent.receive(loop.now, "agent", RegisterNow())  # registered: nothing to do
    loop.run_for(0.01)
    assert len(loop.sent_of(REGISTER)) == 4


def test_node_changed_registers_the_new_fingerprint():
    loop = Loop()
    loop.run_for(1)
    node = replace(loop.agent.node, attributes={"driver.docker": "1"})
    loop.agent.receive(loop.now, "agent", NodeChanged(node))
    loop.run_for(0.01)
    last = loop.sent_of(REGISTER)[-1][2].args["Node"]
    assert last["Attributes"] == {"driver.docker": "1"} and last["Status"] == "ready"
    loop.agent.receive(loop.now, "agent", NodeChanged(Node(id="someone-else")))  # not this node: ignored
    loop.run_for(0.01)
    assert len(loop.sent_of(REGISTER)) == 2


def test_on_forget_is_told_of_each_allocation_the_servers_forget():
    forgotten: list[str] = []
    loop = Loop()
    loop.agent = ClientAgent(Node(id=NODE_ID, name="n1"), loop.config, loop.driver, loop.rng, store=loop.store,
                             on_forget=forgotten.append)
    loop.run_for(1)
    loop.servers.place(make_alloc("a1", make_job()))
    loop.run_for(1)
    loop.servers.set_desired("a1", "stop")
    loop.run_for(1)
    assert forgotten == []  # stopped, but still listed: its logs stay readable
    loop.servers.gc("a1")
    loop.run_for(1)
    assert forgotten == ["a1"]
