"""In-process stand-ins for the server used by tests and benchmarks (they own their seeded generators)."""
