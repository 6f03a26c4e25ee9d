"""The agent process: configuration, and the wiring of a server (and later a client) to the asyncio
runtime, the HTTP API and the membership protocol."""
