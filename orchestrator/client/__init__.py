"""The client agent (sans-IO): node registration, heartbeats, allocation watching and task running."""

from .agent import ClientAgent, ClientConfig, NodeChanged, RegisterNow
from .allocrunner import AllocRunner, HealthWatch, client_status_of
from .restarts import NO_RESTART, RESTART, RestartDecision, RestartTracker
from .state import ClientSnapshot, ClientStateBatch, ClientStateStore, InMemoryClientStateStore
from .task_driver import DriverError, TaskDriver, TaskExit
from .taskrunner import TaskRunner

__all__ = [
    "NO_RESTART",
    "RESTART",
    "AllocRunner",
    "ClientAgent",
    "ClientConfig",
    "ClientSnapshot",
    "ClientStateBatch",
    "ClientStateStore",
    "DriverError",
    "HealthWatch",
    "InMemoryClientStateStore",
    "NodeChanged",
    "RegisterNow",
    "RestartDecision",
    "RestartTracker",
    "TaskDriver",
    "TaskExit",
    "TaskRunner",
    "client_status_of",
]
