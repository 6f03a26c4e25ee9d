"""Client-side GC: beyond gc_max_allocs kept allocations, the oldest terminal ones are forgotten (their
directories removed through on_forget) once the servers have their final state."""

from client_fakes import Loop, make_alloc, make_job

from orchestrator.client.agent import ClientConfig


def gc_loop(max_allocs: int) -> tuple[Loop, list[str]]:
    loop = Loop(config=ClientConfig(servers=["s1", "s2", "s3"], gc_max_allocs=max_allocs))
    forgotten: list[str] = []
    loop.agent.on_forget = forgotten.append
    loop.run_for(1)
    return loop, forgotten


def test_oldest_terminal_allocations_are_collected():
    loop, forgotten = gc_loop(2)
    batch = make_job("b", job_type="batch", tasks={"t": {"sim_run_for": "1s"}})
    for i in range(4):
        loop.servers.place(make_alloc(f"b{i}", batch))
        loop.run_for(3)  # runs to completion and is reported
    assert forgotten == ["b0", "b1"]
    assert sorted(loop.agent.allocations()) == ["b2", "b3"]
    loop.run_for(30)  # the servers still list b0 and b1: they are not pulled and run again
    assert sorted(loop.agent.allocations()) == ["b2", "b3"] and forgotten == ["b0", "b1"]
    assert loop.driver.running_handles() == []
    snapshot = loop.store.load()
    assert sorted(snapshot.allocs) == ["b2", "b3"]


def test_running_allocations_are_never_collected():
    loop, forgotten = gc_loop(1)
    service = make_job("s")
    for i in range(3):
        loop.servers.place(make_alloc(f"s{i}", service))
    loop.run_for(5)
    assert len(loop.agent.allocations()) == 3 and forgotten == []
    loop.servers.set_desired("s0", "stop")
    loop.run_for(5)
    assert forgotten == ["s0"] and sorted(loop.agent.allocations()) == ["s1", "s2"]


def test_final_state_is_reported_before_collection():
    loop, forgotten = gc_loop(0)
    loop.servers.place(make_alloc("b0", make_job("b", job_type="batch", tasks={"t": {"sim_run_for": "1s"}})))
    loop.run_for(5)
    assert forgotten == ["b0"]
    final = [u for _, updates in loop.servers.client_updates for u in updates if u["ID"] == "b0"][-1]
    assert final["ClientStatus"] == "complete"


def test_forced_collections_take_all_one_or_the_oldest_terminal_allocations():
    from orchestrator.client.agent import CollectGarbage
    loop, forgotten = gc_loop(50)
    batch = make_job("b", job_type="batch", tasks={"t": {"sim_run_for": "1s"}})
    for i in range(4):
        loop.servers.place(make_alloc(f"b{i}", batch))
        loop.run_for(3)
    loop.servers.place(make_alloc("live", make_job("s")))
    loop.run_for(2)
    loop.agent.receive(loop.now, "agent", CollectGarbage(oldest=1))  # disk pressure: the oldest first
    assert forgotten == ["b0"]
    loop.agent.receive(loop.now, "agent", CollectGarbage(alloc_id="b2"))
    assert forgotten == ["b0", "b2"]
    loop.agent.receive(loop.now, "agent", CollectGarbage())  # `/v1/client/gc`: every terminal one
    assert sorted(forgotten) == ["b0", "b1", "b2", "b3"]
    assert list(loop.agent.allocations()) == ["live"]
