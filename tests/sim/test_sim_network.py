"""The simulated network: latency distributions, loss, routing, partitions and message faults."""

import math
import random
import statistics

import pytest

from sim.network import Network

pytestmark = pytest.mark.sim


def pair(latency=0.01, seed=1, **edge) -> Network:
    return Network(random.Random(seed)).full_mesh(["a", "b"], latency=latency, **edge)


def draws(network: Network, n: int = 4000, src: str = "a", dst: str = "b") -> list[float | None]:
    return [network.send(src, dst, "m") for _ in range(n)]


def test_constant_latency_is_exact():
    assert draws(pair(0.01), 10) == [0.01] * 10


def test_uniform_latency_stays_in_bounds_around_the_midpoint():
    delays = draws(pair(("uniform", 0.01, 0.03)))
    assert min(delays) >= 0.01 and max(delays) <= 0.03
    assert statistics.mean(delays) == pytest.approx(0.02, rel=0.03)


def test_lognormal_latency_has_the_given_median_and_sigma():
    delays = draws(pair(("lognormal", 0.005, 0.5)))
    assert statistics.median(delays) == pytest.approx(0.005, rel=0.06)
    assert statistics.stdev(math.log(d) for d in delays) == pytest.approx(0.5, rel=0.06)


def test_normal_latency_is_clipped_at_zero():
    delays = draws(pair(("normal", 0.0, 0.01)))
    assert min(delays) == 0.0
    assert sum(d == 0.0 for d in delays) / len(delays) == pytest.approx(0.5, abs=0.05)


def test_bandwidth_adds_size_over_bandwidth_with_a_pluggable_size():
    network = Network(random.Random(1), size_of=len).full_mesh(["a", "b"], latency=0.001, bandwidth=1000)
    assert network.send("a", "b", b"x" * 500) == pytest.approx(0.501)
    assert pair(0.001, bandwidth=512_000).send("a", "b", object()) == pytest.approx(0.002)  # default 512 B


def test_loss_drops_about_that_fraction():
    delays = draws(pair(loss=0.25))
    assert sum(d is None for d in delays) / len(delays) == pytest.approx(0.25, abs=0.03)


def test_unknown_or_unconnected_nodes_are_unreachable():
    network = pair()
    network.add_node("lonely")
    assert network.send("a", "lonely", "m") is None
    assert network.send("a", "nobody", "m") is None
    assert network.dropped_unreachable == 2


def test_star_links_clients_to_every_server_but_not_to_each_other():
    network = Network(random.Random(1)).star(["s1", "s2"], ["c1", "c2"], latency=0.002)
    graph = network.graph
    assert graph.has_edge("s1", "s2") and graph.has_edge("c1", "s1") and graph.has_edge("c1", "s2")
    assert not graph.has_edge("c1", "c2")
    assert network.path("c1", "c2") in (["c1", "s1", "c2"], ["c1", "s2", "c2"])
    assert network.send("c1", "c2", "m") == pytest.approx(0.004)


def diamond() -> Network:
    network = Network(random.Random(1))
    network.connect("a", "b", latency=0.01)
    network.connect("b", "c", latency=0.02)
    network.connect("a", "d", latency=0.1)
    network.connect("d", "c", latency=0.001)
    return network


def test_non_adjacent_messages_take_the_shortest_path_and_reroute_around_cuts():
    network = diamond()
    assert network.path("a", "c") == ["a", "b", "c"]
    assert network.send("a", "c", "m") == pytest.approx(0.03)
    cut = network.isolate("b")
    assert network.path("a", "c") == ["a", "d", "c"]
    assert network.send("a", "c", "m") == pytest.approx(0.101)
    network.heal(cut)
    assert network.send("a", "c", "m") == pytest.approx(0.03)


def test_any_lossy_hop_may_drop_a_routed_message():
    network = diamond()
    network.set_link("b", "c", loss=0.5)
    delays = draws(network, src="a", dst="c")
    assert sum(d is None for d in delays) / len(delays) == pytest.approx(0.5, abs=0.03)


def test_partition_separates_groups_end_to_end_and_heal_restores_every_edge():
    network = Network(random.Random(1)).full_mesh("abcd", latency=0.01)
    network.partition(["a", "b"], ["c"])
    assert network.send("a", "c", "m") is None and network.send("c", "b", "m") is None
    assert network.send("a", "b", "m") == 0.01
    assert all(network.send(x, "d", "m") == 0.01 for x in "abc")  # not listed: connected to everyone
    assert network.path("a", "c") is None  # "d" links both sides, yet relays nothing across the cut
    assert network.graph.number_of_edges() == 4
    network.heal()
    assert network.graph.number_of_edges() == 6 and network.send("a", "c", "m") == 0.01


def test_isolate_cuts_one_node_from_everyone():
    network = Network(random.Random(1)).full_mesh("abc", latency=0.01)
    network.isolate("a")
    assert network.send("a", "b", "m") is None and network.send("c", "a", "m") is None
    assert network.send("b", "c", "m") == 0.01


