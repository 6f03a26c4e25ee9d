"""Tests for `allocs_fit`: each dimension Nomad reports, reserved resources, terminal allocations."""

from orchestrator.scheduler.fit import ComparableResources, allocs_fit, node_available
from orchestrator.structs import (
    AllocatedPortMapping,
    AllocatedResources,
    AllocatedSharedResources,
    AllocatedTaskResources,
    Allocation,
    NetworkResource,
    Node,
    NodeDeviceResource,
    NodeReservedResources,
    NodeResources,
    Port,
)


def make_node(cpu: int = 1000, memory_mb: int = 1024, disk_mb: int = 1000, **kwargs) -> Node:
    return Node(id="n1", status="ready", node_resources=NodeResources.of(cpu, memory_mb, disk_mb), **kwargs)


def make_alloc(alloc_id: str = "a", cpu: int = 100, memory_mb: int = 64, disk_mb: int = 0,
               ports: tuple[int, ...] = (), devices: tuple[str, ...] = (),
               cores: tuple[int, ...] = (), **kwargs) -> Allocation:
    cpu_res: dict = {"CpuShares": cpu}
    if cores:
        cpu_res["ReservedCores"] = list(cores)
    task = AllocatedTaskResources(
        cpu=cpu_res, memory={"MemoryMB": memory_mb},
        devices=[{"Vendor": "nvidia", "Type": "gpu", "Name": "1080ti", "DeviceIDs": list(devices)}]
        if devices else [],
    )
    shared = AllocatedSharedResources(
        disk_mb=disk_mb, ports=[AllocatedPortMapping(label=f"p{p}", value=p) for p in ports])
    return Allocation(id=alloc_id, node_id="n1",
                      allocated_resources=AllocatedResources(tasks={"t": task}, shared=shared), **kwargs)


def test_empty_node_fits_nothing_used():
    result = allocs_fit(make_node(), [])
    assert result.fit and result.dimension == ""
    assert result.used == ComparableResources()


def test_exact_fit_is_ok():
    result = allocs_fit(make_node(1000, 1024, 1000), [
        make_alloc("a", 600, 1000, 400), make_alloc("b", 400, 24, 600)])
    assert result.fit
    assert result.used == ComparableResources(1000, 1024, 1000)


def test_cpu_exhausted():
    result = allocs_fit(make_node(cpu=1000), [make_alloc("a", cpu=600), make_alloc("b", cpu=401)])
    assert (result.fit, result.dimension) == (False, "cpu")
    assert result.used.cpu == 1001


def test_memory_exhausted():
    allocs = [make_alloc("a", memory_mb=64), make_alloc("b", memory_mb=65)]
    result = allocs_fit(make_node(memory_mb=128), allocs)
    assert (result.fit, result.dimension) == (False, "memory")


def test_disk_exhausted():
    result = allocs_fit(make_node(disk_mb=500), [make_alloc("a", disk_mb=300), make_alloc("b", disk_mb=300)])
    assert (result.fit, result.dimension) == (False, "disk")


def test_cpu_is_reported_before_memory():
    result = allocs_fit(make_node(cpu=10, memory_mb=10), [make_alloc("a", cpu=100, memory_mb=100)])
    assert result.dimension == "cpu"


def test_reserved_resources_are_subtracted():
    node = make_node(1000, 1024, 1000, reserved_resources=NodeReservedResources.of(200, 256, 100))
    assert node_available(node) == ComparableResources(800, 768, 900)
    assert allocs_fit(node, [make_alloc(cpu=800, memory_mb=768, disk_mb=900)]).fit
    assert allocs_fit(node, [make_alloc(cpu=801)]).dimension == "cpu"
    assert allocs_fit(node, [make_alloc(memory_mb=769)]).dimension == "memory"
    assert allocs_fit(node, [make_alloc(disk_mb=901)]).dimension == "disk"


def test_terminal_allocs_are_ignored():
    stopped = make_alloc("old", cpu=900, desired_status="stop")
    finished = make_alloc("done", cpu=900, client_status="complete")
    result = allocs_fit(make_node(cpu=1000), [stopped, finished, make_alloc("new", cpu=1000, ports=(80,))])
    assert result.fit
    assert result.used.cpu == 1000


def test_terminal_alloc_ports_are_free():
    stopped = make_alloc("old", ports=(8080,), client_status="failed")
    assert allocs_fit(make_node(), [stopped, make_alloc("new", ports=(8080,))]).fit


