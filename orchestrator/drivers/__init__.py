"""Task drivers behind the client's TaskDriver port; the simulated driver needs no operating system."""

from .simulated import SimulatedDriver, Workload, workload_for

__all__ = ["SimulatedDriver", "Workload", "workload_for"]