def test_ring_partition_lets_each_node_see_only_its_two_neighbours():
    ids = [f"n{i}" for i in range(6)]
    network = Network(random.Random(1)).full_mesh(ids, latency=0.01)
    network.partition_ring(ids)
    for i, node in enumerate(ids):
        reachable = {other for other in ids if other != node and network.send(node, other, "m") is not None}
        assert reachable == {ids[(i - 1) % 6], ids[(i + 1) % 6]}
    network.heal()
    assert network.graph.number_of_edges() == 15


def test_partition_minority_cuts_off_the_largest_minority_of_servers():
    servers = [f"s{i}" for i in range(5)]
    network = Network(random.Random(3)).star(servers, ["c1"], latency=0.01)
    cut = network.partition_minority(servers)
    minority, majority = cut.groups
    assert len(minority) == 2 and len(majority) == 3
    assert network.send(minority[0], majority[0], "m") is None
    assert network.send("c1", minority[0], "m") == 0.01 and network.send("c1", majority[0], "m") == 0.01
    network.heal(cut)
    explicit = network.partition_minority(servers, minority=["s4"])
    assert explicit.groups == (("s4",), ("s0", "s1", "s2", "s3"))


def test_overlapping_partitions_heal_one_at_a_time():
    network = Network(random.Random(1)).full_mesh("abc", latency=0.01)
    first = network.isolate("a")
    second = network.partition(["b"], ["c"])
    network.heal(first)
    assert network.send("a", "b", "m") == 0.01
    assert network.send("b", "c", "m") is None  # still cut by the second
    network.heal(second)
    assert network.send("b", "c", "m") == 0.01


def test_an_edge_added_across_a_partition_stays_cut_until_healed():
    network = Network(random.Random(1)).full_mesh("ab", latency=0.01)
    network.add_node("c")
    network.partition(["a"], ["c"])
    network.connect("a", "c", latency=0.02)
    assert network.send("a", "c", "m") is None
    network.heal()
    assert network.send("a", "c", "m") == 0.02


def test_drop_rate_and_fault_windows_compose_and_restore():
    network = pair()
    network.drop_rate = 0.5
    window = network.impair(drop_rate=0.5)
    delays = draws(network)
    assert sum(d is None for d in delays) / len(delays) == pytest.approx(0.75, abs=0.03)
    network.restore(window)
    assert not network.impaired and network.drop_rate == 0.5
    delays = draws(network)
    assert sum(d is None for d in delays) / len(delays) == pytest.approx(0.5, abs=0.03)


def test_duplicates_arrive_twice_the_copy_a_little_later():
    network = pair(0.01)
    network.duplicate_rate = 0.3
    copies = [network.deliveries("a", "b", "m") for _ in range(4000)]
    doubled = [c for c in copies if len(c) == 2]
    assert len(doubled) / len(copies) == pytest.approx(0.3, abs=0.03)
    assert all(c[0] == 0.01 and 0.01 <= c[1] <= 0.01 + network.duplicate_delay for c in doubled)


def test_links_are_fifo_until_reorder_jitter_lets_messages_overtake():
    network = pair(("lognormal", 0.01, 1.0))
    arrivals = [t * 0.001 + network.send("a", "b", "m", now=t * 0.001) for t in range(2000)]
    assert arrivals == sorted(arrivals)
    assert pair(("lognormal", 0.01, 1.0)).fifo and not all(  # without `now` the draw is pure
        d == 0.01 for d in draws(pair(("lognormal", 0.01, 1.0)), 10))
    network.reorder_jitter = 0.05
    arrivals = [t * 0.001 + network.send("a", "b", "m", now=t * 0.001) for t in range(3000, 5000)]
    assert arrivals != sorted(arrivals)


def test_datacenters_route_across_the_wan_through_gateways():
    network = Network(random.Random(1))
    network.star(["s1"], ["c1"], latency=0.001)
    network.star(["s2"], ["c2"], latency=0.001)
    gateways = network.datacenters({"east": ["s1", "c1"], "west": ["s2", "c2"]}, wan_latency=0.05,
                                   access_latency=0.0005)
    assert gateways == ["gw:east", "gw:west"]
    assert network.path("s1", "s2") == ["s1", "gw:east", "gw:west", "s2"]
    assert network.send("c1", "s2", "m") == pytest.approx(0.051)
    assert network.send("c1", "s1", "m") == 0.001  # adjacent: the direct LAN edge
    network.isolate("gw:west")
    assert network.send("c1", "s2", "m") is None


def test_every_draw_comes_from_the_injected_rng():
    def run(seed):
        network = pair(("lognormal", 0.01, 0.5), seed=seed, loss=0.1)
        network.duplicate_rate, network.reorder_jitter = 0.1, 0.01
        return [network.deliveries("a", "b", "m") for _ in range(200)]

    assert run(7) == run(7)
    assert run(7) != run(8)