def test_port_collision_between_allocs():
    result = allocs_fit(make_node(), [make_alloc("a", ports=(8080,)), make_alloc("b", ports=(9000, 8080))])
    assert (result.fit, result.dimension) == (False, "network: port collision")


def test_distinct_ports_fit():
    assert allocs_fit(make_node(), [make_alloc("a", ports=(8080,)), make_alloc("b", ports=(8081,))]).fit


def test_port_listed_twice_within_one_alloc_is_not_a_collision():
    alloc = make_alloc("a", ports=(25000,))
    # Nomad records group ports both as mappings and inside the shared network.
    alloc.allocated_resources.shared.networks = [
        NetworkResource(mode="host", dynamic_ports=[Port(label="p25000", value=25000)])]
    assert allocs_fit(make_node(), [alloc]).fit


def test_task_network_ports_collide_too():
    alloc = make_alloc("a")
    alloc.allocated_resources.tasks["t"].networks = [NetworkResource(reserved_ports=[Port("http", 8080)])]
    result = allocs_fit(make_node(), [alloc, make_alloc("b", ports=(8080,))])
    assert result.dimension == "network: port collision"


def test_reserved_host_port_collision():
    node = make_node(reserved_resources=NodeReservedResources.of(ports="22,8500-8600"))
    assert allocs_fit(node, [make_alloc(ports=(8080,))]).fit
    assert allocs_fit(node, [make_alloc(ports=(22,))]).dimension == "network: port collision"
    assert allocs_fit(node, [make_alloc(ports=(8555,))]).dimension == "network: port collision"


def _gpu_node(*instances: dict) -> Node:
    node = make_node()
    node.node_resources.devices = [
        NodeDeviceResource(vendor="nvidia", type="gpu", name="1080ti", instances=list(instances))]
    return node


def test_devices_fit_when_distinct_and_healthy():
    node = _gpu_node({"ID": "gpu0", "Healthy": True}, {"ID": "gpu1", "Healthy": True})
    assert allocs_fit(node, [make_alloc("a", devices=("gpu0",)), make_alloc("b", devices=("gpu1",))]).fit


def test_device_used_twice():
    node = _gpu_node({"ID": "gpu0", "Healthy": True}, {"ID": "gpu1", "Healthy": True})
    result = allocs_fit(node, [make_alloc("a", devices=("gpu0",)), make_alloc("b", devices=("gpu0",))])
    assert (result.fit, result.dimension) == (False, "devices")


def test_device_missing_or_unhealthy():
    node = _gpu_node({"ID": "gpu0", "Healthy": False})
    assert allocs_fit(node, [make_alloc(devices=("gpu0",))]).dimension == "devices"
    assert allocs_fit(node, [make_alloc(devices=("gpu9",))]).dimension == "devices"


def test_reserved_cores_overlap():
    node = make_node()
    node.node_resources.cpu.reservable_cpu_cores = [0, 1, 2, 3]
    assert allocs_fit(node, [make_alloc("a", cores=(0, 1)), make_alloc("b", cores=(2,))]).fit
    result = allocs_fit(node, [make_alloc("a", cores=(0, 1)), make_alloc("b", cores=(1,))])
    assert (result.fit, result.dimension) == (False, "cores")


def test_reserved_cores_outside_node_or_reserved_by_operator():
    node = make_node()
    node.node_resources.cpu.reservable_cpu_cores = [0, 1, 2, 3]
    node.reserved_resources.cpu.reservable_cpu_cores = [0]
    assert allocs_fit(node, [make_alloc(cores=(0,))]).dimension == "cores"
    assert allocs_fit(node, [make_alloc(cores=(7,))]).dimension == "cores"


def test_comparable_resources_arithmetic_and_superset():
    a = ComparableResources(100, 200, 300)
    b = ComparableResources(10, 20, 30)
    assert a.add(b) == a + b == ComparableResources(110, 220, 330)
    assert a.subtract(b) == a - b == ComparableResources(90, 180, 270)
    assert a.superset(b) == (True, "")
    assert a.superset(a) == (True, "")
    assert b.superset(a) == (False, "cpu")
    assert a.superset(ComparableResources(100, 201, 0)) == (False, "memory")
    assert a.superset(ComparableResources(0, 0, 301)) == (False, "disk")


def test_comparable_resources_of_alloc():
    alloc = make_alloc(cpu=250, memory_mb=128, disk_mb=300)
    assert ComparableResources.of_alloc(alloc) == ComparableResources(250, 128, 300)
