"""Runtime ports (clock, transport, storage) and their asyncio implementation."""
