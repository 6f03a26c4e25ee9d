"""Root pytest configuration: registers yurt's test markers."""

MARKERS = {
    "sim": "runs on the SimPy simulator",
    "real": "spawns real yurt agents as processes",
    "docker": "needs a Docker engine (tests start dockerd themselves)",
    "lab": "needs the network-namespace lab with sshd (root)",
    "slow": "takes more than a few seconds",
}


def pytest_configure(config):
    for name, description in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {description}")
